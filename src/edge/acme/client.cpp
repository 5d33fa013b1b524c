#include "edge/acme/client.h"

#include <fmt/format.h>
#include <httplib.h>

#include <chrono>
#include <thread>

#include "edge/acme/certificate.h"
#include "log/log.h"
#include "version/version.h"

namespace sm::edge::acme {

void Challenges::put(const std::string& token, const std::string& key_authorization) {
  std::lock_guard lock(mu_);
  pending_[token] = key_authorization;
}

void Challenges::erase(const std::string& token) {
  std::lock_guard lock(mu_);
  pending_.erase(token);
}

std::optional<std::string> Challenges::find(std::string_view token) const {
  std::lock_guard lock(mu_);
  auto it = pending_.find(token);
  if (it == pending_.end()) return std::nullopt;
  return it->second;
}

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr int kBadNonceRetries = 5;
constexpr auto kPollEvery = 1s;
constexpr int kPollTries = 60;  // a minute per authorization and for the order

/// An HTTP answer from the CA.
struct Answer {
  int status = 0;
  std::string body;
  httplib::Headers headers;
  std::string header(const char* name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
  /// The body as JSON; a truncated or non-JSON body is an error naming `url`.
  json parsed(const std::string& url) const {
    try {
      return json::parse(body);
    } catch (const json::exception&) {
      throw AcmeError(fmt::format("the CA's answer from {} is not JSON (HTTP {}, {} bytes): {}", url, status,
                                  body.size(), body.substr(0, 200)));
    }
  }
};

std::string string_at(const json& j, const char* key, const std::string& url) {
  if (!j.is_object() || !j.contains(key) || !j.at(key).is_string())
    throw AcmeError(fmt::format("the CA's answer from {} has no \"{}\"", url, key));
  return j.at(key).get<std::string>();
}

/// "type: detail" of an RFC 7807 problem document, or the body's start.
std::string problem(const Answer& a) {
  try {
    const json j = json::parse(a.body);
    if (j.is_object() && j.contains("detail"))
      return fmt::format("{}: {}", j.value("type", std::string("error")), j.value("detail", std::string()));
  } catch (const json::exception&) {
  }
  return a.body.substr(0, 200);
}

/// One order, with the connection(s) and nonce it uses.
class Session {
 public:
  Session(const Settings& s, const EcKey& key, const std::function<bool()>& stopped)
      : settings_(s), key_(key), stopped_(stopped) {}

  void load_directory() {
    const Answer a = get(settings_.directory_url);
    if (a.status != 200)
      throw AcmeError(fmt::format("the ACME directory {} answered HTTP {}: {}", settings_.directory_url, a.status,
                                  problem(a)));
    const json d = a.parsed(settings_.directory_url);
    new_nonce_ = string_at(d, "newNonce", settings_.directory_url);
    new_account_ = string_at(d, "newAccount", settings_.directory_url);
    new_order_ = string_at(d, "newOrder", settings_.directory_url);
  }

  void find_or_create_account() {
    json payload = {{"termsOfServiceAgreed", true}};
    if (!settings_.email.empty()) payload["contact"] = json::array({"mailto:" + settings_.email});
    const Answer a = post(new_account_, payload, /*use_jwk=*/true);
    if (a.status != 200 && a.status != 201)
      throw AcmeError(fmt::format("creating the ACME account failed (HTTP {}): {}", a.status, problem(a)));
    kid_ = a.header("Location");
    if (kid_.empty()) throw AcmeError("the CA created the account but gave no Location for it");
  }

