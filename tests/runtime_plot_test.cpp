// Tests for runtime/plot: the SVG is well-formed XML, holds the (escaped) title, one polyline per
// series with one point per finite value, and points placed in the right order on the axes.
#include "runtime/plot.h"

#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <sstream>

using namespace nnc::rt;

namespace {

#define EXPECT_HAS(haystack, needle) EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (needle)

// Checks that every element is closed in order, and that '&' only starts an entity. Returns "" or
// a description of the first problem.
std::string xmlProblem(const std::string& svg) {
  std::vector<std::string> open;
  static const std::regex tag(R"(<(/?)([a-zA-Z][\w:-]*)[^<>]*?(/?)>)");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), tag); it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    if (m[3].length()) continue;  // <x/>
    if (!m[1].length()) {
      open.push_back(m[2]);
    } else if (open.empty() || open.back() != m[2].str()) {
      return "unexpected </" + m[2].str() + ">";
    } else {
      open.pop_back();
    }
  }
  if (!open.empty()) return "unclosed <" + open.back() + ">";
  static const std::regex bad_amp(R"(&(?!(amp|lt|gt|quot|apos);))");
  if (std::regex_search(svg, bad_amp)) return "bare '&'";
  return "";
}

struct Polyline {
  std::string series;
  std::vector<std::pair<double, double>> points;
};

std::vector<Polyline> polylines(const std::string& svg) {
  std::vector<Polyline> out;
  static const std::regex re(R"re(<polyline class="series" data-series="([^"]*)"[^>]*points="([^"]*)")re");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it) {
    Polyline p{(*it)[1], {}};
    std::istringstream in((*it)[2].str());
    double x, y;
    char comma;
    while (in >> x >> comma >> y) p.points.emplace_back(x, y);
    out.push_back(p);
  }
  return out;
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

std::vector<EpochPoint> decreasingRun(int epochs) {
  std::vector<EpochPoint> points;
  for (int e = 1; e <= epochs; ++e) points.push_back({e, 2.0 / e, 2.2 / e, 0.5 + 0.04 * e});
  return points;
}

}  // namespace

TEST(Plot, WellFormedWithTitleAndOnePolylinePerSeries) {
  const std::string svg = renderTrainingSvg("mlp on fashion", decreasingRun(10));
  EXPECT_EQ(xmlProblem(svg), "");
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_HAS(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"");
  EXPECT_HAS(svg, ">mlp on fashion</text>");
  const auto lines = polylines(svg);
  ASSERT_EQ(lines.size(), 3u);  // no validation: train loss, test loss, test accuracy
  EXPECT_EQ(lines[0].series, "train loss");
  EXPECT_EQ(lines[1].series, "test loss");
  EXPECT_EQ(lines[2].series, "test accuracy");
  for (const Polyline& p : lines) EXPECT_EQ(p.points.size(), 10u) << p.series;
  EXPECT_EQ(count(svg, "<polyline"), 3u);
  EXPECT_EQ(count(svg, "<circle"), 30u);  // a marker per point
  for (const char* label : {">epoch</text>", ">loss (test, val: cross-entropy)</text>", ">accuracy</text>", ">loss</text>"})
    EXPECT_HAS(svg, label);
}

TEST(Plot, PointsGoLeftToRightAndHigherValuesHigherUp) {
  const auto lines = polylines(renderTrainingSvg("t", decreasingRun(6)));
  ASSERT_EQ(lines.size(), 3u);
  for (const Polyline& p : lines)
    for (size_t i = 1; i < p.points.size(); ++i) EXPECT_GT(p.points[i].first, p.points[i - 1].first) << p.series;
  // Loss falls, so its SVG y grows (y points down); accuracy rises, so its y shrinks.
  for (size_t i = 1; i < 6; ++i) {
    EXPECT_GT(lines[0].points[i].second, lines[0].points[i - 1].second);
    EXPECT_LT(lines[2].points[i].second, lines[2].points[i - 1].second);
  }
  // The test loss is above the train loss at every epoch: smaller y.
  for (size_t i = 0; i < 6; ++i) EXPECT_LT(lines[1].points[i].second, lines[0].points[i].second);
  // Both panels share the epoch scale: the accuracy panel is the loss panel shifted right.
  EXPECT_NEAR(lines[2].points[0].first - lines[0].points[0].first, 500.0, 0.01);
}

