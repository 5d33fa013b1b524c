#include <doctest/doctest.h>

#include "hosts/hosts.h"
#include "hosts/table.h"

using namespace sm::hosts;

TEST_CASE("hosts: entries parse to a lower-case name, a wildcard of one label, an optional prefix") {
  CHECK(parse_pattern("Blog.Example.COM") == Pattern{"blog.example.com", ""});
  CHECK(parse_pattern("blog.example.com.") == Pattern{"blog.example.com", ""});
  CHECK(parse_pattern("*.shop.example.com") == Pattern{"*.shop.example.com", ""});
  CHECK(parse_pattern("*.shop.example.com").wildcard());
  CHECK(parse_pattern("example.com/api") == Pattern{"example.com", "/api"});
  CHECK(parse_pattern("example.com/api/") == Pattern{"example.com", "/api"});
  CHECK(parse_pattern("example.com/") == Pattern{"example.com", ""});
  CHECK(parse_pattern("localhost") == Pattern{"localhost", ""});
  CHECK(parse_pattern("10.0.0.7") == Pattern{"10.0.0.7", ""});
  CHECK(parse_pattern("example.com/v1/api").text() == "example.com/v1/api");
}

TEST_CASE("hosts: a bad entry is refused saying what is wrong") {
  const std::pair<const char*, const char*> bad[] = {
      {"", "empty"},
      {"https://example.com", "not a URL"},
      {"example.com:8080", "no port"},
      {"*example.com", "one leading"},
      {"a.*.example.com", "one leading"},
      {"*.*.example.com", "one leading"},
      {"*", "one leading"},
      {"exa mple.com", "not a host name"},
      {"-example.com", "not a host name"},
      {"example..com", "not a host name"},
      {"ex\x01mple.com", "not a host name"},
      {"example.com/a b", "path prefix"},
      {"example.com/a?b", "path prefix"},
      {"example.com/a/../b", "plain segments"},
      {"example.com//a", "plain segments"},
  };
  for (const auto& b : bad) {
    const std::string entry = b.first, says = b.second;  // (clang 14 cannot capture a structured binding)
    CAPTURE(entry);
    try {
      parse_pattern(entry);
      FAIL("accepted");
    } catch (const BadPattern& e) {
      CHECK(std::string(e.what()).find(says) != std::string::npos);
    }
  }
  CHECK_THROWS_AS(parse_pattern(std::string(254, 'a')), BadPattern);
  CHECK_THROWS_AS(parse_pattern(std::string(64, 'a') + ".com"), BadPattern);  // a label over 63
}

TEST_CASE("hosts: a Host header normalises to what routing compares, or is refused") {
  CHECK(normalise("Blog.Example.com") == "blog.example.com");
  CHECK(normalise("blog.example.com:8080") == "blog.example.com");
  CHECK(normalise("blog.example.com.") == "blog.example.com");
  CHECK(normalise("blog.example.com.:443") == "blog.example.com");
  CHECK(normalise("127.0.0.1:80") == "127.0.0.1");
  CHECK(normalise("[::1]:8080") == "[::1]");
  CHECK(normalise("[2001:DB8::1]") == "[2001:db8::1]");
  for (const char* bad : {"", " ", "blog example.com", "blog.example.com ", "a\tb", "a\x7f", "user@host", "host:",
                          "host:abc", "host:123456", "host:80:80", "[::1", "[::1]x", "[zz]", "a..b", ".", "..",
                          "-a.com", "a/b"}) {
    CAPTURE(bad);
    CHECK(!normalise(bad));
  }
  CHECK(!normalise(std::string(254, 'a')));
  CHECK(normalise(std::string(63, 'a') + "." + std::string(63, 'b')));
}

