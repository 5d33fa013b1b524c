#include "harness.h"

#include <exception>

#include <sys/stat.h>
#include "harness_process.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <cstring>
#include <fmt/format.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <thread>

extern char** environ;

namespace spec {

std::string slot_machine_bin() {
  const char* e = std::getenv("SLOT_MACHINE_BIN");
  return e ? e : SPEC_SLOT_MACHINE_BIN;
}

std::string testapp_bin() {
  const char* e = std::getenv("TESTAPP_BIN");
  return e ? e : SPEC_TESTAPP_BIN;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "sm-spec-XXXXXX").string();
  REQUIRE(mkdtemp(tmpl.data()) != nullptr);
  path = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path, ec);
}

bool port_open(int port, const std::string& host) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

namespace {

bool can_bind(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

}  // namespace

namespace detail {

/// Spawns argv with extra env, stdout/stderr to files; returns the pid.
pid_t spawn_with(const std::vector<std::string>& argv, const fs::path& cwd,
                 const std::map<std::string, std::string>& extra, const fs::path& out,
                 const fs::path& err, const std::vector<int>& pass_fds) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string s = *e;
    auto eq = s.find('=');
    if (eq != std::string::npos) env[s.substr(0, eq)] = s.substr(eq + 1);
  }
  for (const auto& [k, v] : extra) env[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  for (size_t i = 0; i < pass_fds.size(); ++i)  // as 3, 4, ... (the sockets sit above those)
    posix_spawn_file_actions_adddup2(&fa, pass_fds[i], static_cast<int>(3 + i));
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE_MESSAGE(rc == 0, "cannot run " << argv[0] << ": " << strerror(rc));
  return pid;
}

/// waitpid with a timeout; returns the exit code (128+sig when signalled) or -1.
int wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(5ms);
  }
}

std::string unique_tag() {
  static int n = 0;
  return fmt::format("{}-{}-{}", getpid(), ++n, std::random_device{}() % 100000);
}

}  // namespace detail

using namespace detail;

namespace {
/// The ports this process may hand out: $SPEC_PORTS ("LOW-HIGH", within 20000-32000) when
/// shards of the suite run side by side, each with a range of its own, else 20000-32000.
std::pair<int, int> port_range() {
  int low = 20000, high = 32000;
  if (const char* v = std::getenv("SPEC_PORTS")) {
    int l = 0, h = 0;
    if (std::sscanf(v, "%d-%d", &l, &h) == 2 && 20000 <= l && l + 50 <= h && h <= 32000) {
      low = l;
      high = h;
    }
  }
  return {low, high};
}
}  // namespace

int free_port() {
  static std::set<int> handed_out;
  static std::mt19937 rng(std::random_device{}());
  static const auto [low, high] = port_range();
  std::uniform_int_distribution<int> dist(low, high);
  for (int i = 0; i < 1000; ++i) {
    int p = dist(rng);
    if (handed_out.count(p) || !can_bind(p) || port_open(p)) continue;
    handed_out.insert(p);
    return p;
  }
  FAIL("no free port in " << low << "-" << high);
  return 0;
}

RunResult run(const std::vector<std::string>& argv, const fs::path& cwd,
              const std::map<std::string, std::string>& env, std::chrono::milliseconds timeout) {
  TempDir io;
  pid_t pid = spawn_with(argv, cwd, env, io.path / "out", io.path / "err");
  RunResult r;
  r.exit_code = wait_exit(pid, timeout);
  if (r.exit_code == -1) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  r.out = read_file(io.path / "out");
  r.err = read_file(io.path / "err");
  check_no_sanitizer_report(r.err, argv[0]);
  return r;
}

std::string sh(const std::string& command, const fs::path& cwd) {
  auto r = run({"/bin/sh", "-c", command}, cwd);
  REQUIRE_MESSAGE(r.exit_code == 0, "set-up command failed: " << command << "\n" << r.err);
  return r.out;
}

AppRepo::AppRepo() {
  sh("git init -q -b main && git config user.email spec@example.com && "
     "git config user.name spec && git config commit.gpgsign false",
     repo_.path);
}

std::string AppRepo::commit(const std::string& version, const std::string& flags,
                            const std::map<std::string, std::string>& files) {
  std::ofstream(repo_.path / "VERSION") << version << "\n";
  std::ofstream(repo_.path / "flags") << flags << "\n";
  for (const auto& [name, text] : files) {
    fs::create_directories((repo_.path / name).parent_path());
    std::ofstream(repo_.path / name) << text;
  }
  sh("git add -A && git commit -q -m '" + version + "'", repo_.path);
  std::string hash = sh("git rev-parse HEAD", repo_.path);
  return hash.substr(0, hash.find_first_not_of("0123456789abcdef"));
}

RunResult start_refused(AppRepo& repo, const json& overrides, bool direct) {
  repo.write_config(overrides);
  std::vector<std::string> argv = {slot_machine_bin(), "start", "--config", repo.config_path().string(),
                                   "--repo", repo.dir().string(), "--data", repo.data_dir().string()};
  if (direct) argv.push_back("--no-proxy");
  return run(argv, repo.home(), {}, 10s);
}

