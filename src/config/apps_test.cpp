#include "config/apps.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "config/config.h"

using namespace sm::config;
using nlohmann::json;

namespace {
/// The ConfigError `parse` throws, or "(accepted)".
template <class Parse>
std::string refusal_of(Parse parse) {
  try {
    parse();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(accepted)";
}
std::string apps_refusal(const json& apps) {
  return refusal_of([&] { parse_apps(apps, "/etc/slot-machine"); });
}
}  // namespace

TEST_CASE("apps: entries with their defaults and resolved paths") {
  const auto apps = parse_apps(json::parse(R"({
    "blog": {"repo": "/srv/blog", "hosts": ["Blog.Example.com"]},
    "shop": {"repo": "shop", "hosts": ["shop.example.com", "*.shop.example.com", "example.com/shop"],
             "config": "shop.json", "strip_prefix": false, "canonical_host": "shop.example.com"}
  })"),
                               "/etc/slot-machine");
  REQUIRE(apps.size() == 2);
  CHECK(apps[0].name == "blog");
  CHECK(apps[0].repo == "/srv/blog");
  CHECK(apps[0].config == "/srv/blog/slot-machine.json");
  CHECK(apps[0].hosts.front().host == "blog.example.com");
  CHECK(apps[0].strip_prefix);
  CHECK(apps[0].canonical_host.empty());
  CHECK(apps[1].repo == "/etc/slot-machine/shop");
  CHECK(apps[1].config == "/etc/slot-machine/shop.json");
  CHECK(apps[1].hosts.size() == 3);
  CHECK(apps[1].hosts[2].prefix == "/shop");
  CHECK(!apps[1].strip_prefix);
  CHECK(apps[1].canonical_host == "shop.example.com");
}

TEST_CASE("apps: names") {
  for (const char* ok : {"a", "blog", "my-shop", "0day", "a1234567890123456789012345678901"}) CHECK(valid_app_name(ok));
  for (const char* bad : {"", "-a", "Blog", "my_shop", "a.b", "a b", "a12345678901234567890123456789012", "é"})
    CHECK(!valid_app_name(bad));
}

TEST_CASE("apps: bad input is refused naming the app and the field") {
  CHECK(apps_refusal(json::array()).find("\"apps\" must be an object") != std::string::npos);
  CHECK(apps_refusal(json::object()).find("\"apps\" must be an object") != std::string::npos);
  CHECK(apps_refusal({{"Blog", {{"repo", "/r"}, {"hosts", {"a.com"}}}}}).find("app name \"Blog\"") != std::string::npos);
  CHECK(apps_refusal({{"blog", "x"}}).find("app \"blog\": must be an object") != std::string::npos);
  CHECK(apps_refusal({{"blog", {{"hosts", {"a.com"}}}}}).find("app \"blog\": \"repo\" is required") != std::string::npos);
  CHECK(apps_refusal({{"blog", {{"repo", "/r"}}}}).find("app \"blog\": \"hosts\" is required") != std::string::npos);
  CHECK(apps_refusal({{"blog", {{"repo", "/r"}, {"hosts", json::array()}}}}).find("\"hosts\" is required") !=
        std::string::npos);
  CHECK(apps_refusal({{"blog", {{"repo", "/r"}, {"hosts", {"a.com:80"}}}}}).find("app \"blog\": \"hosts\": host \"a.com:80\": no port") !=
        std::string::npos);
  CHECK(apps_refusal({{"blog", {{"repo", "/r"}, {"hosts", {"a.com"}}, {"hots", 1}}}}).find("did you mean \"hosts\"") !=
        std::string::npos);
  CHECK(apps_refusal({{"blog", {{"repo", "/r"}, {"hosts", {"a.com"}}, {"canonical_host", "b.com"}}}})
            .find("\"canonical_host\" \"b.com\" must be one of the app's \"hosts\"") != std::string::npos);
  CHECK(apps_refusal({{"blog", {{"repo", "/r"}, {"hosts", {"*.a.com"}}, {"canonical_host", "*.a.com"}}}})
            .find("without a wildcard") != std::string::npos);
  const std::string twice =
      apps_refusal({{"one", {{"repo", "/a"}, {"hosts", {"x.com"}}}}, {"two", {{"repo", "/b"}, {"hosts", {"X.com."}}}}});
  CHECK(twice.find("is in two apps, \"one\" and \"two\"") != std::string::npos);
}

TEST_CASE("apps: 1,000 load, 1,001 are refused with the limit") {
  json apps = json::object();
  for (int i = 0; i < 1000; ++i)
    apps["app" + std::to_string(i)] = {{"repo", "/srv/" + std::to_string(i)}, {"hosts", {"h" + std::to_string(i) + ".com"}}};
  CHECK(parse_apps(apps, "/").size() == 1000);
  apps["one-more"] = {{"repo", "/srv/x"}, {"hosts", {"x.com"}}};
  CHECK(apps_refusal(apps).find("holds 1001 apps; one server takes at most 1000") != std::string::npos);
}

