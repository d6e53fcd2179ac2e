// Training-curve SVG rendering (layout in plot.h).
//
// In order:
//   1. Gather each panel's series, keeping only the epochs with a finite value.
//   2. Pick each panel's axis ranges: "nice" ticks (1, 2 or 5 times a power of ten) that cover the
//      data; integer ticks on the epoch axis.
//   3. Emit, per panel: frame and grid, tick labels, axis labels, one polyline (and markers) per
//      series, then the legend in the corner the curves usually leave empty.
#include "runtime/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace nnc::rt {
namespace {

// Canvas layout in SVG user units.
constexpr double kPanelWidth = 500, kHeight = 420;
constexpr double kLeft = 70, kRight = 20, kTop = 60, kBottom = 60;  // plot-area margins in a panel
constexpr size_t kMaxMarkers = 60;  // beyond this many points, markers only clutter the line

struct Series {
  std::string name, color;
  std::vector<std::pair<double, double>> xy;  // (epoch, value), finite values only
};

struct Axis {
  double lo = 0, hi = 1, step = 0.2;
};

struct Panel {
  std::string title, y_label;
  std::vector<Series> series;
  bool percent = false;       // y values are fractions shown as percentages
  bool legend_bottom = false;  // accuracy rises to the top right, so its legend goes below
};

std::string num(double v, int decimals = 1) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string escapeXml(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

// ---- step 1 ----------------------------------------------------------------------------

Series gather(const std::vector<EpochPoint>& points, const std::string& name, const std::string& color,
              double EpochPoint::*field) {
  Series s{name, color, {}};
  for (const EpochPoint& p : points)
    if (std::isfinite(p.*field)) s.xy.emplace_back(static_cast<double>(p.epoch), p.*field);
  return s;
}

// Adds the series that have at least one point (a run without validation has no val curves).
void addSeries(Panel& panel, Series s) {
  if (!s.xy.empty()) panel.series.push_back(std::move(s));
}

// ---- step 2 ----------------------------------------------------------------------------

// The 1-2-5 step nearest above range / target_ticks.
double niceStep(double range, int target_ticks) {
  const double raw = range / target_ticks;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (raw <= m * magnitude * (1 + 1e-9)) return m * magnitude;
  return 10 * magnitude;
}

// An axis whose ticks cover [lo, hi]; `integer` forces whole-number steps (epochs).
Axis niceAxis(double lo, double hi, bool integer) {
  if (!(lo <= hi)) return Axis{};  // no data
  if (hi - lo < 1e-12) {
    const double pad = integer ? 1 : std::max(std::fabs(lo) * 0.1, 1e-3);
    lo -= pad;
    hi += pad;
  }
  Axis a;
  a.step = niceStep(hi - lo, integer ? 8 : 5);
  if (integer) a.step = std::max(1.0, std::round(a.step));
  a.lo = std::floor(lo / a.step + 1e-9) * a.step;
  a.hi = std::ceil(hi / a.step - 1e-9) * a.step;
  return a;
}

// Decimals that show every tick of `step` distinctly.
int decimalsFor(double step) { return std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9))); }

// ---- step 3 ----------------------------------------------------------------------------

struct Frame {
  double x0, y0, x1, y1;  // plot area: left, top, right, bottom
  Axis x, y;
  double px(double v) const { return x0 + (v - x.lo) / (x.hi - x.lo) * (x1 - x0); }
  double py(double v) const { return y1 - (v - y.lo) / (y.hi - y.lo) * (y1 - y0); }
};

void emitAxes(std::string& svg, const Frame& f, const Panel& panel) {
  svg += "<rect x=\"" + num(f.x0) + "\" y=\"" + num(f.y0) + "\" width=\"" + num(f.x1 - f.x0) + "\" height=\"" +
         num(f.y1 - f.y0) + "\" fill=\"#fafafa\" stroke=\"#333\"/>\n";
  const int xd = decimalsFor(f.x.step), yd = decimalsFor(panel.percent ? f.y.step * 100 : f.y.step);
  for (double v = f.x.lo; v <= f.x.hi + f.x.step * 1e-6; v += f.x.step) {
    if (std::fabs(v) < f.x.step * 1e-6) v = 0;  // no "-0" tick from accumulated rounding
    const std::string x = num(f.px(v));
    svg += "<line class=\"grid\" x1=\"" + x + "\" y1=\"" + num(f.y0) + "\" x2=\"" + x + "\" y2=\"" + num(f.y1) +
           "\" stroke=\"#ddd\"/>\n";
    svg += "<text class=\"tick\" x=\"" + x + "\" y=\"" + num(f.y1 + 18) + "\" text-anchor=\"middle\">" +
           num(v, xd) + "</text>\n";
  }
  for (double v = f.y.lo; v <= f.y.hi + f.y.step * 1e-6; v += f.y.step) {
    if (std::fabs(v) < f.y.step * 1e-6) v = 0;
    const std::string y = num(f.py(v));
    const std::string label = panel.percent ? num(v * 100, yd) + "%" : num(v, yd);
    svg += "<line class=\"grid\" x1=\"" + num(f.x0) + "\" y1=\"" + y + "\" x2=\"" + num(f.x1) + "\" y2=\"" + y +
           "\" stroke=\"#ddd\"/>\n";
    svg += "<text class=\"tick\" x=\"" + num(f.x0 - 6) + "\" y=\"" + num(f.py(v) + 4) + "\" text-anchor=\"end\">" +
           label + "</text>\n";
  }
  const double mid_x = (f.x0 + f.x1) / 2, mid_y = (f.y0 + f.y1) / 2;
  svg += "<text class=\"axis-label\" x=\"" + num(mid_x) + "\" y=\"" + num(f.y1 + 40) +
         "\" text-anchor=\"middle\">epoch</text>\n";
  svg += "<text class=\"axis-label\" transform=\"translate(" + num(f.x0 - 52) + " " + num(mid_y) +
         ") rotate(-90)\" text-anchor=\"middle\">" + escapeXml(panel.y_label) + "</text>\n";
  svg += "<text class=\"panel-title\" x=\"" + num(mid_x) + "\" y=\"" + num(f.y0 - 10) +
         "\" text-anchor=\"middle\" font-weight=\"bold\">" + escapeXml(panel.title) + "</text>\n";
}

