#include "init/init.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace fs = std::filesystem;

namespace {
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "sm-init-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name, std::ios::binary) << text;
  }
  std::string read(const std::string& name) const {
    std::ifstream in(path / name);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
};
}  // namespace

TEST_CASE("init: detection table, first match wins") {
  TempDir d;
  d.write("package-lock.json", "{}");
  d.write("requirements.txt", "");
  auto npm = sm::init::detect(d.path);
  REQUIRE(npm);
  CHECK(npm->setup_command == "npm ci");
  CHECK(npm->start_command == "node index.js");

  d.write("package.json", R"({"main":"server.js"})");
  CHECK(sm::init::detect(d.path)->start_command == "node server.js");
  d.write("package.json", R"({"main":"server.js","scripts":{"start":"node s.js"}})");
  CHECK(sm::init::detect(d.path)->start_command == "node s.js");
  CHECK(sm::init::detect(d.path, /*use_runner=*/true)->start_command == "npm start");

  d.write("bun.lockb", "");
  auto bun = sm::init::detect(d.path);
  CHECK(bun->setup_command == "bun install --frozen-lockfile");
  CHECK(bun->start_command == "node s.js");
  CHECK(sm::init::detect(d.path, /*use_runner=*/true)->start_command == "bun run start");

  d.write("Procfile", "worker: x\nweb:  ./serve --port $PORT \n");
  CHECK(sm::init::detect(d.path)->start_command == "./serve --port $PORT");
}

TEST_CASE("init: python, ruby and nothing") {
  TempDir d;
  CHECK_FALSE(sm::init::detect(d.path));
  d.write("Gemfile.lock", "");
  CHECK(sm::init::detect(d.path)->start_command == "bundle exec ruby app.rb");
  d.write("requirements.txt", "");
  CHECK(sm::init::detect(d.path)->setup_command == "pip install -r requirements.txt");
  d.write("uv.lock", "");
  CHECK(sm::init::detect(d.path)->start_command == "uv run app.py");
}

TEST_CASE("init: gitignore gets .slot-machine exactly once, newline added first") {
  TempDir d;
  d.write(".gitignore", "node_modules");
  CHECK(sm::init::ensure_gitignored(d.path));
  CHECK_FALSE(sm::init::ensure_gitignored(d.path));
  CHECK(d.read(".gitignore") == "node_modules\n.slot-machine\n");
}

TEST_CASE("init: run writes defaults and respects an existing file") {
  TempDir d;
  d.write("bun.lock", "");
  d.write(".env", "A=1\n");
  sm::init::run(d.path, false);
  auto j = nlohmann::json::parse(d.read("slot-machine.json"));
  CHECK(j["env_file"] == ".env");
  CHECK(j["port"] == 3000);
  CHECK(j["health_endpoint"] == "/healthz");
  d.write("slot-machine.json", "{\"mine\":true}");
  auto again = sm::init::run(d.path, false);
  CHECK(again.message.find("--force") != std::string::npos);
  CHECK(d.read("slot-machine.json") == "{\"mine\":true}");
  sm::init::run(d.path, true);
  CHECK(d.read("slot-machine.json").find("bun install") != std::string::npos);
}

TEST_CASE("init: a Procfile's web is the start, release joins the setup, the rest become workers") {
  TempDir d;
  d.write("Gemfile.lock", "");
  d.write("Procfile",
          "# processes\n"
          "web: bundle exec puma -p $PORT\n"
          "\n"
          "release: bundle exec rails db:migrate\r\n"
          "worker: bundle exec sidekiq\n"
          "Mail_Queue: ./mailer\n"
          "bad name!: x\n"
          "a-very-long-process-type-name-over-32: x\n"
          "empty:\n");
  const auto found = sm::init::detect(d.path);
  REQUIRE(found);
  CHECK(found->start_command == "bundle exec puma -p $PORT");
  CHECK(found->setup_command == "bundle install && bundle exec rails db:migrate");
  CHECK(found->workers == std::map<std::string, std::string>{{"worker", "bundle exec sidekiq"}, {"mail-queue", "./mailer"}});
  REQUIRE(found->notes.size() == 1);
  CHECK(found->notes[0].find("\"a-very-long-process-type-name-over-32\" not made a worker") != std::string::npos);
  const auto out = sm::init::run(d.path, false);
  const auto config = nlohmann::json::parse(d.read("slot-machine.json"));
  CHECK(config["workers"]["worker"] == "bundle exec sidekiq");
  CHECK(out.message.find("worker worker \"bundle exec sidekiq\"") != std::string::npos);
  // Only a Procfile, no web: nothing to start the app with.
  TempDir p;
  p.write("Procfile", "worker: x\n");
  CHECK_FALSE(sm::init::detect(p.path));
  p.write("Procfile", "web: ./serve\nrelease: ./migrate\n");
  CHECK(sm::init::detect(p.path)->setup_command == "./migrate");
}
