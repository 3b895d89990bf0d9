#include "tools/svg_plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace enf::cli {

namespace {

constexpr double kW = 640, kH = 400, kL = 70, kR = 20, kT = 40, kB = 50;
const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};

// Coordinates are in the plotted space: log10 of the value on a log axis.
struct Frame {
  double x0, x1, y0, y1;
  bool log_x = false, log_y = false;
  double px(double x) const { return kL + (x - x0) / (x1 - x0) * (kW - kL - kR); }
  double py(double y) const { return kH - kB - (y - y0) / (y1 - y0) * (kH - kT - kB); }
};

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return o;
}

// Tick positions (plotted space) of an axis from a to b: 5 even ticks, or on
// a log axis the ends and the powers of ten between them.
std::vector<double> ticks(double a, double b, bool log) {
  std::vector<double> t;
  if (!log) {
    for (int i = 0; i <= 4; ++i) t.push_back(a + (b - a) * i / 4);
    return t;
  }
  t.push_back(a);
  for (double p = std::ceil(a); p < b; p += 1)
    if (p - a > 0.08 * (b - a) && b - p > 0.08 * (b - a)) t.push_back(p);  // not on top of an end's label
  t.push_back(b);
  return t;
}

std::string axes(const Frame& f, const std::string& title, const std::string& xlabel, const std::string& ylabel) {
  std::ostringstream os;
  os << "<svg xmlns='http://www.w3.org/2000/svg' width='" << kW << "' height='" << kH << "' font-family='sans-serif' font-size='12'>\n"
     << "<rect width='100%' height='100%' fill='white'/>\n"
     << "<text x='" << kW / 2 << "' y='22' text-anchor='middle' font-size='15'>" << escape(title) << "</text>\n"
     << "<rect x='" << kL << "' y='" << kT << "' width='" << kW - kL - kR << "' height='" << kH - kT - kB
     << "' fill='none' stroke='#444'/>\n";
  for (double x : ticks(f.x0, f.x1, f.log_x))
    os << "<text x='" << f.px(x) << "' y='" << kH - kB + 16 << "' text-anchor='middle'>"
       << num(f.log_x ? std::pow(10.0, x) : x) << "</text>\n";
  for (double y : ticks(f.y0, f.y1, f.log_y))
    os << "<text x='" << kL - 6 << "' y='" << f.py(y) + 4 << "' text-anchor='end'>"
       << num(f.log_y ? std::pow(10.0, y) : y) << "</text>\n";
  os << "<text x='" << (kL + kW - kR) / 2 << "' y='" << kH - 12 << "' text-anchor='middle'>" << escape(xlabel) << "</text>\n"
     << "<text x='16' y='" << (kT + kH - kB) / 2 << "' text-anchor='middle' transform='rotate(-90 16 "
     << (kT + kH - kB) / 2 << ")'>" << escape(ylabel) << "</text>\n";
  return os.str();
}

// The legend, drawn last on a translucent box, so that it stays readable over
// the curves and the curves under it stay visible.
std::string legend(const std::vector<Series>& series) {
  std::ostringstream os;
  std::size_t longest = 0;
  for (const auto& s : series) longest = std::max(longest, s.label.size());
  if (!series.empty())
    os << "<rect x='" << kW - kR - 12 - 6.6 * longest << "' y='" << kT + 5 << "' width='" << 6.6 * longest + 8
       << "' height='" << 16 * series.size() + 4 << "' fill='white' fill-opacity='0.85'/>\n";
  for (std::size_t s = 0; s < series.size(); ++s)
    os << "<text x='" << kW - kR - 8 << "' y='" << kT + 18 + 16 * s << "' text-anchor='end' fill='" << kColors[s % 4]
       << "'>" << escape(series[s].label) << "</text>\n";
  return os.str();
}

}  // namespace

std::string svg_histograms(const std::string& title, const std::string& xlabel, const std::vector<Series>& series,
                           int bins) {
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& s : series)
    for (double v : s.values)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!(hi > lo)) hi = lo + 1;
  std::vector<std::vector<double>> dens(series.size(), std::vector<double>(bins, 0.0));
  const double width = (hi - lo) / bins;
  double top = 0;
  for (std::size_t s = 0; s < series.size(); ++s) {
    std::size_t n = 0;
    for (double v : series[s].values)
      if (std::isfinite(v)) ++n, ++dens[s][std::min(bins - 1, int((v - lo) / width))];
    for (double& d : dens[s]) top = std::max(top, d /= std::max<std::size_t>(n, 1) * width);
  }
  const Frame f{lo, hi, 0, top > 0 ? top * 1.05 : 1};
  std::ostringstream os;
  os << axes(f, title, xlabel, "density");
  for (std::size_t s = 0; s < series.size(); ++s) {
    os << "<polyline fill='none' stroke-width='1.6' stroke='" << kColors[s % 4] << "' points='";
    for (int b = 0; b < bins; ++b)
      os << f.px(lo + b * width) << ',' << f.py(dens[s][b]) << ' ' << f.px(lo + (b + 1) * width) << ',' << f.py(dens[s][b]) << ' ';
    os << "'/>\n";
  }
  os << legend(series) << "</svg>\n";
  return os.str();
}

std::string svg_lines(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                      const std::vector<Series>& series, LineAxes la) {
  // A point in plotted space, or false where it cannot be drawn (non-finite, or <= 0 on a log axis).
  auto plotted = [&](double x, double y, double& px, double& py) {
    if (!std::isfinite(x) || !std::isfinite(y) || (la.log_x && x <= 0) || (la.log_y && y <= 0)) return false;
    px = la.log_x ? std::log10(x) : x;
    py = la.log_y ? std::log10(y) : y;
    return true;
  };
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : series)
    for (std::size_t i = 0; i < s.values.size(); ++i)
      if (double px, py; plotted(s.x[i], s.values[i], px, py)) {
        x0 = std::min(x0, px), x1 = std::max(x1, px);
        y0 = std::min(y0, py), y1 = std::max(y1, py);
      }
  if (!std::isfinite(x0)) x0 = 0, y0 = 0;  // nothing to draw: an empty frame
  if (!(x1 > x0)) x1 = x0 + 1;
  if (!(y1 > y0)) y1 = y0 + 1;
  // Room above the highest point for the legend's rows.
  const double pad = 0.05 * (y1 - y0), top = (0.05 + 0.07 * series.size()) * (y1 - y0);
  const Frame f{x0, x1, y0 - pad, y1 + top, la.log_x, la.log_y};
  std::ostringstream os;
  os << axes(f, title, xlabel, ylabel);
  for (std::size_t s = 0; s < series.size(); ++s) {
    std::ostringstream dots;
    os << "<polyline fill='none' stroke-width='1.4' stroke='" << kColors[s % 4] << "' points='";
    for (std::size_t i = 0; i < series[s].values.size(); ++i)
      if (double px, py; plotted(series[s].x[i], series[s].values[i], px, py)) {
        os << f.px(px) << ',' << f.py(py) << ' ';
        if (la.markers)
          dots << "<circle cx='" << f.px(px) << "' cy='" << f.py(py) << "' r='3' fill='" << kColors[s % 4] << "'/>\n";
      }
    os << "'/>\n" << dots.str();
  }
  os << legend(series) << "</svg>\n";
  return os.str();
}

}  // namespace enf::cli