TEST_CASE("server config: the server's fields and the apps; an app's field at the top is refused saying where it goes") {
  const auto sc = parse_server(R"({
    "port": 8080, "api_port": 9200, "proxy_timeout_ms": 5000,
    "apps": {"blog": {"repo": "/srv/blog", "hosts": ["blog.example.com"]}}
  })",
                               "/etc/slot-machine");
  CHECK(sc.server.port == 8080);
  CHECK(sc.server.api_port == 9200);
  CHECK(sc.server.proxy_timeout_ms == 5000);
  CHECK(sc.server.start_command.empty());
  REQUIRE(sc.apps.size() == 1);
  CHECK(sc.apps[0].name == "blog");
  CHECK(is_server_config(R"({"apps": {}})"));
  CHECK(!is_server_config(R"({"start_command": "x"})"));
  CHECK(!is_server_config("not json"));

  auto refused = [](const std::string& text) { return refusal_of([&] { parse_server(text, "/"); }); };
  CHECK(refused(R"({"start_command": "node .", "apps": {"a": {"repo": "/a", "hosts": ["a.com"]}}})")
            .find("\"start_command\" is an app's field: with \"apps\" it belongs in each app's own config") !=
        std::string::npos);
  CHECK(refused(R"({"prot": 80, "apps": {"a": {"repo": "/a", "hosts": ["a.com"]}}})")
            .find("unknown key \"prot\" (did you mean \"port\"?)") != std::string::npos);
  CHECK(refused(R"({"port": 0, "apps": {"a": {"repo": "/a", "hosts": ["a.com"]}}})").find("\"port\" must be 1-65535") !=
        std::string::npos);
  CHECK(refused(R"({"apps": {"a": {"repo": "/a"}}})").find("app \"a\": \"hosts\" is required") != std::string::npos);
  // user and group: names, checked against the system when the app is set up.
  const auto users = parse_server(R"({"apps": {"a": {"repo": "/a", "hosts": ["a.com"], "user": "www-data",
                                                     "group": "web"}}})",
                                  "/");
  CHECK(users.apps[0].user == "www-data");
  CHECK(users.apps[0].group == "web");
  CHECK(refused(R"({"apps": {"a": {"repo": "/a", "hosts": ["a.com"], "user": "bad name"}}})")
            .find("app \"a\": \"user\" must be a system user name") != std::string::npos);
  CHECK(refused(R"({"apps": {"a": {"repo": "/a", "hosts": ["a.com"], "user": 0}}})").find("\"user\"") !=
        std::string::npos);
  CHECK(refused(R"({"apps": {"a": {"repo": "/a", "hosts": ["a.com"], "group": "web"}}})")
            .find("\"group\" needs \"user\"") != std::string::npos);
  // tls.acme: each app's certificate names its hosts, so a server config lists no domains.
  const auto acme = parse_server(R"({"tls": {"port": 8443, "acme": {"email": "ops@example.com"}},
                                     "apps": {"a": {"repo": "/a", "hosts": ["a.com"]}}})",
                                 "/");
  CHECK(acme.server.acme);
  CHECK(acme.server.acme_domains.empty());
  CHECK(acme.server.tls_port == 8443);
  CHECK(refused(R"({"tls": {"acme": {"domains": ["a.com"]}}, "apps": {"a": {"repo": "/a", "hosts": ["a.com"]}}})")
            .find("\"tls.acme.domains\" is not for a server config") != std::string::npos);
}

TEST_CASE("an app's own file: its fields; the server's fields ignored and named once") {
  const auto app = parse_app_file(R"({"start_command": "node .", "port": 80, "api_port": 9100, "standby": "warm"})",
                                  "/srv/blog");
  CHECK(app.config.start_command == "node .");
  CHECK(app.config.standby == "warm");
  REQUIRE(app.warnings.size() == 1);
  CHECK(app.warnings[0] == "config: \"port\", \"api_port\" ignored: the server's config sets them");
  CHECK_THROWS_WITH_AS(parse_app_file(R"({"port": 80})", "/"), doctest::Contains("\"start_command\" is required"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse_app_file(R"({"start_command": "x", "apps": {}})", "/"),
                       doctest::Contains("cannot hold \"apps\""), ConfigError);
}

TEST_CASE("a server config read as one app's config says what it is, not that start_command is missing") {
  CHECK_THROWS_WITH_AS(parse(R"({"apps": {"a": {"repo": "/a", "hosts": ["a.com"]}}})", "/"),
                       doctest::Contains("it is a server config (several apps, contract §13), not one app's config"),
                       ConfigError);
}