void emitSeries(std::string& svg, const Frame& f, const Series& s) {
  svg += "<polyline class=\"series\" data-series=\"" + escapeXml(s.name) + "\" fill=\"none\" stroke=\"" + s.color +
         "\" stroke-width=\"2\" points=\"";
  for (size_t i = 0; i < s.xy.size(); ++i) {
    if (i > 0) svg += ' ';
    svg += num(f.px(s.xy[i].first)) + "," + num(f.py(s.xy[i].second));
  }
  svg += "\"/>\n";
  if (s.xy.size() > kMaxMarkers) return;
  for (const auto& [x, y] : s.xy)
    svg += "<circle cx=\"" + num(f.px(x)) + "\" cy=\"" + num(f.py(y)) + "\" r=\"3\" fill=\"" + s.color + "\"/>\n";
}

void emitLegend(std::string& svg, const Frame& f, const Panel& panel) {
  const double width = 120, row = 18, height = row * panel.series.size() + 8;
  const double x = f.x1 - width - 8, y = panel.legend_bottom ? f.y1 - height - 8 : f.y0 + 8;
  svg += "<g class=\"legend\"><rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(width) +
         "\" height=\"" + num(height) + "\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#999\"/>\n";
  for (size_t i = 0; i < panel.series.size(); ++i) {
    const double ly = y + 4 + row * (i + 0.5);
    svg += "<line x1=\"" + num(x + 8) + "\" y1=\"" + num(ly) + "\" x2=\"" + num(x + 30) + "\" y2=\"" + num(ly) +
           "\" stroke=\"" + panel.series[i].color + "\" stroke-width=\"2\"/>";
    svg += "<text x=\"" + num(x + 36) + "\" y=\"" + num(ly + 4) + "\">" + escapeXml(panel.series[i].name) +
           "</text>\n";
  }
  svg += "</g>\n";
}

Frame frameFor(const Panel& panel, double offset_x) {
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  for (const Series& s : panel.series)
    for (const auto& [x, y] : s.xy) {
      x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x);
      y_lo = std::min(y_lo, y), y_hi = std::max(y_hi, y);
    }
  // Pad y a little so that no point sits on the frame, but never below 0 (losses and accuracies
  // are non-negative) nor, for fractions, above 100%.
  const double pad = (y_hi - y_lo) * 0.03;
  double pad_lo = y_lo - pad, pad_hi = y_hi + pad;
  if (y_lo >= 0) pad_lo = std::max(pad_lo, 0.0);
  if (panel.percent && y_hi <= 1) pad_hi = std::min(pad_hi, 1.0);
  Axis x = panel.series.empty() ? Axis{0, 1, 1} : niceAxis(x_lo, x_hi, true);
  return Frame{offset_x + kLeft, kTop, offset_x + kPanelWidth - kRight, kHeight - kBottom, x,
               niceAxis(pad_lo, pad_hi, false)};
}

void emitPanel(std::string& svg, const Panel& panel, double offset_x) {
  const Frame f = frameFor(panel, offset_x);
  svg += "<g class=\"panel\" data-panel=\"" + escapeXml(panel.title) + "\">\n";
  emitAxes(svg, f, panel);
  for (const Series& s : panel.series) emitSeries(svg, f, s);
  if (panel.series.empty())
    svg += "<text x=\"" + num((f.x0 + f.x1) / 2) + "\" y=\"" + num((f.y0 + f.y1) / 2) +
           "\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n";
  else
    emitLegend(svg, f, panel);
  svg += "</g>\n";
}

}  // namespace

std::string renderTrainingSvg(const std::string& title, const std::vector<EpochPoint>& points, const CurveNames& names) {
  // One colour per data split, the same in both panels.
  const char *train = "#1f77b4", *test = "#d62728", *val = "#2ca02c";
  // train: the model's `loss` during the epoch (penalties included); test, val: the evaluation loss after it.
  Panel loss{"loss", "loss (test, val: " + names.eval_loss + ")", {}, false, false};
  addSeries(loss, gather(points, "train loss", train, &EpochPoint::train_loss));
  addSeries(loss, gather(points, "test loss", test, &EpochPoint::test_loss));
  addSeries(loss, gather(points, "val loss", val, &EpochPoint::val_loss));
  const std::string& s = names.score;
  Panel score{s, s, {}, s == "accuracy", true};
  addSeries(score, gather(points, "train " + s, train, &EpochPoint::train_score));
  addSeries(score, gather(points, "test " + s, test, &EpochPoint::test_score));
  addSeries(score, gather(points, "val " + s, val, &EpochPoint::val_score));

  const double width = (s.empty() ? 1 : 2) * kPanelWidth;
  std::string svg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width, 0) + "\" height=\"" + num(kHeight, 0) +
         "\" viewBox=\"0 0 " + num(width, 0) + " " + num(kHeight, 0) +
         "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text class=\"title\" x=\"" + num(width / 2) + "\" y=\"26\" text-anchor=\"middle\" font-size=\"18\">" +
         escapeXml(title) + "</text>\n";
  emitPanel(svg, loss, 0);
  if (!s.empty()) emitPanel(svg, score, kPanelWidth);
  return svg + "</svg>\n";
}

}  // namespace nnc::rt