fs::path secret_file(const AppRepo& repo, const std::string& name, const std::string& secret) {
  const fs::path p = repo.home() / name;
  std::ofstream(p) << secret << "\n";
  ::chmod(p.c_str(), 0600);
  return p;
}

std::string hmac_hex(const std::string& key, const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(body.data()),
       body.size(), mac, &len);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) hex += fmt::format("{:02x}", mac[i]);
  return hex;
}

std::pair<fs::path, fs::path> self_signed_cert(const AppRepo& repo, const std::string& name) {
  const fs::path crt = repo.home() / (name + ".crt"), key = repo.home() / (name + ".key");
  sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost "
     "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " + key.string() + " -out " +
         crt.string() + " 2>/dev/null",
     repo.home());
  return {crt, key};
}

json AppRepo::write_config(const json& overrides) {
  int port = free_port();
  json c{{"start_command", "exec \"$TESTAPP\" $(cat flags)"},
         {"port", port},
         {"internal_port", free_port()},
         {"api_port", free_port()},
         {"health_endpoint", "/healthz"},
         {"health_timeout_ms", 5000},
         {"drain_timeout_ms", 1000}};
  // The suite runs with the proxy's default event loops (one per CPU); scripts/test.sh
  // runs the proxy's files again with SPEC_PROXY_WORKERS=1.
  if (const char* w = std::getenv("SPEC_PROXY_WORKERS")) c["proxy_workers"] = std::atoi(w);
  c.merge_patch(overrides);
  config_ = c;
  std::ofstream(config_path()) << c.dump(2);
  return c;
}

json Http::json_body() const {
  try {
    return json::parse(body);
  } catch (const json::parse_error&) {
    return json();
  }
}

namespace {
Http to_http(const httplib::Result& r) {
  if (!r) return {};
  return {r->status, r->body};
}
void set_timeouts(httplib::Client& c, std::chrono::milliseconds t) {
  c.set_connection_timeout(std::chrono::duration_cast<std::chrono::seconds>(t).count() + 1, 0);
  c.set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(t).count() + 1, 0);
}
}  // namespace

Http http_get(int port, const std::string& path, std::chrono::milliseconds timeout) {
  httplib::Client c("127.0.0.1", port);
  set_timeouts(c, timeout);
  return to_http(c.Get(path));
}

Http http_post(int port, const std::string& path, const std::string& body,
               std::chrono::milliseconds timeout) {
  httplib::Client c("127.0.0.1", port);
  set_timeouts(c, timeout);
  return to_http(c.Post(path, body, "application/json"));
}

Http get_first_bytes(int port, const std::string& path, const std::map<std::string, std::string>& headers) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(5, 0);
  Http out;
  c.Get(
      path, httplib::Headers(headers.begin(), headers.end()),
      [&](const httplib::Response& r) {
        out.status = r.status;
        return true;
      },
      [&](const char* data, size_t len) {
        out.body.append(data, len);
        return false;  // hang up at once
      });
  return out;
}

}  // namespace spec

namespace spec {
void check_no_sanitizer_report(const std::string& text, const std::string& where) {
  for (const char* marker : {"runtime error:", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer"})
    CHECK_MESSAGE(text.find(marker) == std::string::npos, "sanitizer report in " << where << ":\n"
                                                                  << text);
}

namespace {
std::vector<std::string> commit_all(AppRepo& repo, std::initializer_list<Version> versions, const json& overrides) {
  std::vector<std::string> hashes;
  for (const Version& v : versions) hashes.push_back(repo.commit(v.version, v.flags, v.files));
  repo.write_config(overrides);
  return hashes;
}
}  // namespace

Site::Site(std::initializer_list<Version> versions, const json& overrides, Launch how)
    : commits(commit_all(repo, versions, overrides)), d(repo, std::move(how)) {}

Site::Site(std::initializer_list<Version> versions, const json& overrides, std::vector<std::string> extra_args)
    : Site(versions, overrides, with_args(std::move(extra_args))) {}

Site::~Site() {
  if (!d.stopped() && std::uncaught_exceptions() == 0) check_clean_stop(d);
}

void check_clean_stop(Daemon& d) {
  int code = d.stop();
  CHECK_MESSAGE(code == 0, "daemon exit code " << code << "\n" << d.log());
  auto left = tagged_processes(d.tag());
  CHECK_MESSAGE(left.empty(), left.size() << " process(es) outlived the daemon");
  check_no_sanitizer_report(d.log(), "the daemon's stderr");
  for (const char* slot : {"slot-a.log", "slot-b.log"})
    check_no_sanitizer_report(read_file(d.data_dir() / slot), slot);
}
}  // namespace spec

namespace spec {
std::string raw_exchange(int port, const std::string& bytes) { return raw_exchange(port, bytes, ""); }

std::string raw_exchange(int port, const std::string& bytes, const std::string& until) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size())) {
    char buf[4096];
    ssize_t n;
    while ((until.empty() || out.find(until) == std::string::npos) && (n = recv(fd, buf, sizeof buf, 0)) > 0)
      out.append(buf, static_cast<size_t>(n));
    if (!until.empty() && (n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}
}  // namespace spec