  Issued order(const std::vector<std::string>& domains, Challenges& challenges) {
    json ids = json::array();
    for (const auto& d : domains) ids.push_back({{"type", "dns"}, {"value", d}});
    const Answer a = post(new_order_, {{"identifiers", ids}});
    if (a.status != 201 && a.status != 200)
      throw AcmeError(fmt::format("the CA refused the order for {} (HTTP {}): {}", fmt::join(domains, ", "),
                                  a.status, problem(a)));
    const std::string order_url = a.header("Location");
    json order = a.parsed(new_order_);
    if (order_url.empty()) throw AcmeError("the CA accepted the order but gave no Location for it");
    if (!order.contains("authorizations") || !order["authorizations"].is_array())
      throw AcmeError(fmt::format("the order {} has no authorizations", order_url));
    for (const auto& authz : order["authorizations"]) {
      if (!authz.is_string()) throw AcmeError(fmt::format("the order {} has a malformed authorization", order_url));
      authorize(authz.get<std::string>(), challenges);
    }
    const EcKey cert_key = EcKey::generate();
    const std::string finalize = string_at(order, "finalize", order_url);
    const Answer f = post(finalize, {{"csr", base64url(make_csr(cert_key, domains))}});
    if (f.status != 200)
      throw AcmeError(fmt::format("finalizing the order failed (HTTP {}): {}", f.status, problem(f)));
    order = f.parsed(finalize);
    for (int i = 0; order.value("status", "") != "valid"; ++i) {
      const std::string status = order.value("status", "");
      if (status == "invalid" || i == kPollTries)
        throw AcmeError(fmt::format("the order {} ended {} instead of valid", order_url,
                                    status.empty() ? "without a status" : status));
      pause();
      order = post_as_get(order_url).parsed(order_url);
    }
    const std::string cert_url = string_at(order, "certificate", order_url);
    const Answer c = post(cert_url, nullptr, false, "application/pem-certificate-chain");
    if (c.status != 200)
      throw AcmeError(fmt::format("downloading the certificate from {} failed (HTTP {}): {}", cert_url, c.status,
                                  problem(c)));
    try {
      if (!covers(read_cert(c.body), domains))
        throw AcmeError(fmt::format("the certificate from {} does not name {}", cert_url, fmt::join(domains, ", ")));
    } catch (const std::runtime_error& e) {
      if (dynamic_cast<const AcmeError*>(&e)) throw;
      throw AcmeError(fmt::format("the certificate from {} is unreadable: {}", cert_url, e.what()));
    }
    return {c.body, cert_key.pem()};
  }

 private:
  /// Proves control of one name: answers its http-01 challenge and waits for the CA.
  void authorize(const std::string& url, Challenges& challenges) {
    json authz = post_as_get(url).parsed(url);
    const std::string name = authz.contains("identifier") ? authz["identifier"].value("value", "") : "";
    if (authz.value("status", "") == "valid") return;  // proved recently: the CA reuses it
    const json* chosen = nullptr;
    if (authz.contains("challenges") && authz["challenges"].is_array())
      for (const auto& c : authz["challenges"])
        if (c.is_object() && c.value("type", "") == "http-01") chosen = &c;
    if (!chosen) throw AcmeError(fmt::format("the CA offers no http-01 challenge for {}", name));
    const std::string token = string_at(*chosen, "token", url);
    const std::string challenge_url = string_at(*chosen, "url", url);
    challenges.put(token, token + "." + key_.thumbprint());
    struct Withdraw {
      Challenges& c;
      const std::string& t;
      ~Withdraw() { c.erase(t); }
    } withdraw{challenges, token};
    const Answer a = post(challenge_url, json::object());
    if (a.status != 200)
      throw AcmeError(fmt::format("the CA did not take the challenge for {} (HTTP {}): {}", name, a.status,
                                  problem(a)));
    for (int i = 0;; ++i) {
      const std::string status = authz.value("status", "");
      if (status == "valid") return;
      if (status == "invalid" || i == kPollTries) {
        std::string why = status.empty() ? "no status" : status;
        for (const auto& c : authz.value("challenges", json::array()))
          if (c.is_object() && c.contains("error") && c["error"].is_object())
            why = fmt::format("{}: {}", c["error"].value("type", ""), c["error"].value("detail", ""));
        throw AcmeError(fmt::format("the CA could not validate {} over HTTP-01 ({}); check that {} resolves "
                                    "to this machine and that port 80 reaches slot-machine's \"port\"",
                                    name, why, name));
      }
      pause();
      authz = post_as_get(url).parsed(url);
    }
  }

  void pause() {
    for (auto waited = 0ms; waited < kPollEvery; waited += 100ms) {
      if (stopped_()) throw AcmeError("stopped");
      std::this_thread::sleep_for(100ms);
    }
  }

