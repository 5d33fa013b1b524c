#include "metrics/exposition.h"

#include <fmt/format.h>

namespace sm::metrics {
namespace {

std::string number(double v) {
  if (v == static_cast<double>(static_cast<long long>(v)) && v < 1e15 && v > -1e15)
    return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);  // shortest round-trip form
}

std::string labels_text(const Labels& labels) {
  if (labels.empty()) return "";
  std::string s = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) s += ',';
    s += fmt::format("{}=\"{}\"", labels[i].first, escape_label_value(labels[i].second));
  }
  return s + "}";
}

std::string help_text(const std::string& help) {  // HELP escapes backslash and newline
  std::string s;
  for (char c : help) {
    if (c == '\\') s += "\\\\";
    else if (c == '\n') s += "\\n";
    else s += c;
  }
  return s;
}

}  // namespace

std::string escape_label_value(const std::string& v) {
  std::string s;
  for (char c : v) {
    if (c == '\\') s += "\\\\";
    else if (c == '"') s += "\\\"";
    else if (c == '\n') s += "\\n";
    else s += c;
  }
  return s;
}

void Exposition::family(const std::string& name, const std::string& help, const char* type,
                        const std::vector<Sample>& samples) {
  out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help_text(help), name, type);
  for (const auto& s : samples) out_ += fmt::format("{}{} {}\n", name, labels_text(s.labels), number(s.value));
}

void Exposition::counter(const std::string& name, const std::string& help, const std::vector<Sample>& samples) {
  family(name, help, "counter", samples);
}

void Exposition::gauge(const std::string& name, const std::string& help, const std::vector<Sample>& samples) {
  family(name, help, "gauge", samples);
}

void Exposition::histogram(const std::string& name, const std::string& help, const HistogramSnapshot& h) {
  histograms(name, help, {{Labels{}, h}});
}

void Exposition::histograms(const std::string& name, const std::string& help,
                            const std::vector<std::pair<Labels, HistogramSnapshot>>& series) {
  out_ += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help_text(help), name);
  for (const auto& [labels, h] : series) {
    for (size_t i = 0; i < h.cumulative.size(); ++i) {
      Labels with_le = labels;
      with_le.emplace_back("le", i < h.bounds.size() ? number(h.bounds[i]) : "+Inf");
      out_ += fmt::format("{}_bucket{} {}\n", name, labels_text(with_le), h.cumulative[i]);
    }
    out_ += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, labels_text(labels), number(h.sum), name,
                        labels_text(labels), h.count());
  }
}

}  // namespace sm::metrics