TEST_CASE("hosts: a path is under a prefix at a segment boundary") {
  CHECK(under_prefix("/anything", ""));
  CHECK(under_prefix("/api", "/api"));
  CHECK(under_prefix("/api/", "/api"));
  CHECK(under_prefix("/api/users?x=1", "/api"));
  CHECK(under_prefix("/api?x=1", "/api"));
  CHECK(!under_prefix("/apix", "/api"));
  CHECK(!under_prefix("/ap", "/api"));
  CHECK(!under_prefix("/", "/api"));
}

TEST_CASE("host table: exact before wildcard, one label for a wildcard, the longest prefix, no app is nothing") {
  const Table t({{"blog", {parse_pattern("blog.example.com"), parse_pattern("www.blog.example.com")}},
                 {"shop", {parse_pattern("*.shop.example.com"), parse_pattern("shop.example.com")}},
                 {"vip", {parse_pattern("vip.shop.example.com")}},
                 {"site", {parse_pattern("example.com")}},
                 {"api", {parse_pattern("example.com/api")}},
                 {"api2", {parse_pattern("example.com/api/v2")}}});
  auto app = [&](std::string_view host, std::string_view path = "/") {
    auto m = t.find(host, path);
    return m ? std::string(m->app) : std::string("-");
  };
  CHECK(app("blog.example.com") == "blog");
  CHECK(app("www.blog.example.com") == "blog");
  CHECK(app("shop.example.com") == "shop");
  CHECK(app("eu.shop.example.com") == "shop");
  CHECK(app("vip.shop.example.com") == "vip");         // exact beats the wildcard
  CHECK(app("a.b.shop.example.com") == "-");           // a wildcard is one label
  CHECK(app("example.com") == "site");
  CHECK(app("example.com", "/api") == "api");
  CHECK(app("example.com", "/api/users") == "api");
  CHECK(app("example.com", "/api/v2/x") == "api2");    // the longest prefix
  CHECK(app("example.com", "/apix") == "site");
  CHECK(t.find("example.com", "/api/v2")->prefix == "/api/v2");
  CHECK(app("other.example.com") == "-");
  CHECK(app("com") == "-");
  CHECK(app("[::1]") == "-");
  CHECK(t.size() == 6);
  // A TLS server name belongs to an app whatever the path: the exact name's entries
  // (the longest prefix first), else the wildcard's.
  auto of_host = [&](std::string_view host) {
    const auto i = t.app_of_host(host);
    return i ? std::to_string(*i) : std::string("-");
  };
  CHECK(of_host("blog.example.com") == "0");
  CHECK(of_host("eu.shop.example.com") == "1");
  CHECK(of_host("vip.shop.example.com") == "2");
  CHECK(of_host("example.com") == "5");  // api2: its prefix is the longest
  CHECK(of_host("nobody.example.org") == "-");
}

TEST_CASE("host table: a host with only prefixed entries does not take other paths; a wildcard may") {
  const Table t({{"api", {parse_pattern("a.example.com/api")}}, {"any", {parse_pattern("*.example.com")}}});
  CHECK(t.find("a.example.com", "/api/x")->app == "api");
  CHECK(t.find("a.example.com", "/")->app == "any");
  const Table only({{"api", {parse_pattern("example.com/api")}}});
  CHECK(!only.find("example.com", "/"));
}

TEST_CASE("host table: one entry in two apps is refused naming both") {
  try {
    Table t({{"one", {parse_pattern("x.example.com")}}, {"two", {parse_pattern("X.example.com.")}}});
    FAIL("accepted");
  } catch (const BadPattern& e) {
    const std::string what = e.what();
    CHECK(what.find("\"one\"") != std::string::npos);
    CHECK(what.find("\"two\"") != std::string::npos);
  }
  // The same host with different prefixes is two entries.
  CHECK_NOTHROW(Table({{"one", {parse_pattern("x.example.com")}}, {"two", {parse_pattern("x.example.com/b")}}}));
}

