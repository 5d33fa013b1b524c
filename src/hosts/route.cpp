#include "hosts/route.h"

#include <fmt/format.h>

namespace sm::hosts {

namespace {

std::vector<Table::App> table_of(const std::vector<AppRoutes>& apps) {
  std::vector<Table::App> out;
  for (const auto& a : apps) out.push_back({a.name, a.hosts});
  return out;
}

Decision refuse(Decision::Kind kind, std::string why) {
  Decision d;
  d.kind = kind;
  d.why = std::move(why);
  return d;
}

/// The port of a Host header (":8080"), or "".
std::string_view port_of(std::string_view host_header) {
  const size_t close = host_header.rfind(']');
  const size_t colon = host_header.rfind(':');
  if (colon == std::string_view::npos || (close != std::string_view::npos && colon < close)) return {};
  return host_header.substr(colon);
}

}  // namespace

Router::Router(std::vector<AppRoutes> apps) : apps_(std::move(apps)), table_(table_of(apps_)) {}

Decision Router::decide(std::string_view host_header, std::string_view target, bool tls) const {
  using Kind = Decision::Kind;
  std::string_view path = target;
  std::string_view authority;
  if (const size_t scheme = target.find("://"); scheme != std::string_view::npos && !target.starts_with("/")) {
    // Absolute-form: its authority routes, and a Host that names another is refused.
    const std::string_view rest = target.substr(scheme + 3);
    const size_t slash = rest.find_first_of("/?");
    authority = rest.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
  }
  const auto host = normalise(host_header);
  if (!host) return refuse(Kind::BadRequest, "the Host header is not a host name");
  if (!authority.empty()) {
    const auto named = normalise(authority);
    if (!named) return refuse(Kind::BadRequest, "the request target's host is not a host name");
    if (*named != *host) return refuse(Kind::BadRequest, "the request target names another host than the Host header");
  }
  if (path == "*") path = "/";
  if (path.empty() || (path.front() != '/')) return refuse(Kind::BadRequest, "the request target is not a path");

  const auto match = table_.find(*host, path);
  if (!match) return refuse(Kind::NotFound, fmt::format("no app is served at {}", host->substr(0, 253)));
  const AppRoutes* app = &apps_[match->index];  // the table was built from apps_, in order
  Decision d;
  d.app = app->name;
  d.index = match->index;
  if (!app->canonical_host.empty() && *host != app->canonical_host) {
    d.kind = Kind::Redirect;
    d.target = fmt::format("{}://{}{}{}", tls ? "https" : "http", app->canonical_host, port_of(host_header), path);
    return d;
  }
  d.kind = Kind::Forward;
  if (app->strip_prefix && !match->prefix.empty()) {
    std::string_view rest = path.substr(match->prefix.size());
    d.target = rest.empty() || rest.front() == '?' ? "/" + std::string(rest) : std::string(rest);
    d.prefix = std::string(match->prefix);
  } else {
    d.target = std::string(path);
  }
  return d;
}

std::optional<size_t> Router::app_of_server_name(std::string_view server_name) const {
  const auto host = normalise(server_name);
  if (!host) return std::nullopt;
  return table_.app_of_host(*host);
}

}  // namespace sm::hosts
