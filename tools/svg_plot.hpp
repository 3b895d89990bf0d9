// Minimal SVG charts for enf eval: overlaid normalised histograms and line
// plots, written by hand (no plotting dependency).
#pragma once

#include <string>
#include <vector>

namespace enf::cli {

struct Series {
  std::string label;
  std::vector<double> values;  // histogram: samples; line: y values
  std::vector<double> x;       // line: x values (empty for histograms)
};

// Density histograms of every series over a shared range, as step lines.
std::string svg_histograms(const std::string& title, const std::string& xlabel, const std::vector<Series>& series,
                           int bins = 60);
// Axes of a line plot: linear, or logarithmic (base 10; ticks at the range's
// ends and the powers of ten inside it; values <= 0 are not drawn).
struct LineAxes {
  bool log_x = false, log_y = false;
  bool markers = false;  // a dot at every point (for curves of a few measured points)
};

// Line plots (x, y) of every series.
std::string svg_lines(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                      const std::vector<Series>& series, LineAxes axes = {});

}  // namespace enf::cli
