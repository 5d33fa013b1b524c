#include "edge/acme/manager.h"


#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>

#include "edge/acme/certificate.h"
#include "files/atomic_file.h"
#include "log/log.h"

namespace sm::edge::acme {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::optional<std::string> read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

long long retry_delay_s(int failures) {
  long long d = 5;
  for (int i = 1; i < failures && d < 3600; ++i) d *= 2;
  return std::min<long long>(d, 3600);
}

Manager::Manager(ManagerOptions opts)
    : opts_(std::move(opts)), files_(opts_.dir), account_([&] {
        std::error_code ec;
        fs::create_directories(opts_.dir, ec);
        if (ec) throw std::runtime_error(fmt::format("cannot create {}: {}", opts_.dir.string(), ec.message()));
        fs::permissions(opts_.dir, fs::perms::owner_all, ec);
        if (auto pem = read_text(files_.account_key)) {
          try {
            return EcKey::from_pem(*pem);
          } catch (const std::runtime_error& e) {
            throw std::runtime_error(fmt::format("the ACME account key {} is unusable ({}); move it away to "
                                                 "register a new account",
                                                 files_.account_key.string(), e.what()));
          }
        }
        EcKey k = EcKey::generate();
        files::write_atomic(files_.account_key, k.pem(), 0600);
        return k;
      }()) {}

Manager::~Manager() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::optional<std::pair<fs::path, fs::path>> Manager::usable() const {
  const auto order = read_text(files_.order);
  const auto chain = read_text(files_.cert);
  if (!order || !chain || !fs::exists(files_.key)) return std::nullopt;
  try {
    const json o = json::parse(*order);
    if (o.value("directory_url", "") != opts_.settings.directory_url) return std::nullopt;
    const CertInfo info = read_cert(*chain);
    if (!covers(info, opts_.domains) || info.not_after <= std::time(nullptr)) return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return std::make_pair(files_.cert, files_.key);
}

std::time_t Manager::due() const {
  if (!usable()) return 0;
  try {
    return renew_at(read_cert(*read_text(files_.cert)));
  } catch (const std::exception&) {
    return 0;
  }
}

void Manager::start() {
  thread_ = std::thread([this] { run(); });
}

void Manager::renew() {
  const auto stopped = [this] {
    std::lock_guard lock(mu_);
    return stopping_;
  };
  const Issued issued = obtain(opts_.settings, account_, opts_.domains, *opts_.challenges, stopped);
  // The key first: a chain without its key is never what the files say.
  files::write_atomic(files_.key.string() + ".new", issued.key_pem, 0600);
  files::write_atomic(files_.cert.string() + ".new", issued.chain_pem, 0644);
  opts_.install(files_.cert.string() + ".new", files_.key.string() + ".new");  // throws: nothing replaced
  fs::rename(files_.key.string() + ".new", files_.key);
  fs::rename(files_.cert.string() + ".new", files_.cert);
  files::write_atomic(files_.order,
             json{{"directory_url", opts_.settings.directory_url}, {"domains", opts_.domains},
                  {"obtained", log::now_rfc3339()}}
                     .dump(2) + "\n",
             0644);
  const CertInfo info = read_cert(issued.chain_pem);
  log::info("ACME: new certificate for {} installed (valid until {}; renewal from {})", fmt::join(opts_.domains, ", "),
            log::rfc3339(info.not_after), log::rfc3339(renew_at(info)));
}

void Manager::run() {
  const log::Scope scope(opts_.log_name);
  int failures = 0;
  std::time_t next = due();
  std::unique_lock lock(mu_);
  while (!stopping_) {
    const std::time_t now = std::time(nullptr);
    if (now < next) {
      // Looks again at least hourly: the wall clock may jump.
      const auto wait = std::chrono::seconds(std::min<std::time_t>(next - now, 3600));
      cv_.wait_for(lock, wait, [this] { return stopping_; });
      continue;
    }
    lock.unlock();
    log::info("ACME: {} a certificate for {} from {}", usable() ? "renewing" : "obtaining",
              fmt::join(opts_.domains, ", "), opts_.settings.directory_url);
    try {
      renew();
      failures = 0;
      next = due();
    } catch (const std::exception& e) {
      lock.lock();
      if (stopping_) break;
      lock.unlock();
      const long long wait = retry_delay_s(++failures);
      log::info("ACME: no certificate for {}: {}; trying again in {} s (HTTP serving and deploys go on{})",
                fmt::join(opts_.domains, ", "), e.what(), wait,
                usable() ? "; the current certificate stays" : "; HTTPS is refused until then");
      next = std::time(nullptr) + wait;
    }
    lock.lock();
  }
}

}  // namespace sm::edge::acme
