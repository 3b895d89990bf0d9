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
// Line plots (x, y) of every series.
std::string svg_lines(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                      const std::vector<Series>& series);

}  // namespace enf::cli
