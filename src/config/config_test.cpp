#include "config/config.h"

#include <doctest/doctest.h>

using sm::config::ConfigError;
using sm::config::parse;

namespace {
std::string error_of(const std::string& text) {
  try {
    parse(text, "/base");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("config: defaults apply and internal_port follows port") {
  auto l = parse(R"({"start_command":"node index.js","port":4000})", "/base");
  CHECK(l.config.port == 4000);
  CHECK(l.config.internal_port == 4000);
  CHECK(l.config.health_endpoint == "/healthz");
  CHECK(l.config.health_timeout_ms == 10000);
  CHECK(l.config.drain_timeout_ms == 5000);
  CHECK(l.config.api_port == 9100);
  CHECK(l.config.api_bind == "127.0.0.1");
  CHECK(l.config.setup_command.empty());
  CHECK(l.config.env_file.empty());
  CHECK(l.warnings.empty());
}

TEST_CASE("config: env_file is resolved against the config's directory") {
  auto rel = parse(R"({"start_command":"x","env_file":".env"})", "/srv/app");
  CHECK(rel.config.env_file == "/srv/app/.env");
  auto abs = parse(R"({"start_command":"x","env_file":"/etc/app.env"})", "/srv/app");
  CHECK(abs.config.env_file == "/etc/app.env");
}

TEST_CASE("config: errors name the field and the value") {
  CHECK(error_of("{nope") .find("not valid JSON") != std::string::npos);
  CHECK(error_of("[1,2]").find("JSON object") != std::string::npos);
  CHECK(error_of("{}").find("\"start_command\" is required") != std::string::npos);
  CHECK(error_of(R"({"start_command":""})").find("\"start_command\" must not be empty") !=
        std::string::npos);
  CHECK(error_of(R"({"start_command":5})") ==
        "config: \"start_command\" must be a string, got an integer (5)");
  CHECK(error_of(R"({"start_command":"x","port":70000})") ==
        "config: \"port\" must be 1-65535, got 70000");
  CHECK(error_of(R"({"start_command":"x","internal_port":0})") ==
        "config: \"internal_port\" must be 1-65535, got 0");
  CHECK(error_of(R"({"start_command":"x","api_port":"9100"})").find("\"api_port\" must be an integer") !=
        std::string::npos);
  CHECK(error_of(R"({"start_command":"x","port":3000.5})").find("\"port\" must be an integer") !=
        std::string::npos);
  CHECK(error_of(R"({"start_command":"x","health_endpoint":"healthz"})").find("\"health_endpoint\"") !=
        std::string::npos);
  CHECK(error_of(R"({"start_command":"x","health_timeout_ms":0})").find("\"health_timeout_ms\"") !=
        std::string::npos);
  CHECK(error_of(R"({"start_command":"x","drain_timeout_ms":-1})").find("\"drain_timeout_ms\"") !=
        std::string::npos);
  CHECK(error_of(R"({"start_command":"x","proxy_workers":0})") ==
        "config: \"proxy_workers\" must be 1-64 (the proxy's event loops; leave it out for one per CPU), got 0");
  CHECK(error_of(R"({"start_command":"x","proxy_workers":65})").find("must be 1-64") != std::string::npos);
  CHECK(error_of(R"({"start_command":"x","max_request_body":-1})") ==
        "config: \"max_request_body\" must be 0 (no limit) or a size in bytes up to 1125899906842624 (1 PiB), got -1");
  CHECK(error_of(R"({"start_command":"x","max_request_body":"1MB"})").find("max_request_body") != std::string::npos);
  CHECK(error_of(R"({"start_command":"x","log_max_bytes":100})") ==
        "config: \"log_max_bytes\" must be 4096-1099511627776, got 100");
  CHECK(error_of(R"({"start_command":"x","log_keep":101})") == "config: \"log_keep\" must be 0-100, got 101");
  CHECK(error_of(R"({"start_command":"x","port":12E1211})").find("not valid JSON") !=
        std::string::npos);  // a number too large threw out_of_range (found by fuzzing)
  CHECK(error_of(R"({"start_command":"x","setup_timeout_ms":-5})") ==
        "config: \"setup_timeout_ms\" must be 0-86400000 milliseconds, got -5");
  CHECK(error_of(R"({"start_command":"x","proxy_header_timeout_ms":0})") ==
        "config: \"proxy_header_timeout_ms\" must be 1-86400000 milliseconds, got 0");
  CHECK(error_of(R"({"start_command":"x","proxy_max_conns_per_ip":-1})") ==
        "config: \"proxy_max_conns_per_ip\" must be 0-10000 (0 = no limit), got -1");
}

TEST_CASE("config: unknown keys are warnings, not errors") {
  auto l = parse(R"({"start_command":"x","colour":"blue"})", "/base");
  REQUIRE(l.warnings.size() == 1);
  CHECK(l.warnings[0] == "config: unknown key \"colour\" ignored");
}

TEST_CASE("config: an unknown key a few edits from a known one names it; a refused config names its unknown keys") {
  auto l = parse(R"({"start_command":"x","prot":80,"setup_comand":"y","health_endpiont":"/h","x":1})", "/base");
  REQUIRE(l.warnings.size() == 4);
  CHECK(l.warnings[0] == "config: unknown key \"health_endpiont\" (did you mean \"health_endpoint\"?) ignored");
  CHECK(l.warnings[1] == "config: unknown key \"prot\" (did you mean \"port\"?) ignored");
  CHECK(l.warnings[2] == "config: unknown key \"setup_comand\" (did you mean \"setup_command\"?) ignored");
  CHECK(l.warnings[3] == "config: unknown key \"x\" ignored");  // nothing is that close
  CHECK(error_of(R"({"start_comand":"x"})") ==
        "config: \"start_command\" is required (the command that starts your app); unknown key \"start_comand\" "
        "(did you mean \"start_command\"?)");
  CHECK(error_of(R"({"port":3000}
)") == "config: \"start_command\" is required (the command that starts your app)");  // no unknown key: as before
  CHECK(error_of("{\"start_command\": \"x\",\n}") ==
        "config: not valid JSON: parse error at line 2, column 1: syntax error while parsing object key - unexpected "
        "'}'; expected string literal (a comma after the last entry?)");
}

TEST_CASE("config: tls.acme takes domains (DNS names), email, an https directory_url and ca_file") {
  auto base = std::filesystem::path("/srv/app");
  auto c = sm::config::parse(R"({"start_command":"x","tls":{"acme":{"domains":["Example.com","www.example.com"],
                                 "email":"ops@example.com"}}})",
                             base)
               .config;
  CHECK(c.tls_port == 443);
  CHECK(c.tls_cert.empty());
  CHECK(c.acme_domains == std::vector<std::string>{"example.com", "www.example.com"});
  CHECK(c.acme_email == "ops@example.com");
  CHECK(c.acme_directory_url == "https://acme-v02.api.letsencrypt.org/directory");
  auto bad = [&](const std::string& acme) {
    try {
      sm::config::parse(R"({"start_command":"x","tls":{"port":8443,"acme":)" + acme + "}}", base);
    } catch (const sm::config::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK(bad(R"({"domains":["a.test"]})") == "accepted");
  CHECK(bad(R"({})").find("\"tls.acme.domains\" must be a non-empty array") != std::string::npos);
  CHECK(bad(R"({"domains":[]})").find("\"tls.acme.domains\" must be a non-empty array") != std::string::npos);
  CHECK(bad(R"({"domains":"a.test"})").find("\"tls.acme.domains\" must be a non-empty array") != std::string::npos);
  CHECK(bad(R"({"domains":[1]})").find("entries must be strings") != std::string::npos);
  CHECK(bad(R"({"domains":["*.a.test"]})").find("wildcards need a DNS-01 challenge") != std::string::npos);
  CHECK(bad(R"({"domains":["127.0.0.1"]})").find("IP addresses") != std::string::npos);
  CHECK(bad(R"({"domains":["a..test"]})").find("empty label") != std::string::npos);
  CHECK(bad(R"({"domains":["-a.test"]})").find("starts or ends with '-'") != std::string::npos);
  CHECK(bad(R"({"domains":["a_b.test"]})").find("'_' is not a letter") != std::string::npos);
  CHECK(bad(R"({"domains":["a.test","A.test"]})").find("lists \"a.test\" twice") != std::string::npos);
  CHECK(bad(R"({"domains":["a.test"],"email":"nobody"})").find("\"tls.acme.email\" must be an e-mail") != std::string::npos);
  CHECK(bad(R"({"domains":["a.test"],"directory_url":"http://ca/dir"})").find("must be an https:// URL") != std::string::npos);
  CHECK(bad(R"({"domains":["a.test"],"ca_file":"/nonexistent/ca.pem"})").find("no file at /nonexistent/ca.pem") != std::string::npos);
  CHECK(bad(R"({"domains":["a.test"],"colour":1})").find("\"tls.acme\" does not take \"colour\"") != std::string::npos);
  CHECK(bad(R"("yes")").find("\"tls.acme\" must be an object") != std::string::npos);
  try {
    sm::config::parse(R"({"start_command":"x","tls":{"cert":"c","key":"k","acme":{"domains":["a.test"]}}})", base);
    FAIL("accepted");
  } catch (const sm::config::ConfigError& e) {
    CHECK(std::string(e.what()).find("\"acme\" or \"cert\"/\"key\", not both") != std::string::npos);
  }
}

TEST_CASE("config: tls takes port (443), cert and key; clashes and bad values are named") {
  auto base = std::filesystem::path("/srv/app");
  auto c = sm::config::parse(R"({"start_command":"x","tls":{"cert":"c.pem","key":"/k.pem"}})", base).config;
  CHECK(c.tls_port == 443);
  CHECK(c.tls_cert == "/srv/app/c.pem");
  CHECK(c.tls_key == "/k.pem");
  auto bad = [&](const std::string& tls) {
    try {
      sm::config::parse(R"({"start_command":"x","port":3000,"tls":)" + tls + "}", base);
    } catch (const sm::config::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK(bad(R"({"port":3000,"cert":"c","key":"k"})").find("\"tls.port\" 3000 is also \"port\"") != std::string::npos);
  CHECK(bad(R"({"port":70000,"cert":"c","key":"k"})").find("\"tls.port\" must be 1-65535") != std::string::npos);
  CHECK(bad(R"({"port":"443","cert":"c","key":"k"})").find("\"tls.port\" must be an integer") != std::string::npos);
  CHECK(bad(R"({"cert":"c"})").find("\"tls.key\" must be the path") != std::string::npos);
  CHECK(bad(R"({"cert":"c","key":"k","extra":1})").find("\"tls\" does not take \"extra\"") != std::string::npos);
  CHECK(bad(R"("on")").find("\"tls\" must be an object") != std::string::npos);
}

TEST_CASE("config: restart is never (default) or on-failure") {
  auto base = std::filesystem::path("/srv/app");
  CHECK_FALSE(sm::config::parse(R"({"start_command":"x"})", base).config.restart_on_failure);
  CHECK(sm::config::parse(R"({"start_command":"x","restart":"on-failure"})", base).config.restart_on_failure);
  CHECK_THROWS_WITH_AS(sm::config::parse(R"({"start_command":"x","restart":"always"})", base),
                       doctest::Contains("\"restart\" must be \"never\" or \"on-failure\", got \"always\""),
                       sm::config::ConfigError);
}

TEST_CASE("config: shared_dirs are relative paths inside the slot; bad entries are named") {
  auto base = std::filesystem::path("/srv/app");
  auto c = sm::config::parse(R"({"start_command":"x","shared_dirs":["data","var/uploads/"]})", base).config;
  CHECK(c.shared_dirs == std::vector<std::string>{"data", "var/uploads"});
  auto bad = [&](const std::string& dirs) {
    try {
      sm::config::parse(R"({"start_command":"x","shared_dirs":)" + dirs + "}", base);
    } catch (const sm::config::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK(bad(R"(["/var/data"])").find("\"shared_dirs\" entry \"/var/data\" is absolute") != std::string::npos);
  CHECK(bad(R"(["../data"])").find("must not contain \".\" or \"..\"") != std::string::npos);
  CHECK(bad(R"(["data/../../x"])").find("must not contain") != std::string::npos);
  CHECK(bad(R"([""])").find("is empty") != std::string::npos);
  CHECK(bad(R"(["data","data/"])").find("is listed twice") != std::string::npos);
  CHECK(bad(R"(["data","data/x"])").find("is inside \"data\"") != std::string::npos);
  CHECK(bad(R"([".git/hooks"])").find("is inside .git") != std::string::npos);
  CHECK(bad(R"(["a//b"])").find("empty component") != std::string::npos);
  CHECK(bad(R"("data")").find("must be an array") != std::string::npos);
  CHECK(bad(R"([1])").find("entries must be strings") != std::string::npos);
}