  httplib::Client& client_for(const std::string& url, std::string& path) {
    // scheme://host[:port]/path
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string::npos) throw AcmeError(fmt::format("the CA gave a malformed URL: {}", url));
    const auto path_start = url.find('/', scheme_end + 3);
    const std::string origin = url.substr(0, path_start);
    path = path_start == std::string::npos ? "/" : url.substr(path_start);
    auto it = clients_.find(origin);
    if (it == clients_.end()) {
      auto c = std::make_unique<httplib::Client>(origin);
      if (!c->is_valid()) throw AcmeError(fmt::format("cannot use the ACME URL {}", url));
      c->set_connection_timeout(10, 0);
      c->set_read_timeout(30, 0);
      c->set_write_timeout(10, 0);
      if (!settings_.ca_file.empty()) c->set_ca_cert_path(settings_.ca_file.c_str());
      c->enable_server_certificate_verification(true);
      c->set_default_headers({{"User-Agent", std::string("slot-machine/") + kVersion}});
      it = clients_.emplace(origin, std::move(c)).first;
    }
    return *it->second;
  }

  Answer to_answer(httplib::Result r, const char* method, const std::string& url) {
    if (!r) {
      const char* why = r.error() == httplib::Error::SSLServerVerification
                            ? "the CA's certificate is not trusted (is \"tls.acme.ca_file\" the right one?)"
                        : r.error() == httplib::Error::Connection ? "cannot connect (is the CA up, the URL right?)"
                                                                  : nullptr;
      throw AcmeError(fmt::format("{} {} failed: {}", method, url, why ? why : httplib::to_string(r.error())));
    }
    Answer a{r->status, r->body, r->headers};
    if (auto n = a.header("Replay-Nonce"); !n.empty()) nonce_ = n;
    return a;
  }

  Answer get(const std::string& url) {
    if (stopped_()) throw AcmeError("stopped");
    std::string path;
    auto& c = client_for(url, path);
    return to_answer(c.Get(path), "GET", url);
  }

  void fresh_nonce() {
    std::string path;
    auto& c = client_for(new_nonce_, path);
    Answer a = to_answer(c.Head(path), "HEAD", new_nonce_);
    if (nonce_.empty()) throw AcmeError(fmt::format("the CA's {} gave no Replay-Nonce", new_nonce_));
  }

  /// A signed POST; retried with the CA's new nonce when it says badNonce.
  Answer post(const std::string& url, const json& payload, bool use_jwk = false,
              const char* accept = "application/json") {
    for (int attempt = 0;; ++attempt) {
      if (stopped_()) throw AcmeError("stopped");
      if (nonce_.empty()) fresh_nonce();
      const std::string body = sign_request(key_, use_jwk ? "" : kid_, nonce_, url, payload);
      nonce_.clear();  // used
      std::string path;
      auto& c = client_for(url, path);
      Answer a = to_answer(c.Post(path, {{"Accept", accept}}, body, "application/jose+json"), "POST", url);
      if (a.status == 400 && attempt < kBadNonceRetries &&
          a.body.find("urn:ietf:params:acme:error:badNonce") != std::string::npos)
        continue;
      return a;
    }
  }

  Answer post_as_get(const std::string& url) {
    Answer a = post(url, nullptr);
    if (a.status != 200) throw AcmeError(fmt::format("POST-as-GET {} answered HTTP {}: {}", url, a.status, problem(a)));
    return a;
  }

  const Settings& settings_;
  const EcKey& key_;
  const std::function<bool()>& stopped_;
  std::map<std::string, std::unique_ptr<httplib::Client>> clients_;
  std::string new_nonce_, new_account_, new_order_;
  std::string nonce_, kid_;
};

}  // namespace

Issued obtain(const Settings& settings, const EcKey& account_key, const std::vector<std::string>& domains,
              Challenges& challenges, const std::function<bool()>& stopped) {
  Session s(settings, account_key, stopped);
  s.load_directory();
  s.find_or_create_account();
  return s.order(domains, challenges);
}

}  // namespace sm::edge::acme