TEST_CASE("host table: 1,000 apps of 3 hosts each build and route") {
  std::vector<Table::App> apps;
  for (int i = 0; i < 1000; ++i)
    apps.push_back({"app" + std::to_string(i),
                    {parse_pattern("app" + std::to_string(i) + ".example.com"),
                     parse_pattern("*.app" + std::to_string(i) + ".example.com"),
                     parse_pattern("example.org/app" + std::to_string(i))}});
  const Table t(apps);
  CHECK(t.find("app999.example.com", "/")->app == "app999");
  CHECK(t.find("x.app5.example.com", "/")->app == "app5");
  CHECK(t.find("example.org", "/app42/x")->app == "app42");
  CHECK(!t.find("example.org", "/app4200"));
}

#include "hosts/route.h"

namespace {
Router sample_router() {
  return Router({{"blog", {parse_pattern("blog.example.com"), parse_pattern("www.blog.example.com")}, true,
                  "blog.example.com"},
                 {"api", {parse_pattern("example.com/api")}, true, ""},
                 {"raw", {parse_pattern("example.com/raw")}, false, ""},
                 {"shop", {parse_pattern("*.shop.example.com")}, true, ""}});
}
}  // namespace

TEST_CASE("route: forward with the prefix stripped and said; or as is when the app keeps it") {
  const Router r = sample_router();
  auto d = r.decide("example.com", "/api/users?page=2", false);
  CHECK(d.kind == Decision::Kind::Forward);
  CHECK(d.app == "api");
  CHECK(d.target == "/users?page=2");
  CHECK(d.prefix == "/api");
  CHECK(r.decide("example.com", "/api", false).target == "/");
  CHECK(r.decide("example.com", "/api?x=1", false).target == "/?x=1");
  d = r.decide("example.com", "/raw/file", false);
  CHECK(d.app == "raw");
  CHECK(d.target == "/raw/file");
  CHECK(d.prefix.empty());
  d = r.decide("EU.Shop.Example.com:8080", "/cart", false);
  CHECK(d.app == "shop");
  CHECK(d.target == "/cart");
}

TEST_CASE("route: canonical_host answers 308 from the app's other hosts, keeping port, path and query") {
  const Router r = sample_router();
  auto d = r.decide("www.blog.example.com", "/post/1?c=2", true);
  CHECK(d.kind == Decision::Kind::Redirect);
  CHECK(d.target == "https://blog.example.com/post/1?c=2");
  CHECK(r.decide("www.blog.example.com:8443", "/", true).target == "https://blog.example.com:8443/");
  CHECK(r.decide("blog.example.com", "/", false).kind == Decision::Kind::Forward);
}

TEST_CASE("route: an unknown host is 404, never another app; a bad Host or a disagreeing target is 400") {
  const Router r = sample_router();
  auto d = r.decide("other.example.com", "/", false);
  CHECK(d.kind == Decision::Kind::NotFound);
  CHECK(d.app.empty());
  CHECK(d.why == "no app is served at other.example.com");
  CHECK(r.decide("example.com", "/", false).kind == Decision::Kind::NotFound);  // only /api and /raw there
  for (const char* bad : {"", "blog example.com", "blog.example.com\x01", "a..b", "host:x"})
    CHECK(r.decide(bad, "/", false).kind == Decision::Kind::BadRequest);
  d = r.decide("blog.example.com", "http://example.com/api/x", false);
  CHECK(d.kind == Decision::Kind::BadRequest);
  CHECK(d.why == "the request target names another host than the Host header");
  d = r.decide("example.com", "http://Example.com:80/api/x", false);
  CHECK(d.kind == Decision::Kind::Forward);
  CHECK(d.target == "/x");
  CHECK(r.decide("blog.example.com.", "/", false).kind == Decision::Kind::Forward);  // trailing dot
  CHECK(r.decide("blog.example.com", "*", false).kind == Decision::Kind::Forward);   // OPTIONS *
  CHECK(r.decide("blog.example.com", "nonsense", false).kind == Decision::Kind::BadRequest);
}