TEST(Plot, ValidationSeriesSkipMissingEpochs) {
  auto points = decreasingRun(8);
  for (auto& p : points)
    if (p.epoch % 2 == 0) p.val_loss = 1.0 / p.epoch, p.val_score = 0.6;
  points[3].train_loss = NAN;  // a diverged or unmeasured value is skipped, not drawn at 0
  const auto lines = polylines(renderTrainingSvg("t", points));
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0].series, "train loss");
  EXPECT_EQ(lines[0].points.size(), 7u);
  EXPECT_EQ(lines[2].series, "val loss");
  EXPECT_EQ(lines[2].points.size(), 4u);
  EXPECT_EQ(lines[4].series, "val accuracy");
  EXPECT_EQ(lines[4].points.size(), 4u);
}

TEST(Plot, AxesHaveReadableTicks) {
  const std::string svg = renderTrainingSvg("t", decreasingRun(10));
  // Epoch ticks are whole numbers; accuracy ticks are percentages; loss starts at 0.
  static const std::regex x_tick(R"re(<text class="tick" [^>]*text-anchor="middle">([^<]*)</text>)re");
  std::vector<std::string> x_labels;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), x_tick); it != std::sregex_iterator(); ++it)
    x_labels.push_back((*it)[1]);
  const std::vector<std::string> epochs = {"0", "2", "4", "6", "8", "10"};
  std::vector<std::string> both = epochs;
  both.insert(both.end(), epochs.begin(), epochs.end());  // the same axis in each panel
  EXPECT_EQ(x_labels, both);
  EXPECT_HAS(svg, "text-anchor=\"end\">0.0</text>");
  EXPECT_HAS(svg, "%</text>");
  EXPECT_EQ(svg.find("-0"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(Plot, EscapesTheTitleAndSeriesNames) {
  const std::string svg = renderTrainingSvg("a<b & \"c\"", decreasingRun(2));
  EXPECT_EQ(xmlProblem(svg), "");
  EXPECT_HAS(svg, ">a&lt;b &amp; &quot;c&quot;</text>");
}

TEST(Plot, SingleEpochAndEmptyRunsStillRender) {
  const std::string one = renderTrainingSvg("one", {{1, 0.7, 0.65, 0.81}});
  EXPECT_EQ(xmlProblem(one), "");
  const auto lines = polylines(one);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].points.size(), 1u);
  EXPECT_EQ(count(one, "<circle"), 3u);  // a lone point is visible as a marker
  const std::string empty = renderTrainingSvg("none", {});
  EXPECT_EQ(xmlProblem(empty), "");
  EXPECT_EQ(count(empty, "<polyline"), 0u);
  EXPECT_EQ(count(empty, ">no data</text>"), 2u);
  EXPECT_EQ(empty.find("nan"), std::string::npos);
}

TEST(Plot, LongRunsDropMarkersButKeepEveryPoint) {
  const std::string svg = renderTrainingSvg("long", decreasingRun(200));
  const auto lines = polylines(svg);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].points.size(), 200u);
  EXPECT_EQ(count(svg, "<circle"), 0u);
}

TEST(Plot, TheXmlCheckerCatchesBrokenDocuments) {
  EXPECT_EQ(xmlProblem("<svg><g></svg>"), "unexpected </svg>");
  EXPECT_EQ(xmlProblem("<svg><g/>"), "unclosed <svg>");
  EXPECT_EQ(xmlProblem("<svg>a & b</svg>"), "bare '&'");
}
