#pragma once
// The Prometheus text exposition format (version 0.0.4): what GET /metrics answers.
// Each family is written whole (HELP, TYPE, then its samples) so the output is what
// `promtool check metrics` accepts.

#include <string>
#include <utility>
#include <vector>

#include "stats/histogram.h"

namespace sm::metrics {

// The counters and histograms the hot paths keep (stats/), exported here.
using stats::bump;
using stats::Histogram;
using stats::HistogramSnapshot;
using stats::kDeployBounds;
using stats::kRequestBounds;

/// Label name/value pairs of one sample, in order.
using Labels = std::vector<std::pair<std::string, std::string>>;

/// One sample of a counter or gauge family.
struct Sample {
  Labels labels;
  double value = 0;
};

/// Builds the text of a scrape, one family at a time.
class Exposition {
 public:
  /// A counter family; `name` ends in _total.
  void counter(const std::string& name, const std::string& help, const std::vector<Sample>& samples);
  void gauge(const std::string& name, const std::string& help, const std::vector<Sample>& samples);
  void histogram(const std::string& name, const std::string& help, const HistogramSnapshot& h);
  /// A histogram family with one series per label set (every series' buckets, sum, count).
  void histograms(const std::string& name, const std::string& help,
                  const std::vector<std::pair<Labels, HistogramSnapshot>>& series);
  const std::string& text() const { return out_; }

  /// The Content-Type of the text.
  static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  void family(const std::string& name, const std::string& help, const char* type,
              const std::vector<Sample>& samples);
  std::string out_;
};

/// A label value as the format writes it: backslash, double quote and newline escaped.
std::string escape_label_value(const std::string& v);

}  // namespace sm::metrics
