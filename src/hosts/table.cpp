#include "hosts/table.h"

#include <fmt/format.h>

#include <algorithm>

namespace sm::hosts {

Table::Table(const std::vector<App>& apps) {
  for (size_t i = 0; i < apps.size(); ++i) {
    names_.push_back(apps[i].name);
    for (const Pattern& p : apps[i].hosts) {
      auto& routes = p.wildcard() ? wildcard_[p.host.substr(2)] : exact_[p.host];
      for (const Route& r : routes)
        if (r.prefix == p.prefix)
          throw BadPattern(fmt::format("host \"{}\" is in two apps, \"{}\" and \"{}\": give it to one", p.text(),
                                       names_[r.app], apps[i].name));
      routes.push_back({p.prefix, i});
    }
  }
  for (Routes* table : {&exact_, &wildcard_})
    for (auto& [host, routes] : *table)
      std::sort(routes.begin(), routes.end(),
                [](const Route& a, const Route& b) { return a.prefix.size() > b.prefix.size(); });
}

std::optional<Table::Match> Table::longest(const std::vector<Route>& routes, std::string_view path,
                                           const std::vector<std::string>& names) {
  for (const Route& r : routes)
    if (under_prefix(path, r.prefix)) return Match{names[r.app], r.prefix, r.app};
  return std::nullopt;
}

std::optional<Table::Match> Table::find(std::string_view host, std::string_view path) const {
  if (auto it = exact_.find(host); it != exact_.end())
    if (auto m = longest(it->second, path, names_)) return m;
  const size_t dot = host.find('.');
  if (dot == std::string_view::npos || host.starts_with('[')) return std::nullopt;
  if (auto it = wildcard_.find(host.substr(dot + 1)); it != wildcard_.end()) return longest(it->second, path, names_);
  return std::nullopt;
}

std::optional<size_t> Table::app_of_host(std::string_view host) const {
  if (auto it = exact_.find(host); it != exact_.end() && !it->second.empty()) return it->second.front().app;
  const size_t dot = host.find('.');
  if (dot == std::string_view::npos || host.starts_with('[')) return std::nullopt;
  if (auto it = wildcard_.find(host.substr(dot + 1)); it != wildcard_.end() && !it->second.empty())
    return it->second.front().app;
  return std::nullopt;
}

}  // namespace sm::hosts
