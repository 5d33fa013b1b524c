#pragma once
// Which app a request is for (contract §13): built once from every app's "hosts", then
// only read, so the proxy's event loops share one without a lock (a reload builds a new
// one and swaps the pointer).

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hosts/hosts.h"

namespace sm::hosts {

class Table {
 public:
  struct App {
    std::string name;
    std::vector<Pattern> hosts;
  };
  /// Throws BadPattern naming both apps when one entry (host and prefix) is in two.
  explicit Table(const std::vector<App>& apps);

  struct Match {
    std::string_view app;
    std::string_view prefix;  // the entry's path prefix ("" for none)
    size_t index = 0;         // the app's place in the list the table was built from
  };
  /// The app for a request to `host` (as normalise() returns it) with target `path`:
  /// the entries of the exact name first, then those of the wildcard one label up
  /// ("a.shop.example.com" → "*.shop.example.com"); among them the longest prefix the
  /// path is under. nullopt: no app has it (404, never another app's answer).
  std::optional<Match> find(std::string_view host, std::string_view path) const;

  /// The app a connection for `host` (as normalise() returns it; a TLS client's server
  /// name) belongs to, whatever the path: the exact name's, else the wildcard's (with
  /// path prefixes, the app of the longest one). nullopt: none.
  std::optional<size_t> app_of_host(std::string_view host) const;

  size_t size() const { return names_.size(); }

 private:
  struct Route {
    std::string prefix;
    size_t app;
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Routes = std::unordered_map<std::string, std::vector<Route>, Hash, std::equal_to<>>;
  static std::optional<Match> longest(const std::vector<Route>& routes, std::string_view path,
                                      const std::vector<std::string>& names);

  std::vector<std::string> names_;
  Routes exact_;     // host → its routes, longest prefix first
  Routes wildcard_;  // the domain after "*." → its routes, longest prefix first
};

}  // namespace sm::hosts
