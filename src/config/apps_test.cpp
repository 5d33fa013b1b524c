#include "config/apps.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "config/config.h"

using namespace sm::config;
using nlohmann::json;

namespace {
std::string apps_refusal(const json& apps) {
  try {
    parse_apps(apps, "/etc/slot-machine");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(accepted)";
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
