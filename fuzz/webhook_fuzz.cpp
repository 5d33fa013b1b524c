// Webhook deliveries as a forge (or anyone) sends them: the first byte picks the forge
// and whether the delivery is signed right; the rest is the body, which with a right
// signature goes on to the JSON reading. Nothing may throw or crash.
#include <cstdint>
#include <map>
#include <string>

#include "triggers/webhook.h"

using namespace sm::triggers;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Forge forge = static_cast<Forge>(data[0] % 4);
  const bool signed_right = data[0] & 4;
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string secret = "fuzz-secret-0123456789";
  const std::string mac = signed_right ? hmac_sha256_hex(secret, body) : body.substr(0, 64);
  const std::map<std::string, std::string> headers = {
      {"x-github-event", "push"},          {"x-hub-signature-256", "sha256=" + mac},
      {"x-gitlab-event", "Push Hook"},     {"x-gitlab-token", signed_right ? secret : "not-" + body.substr(0, 22)},
      {"x-gitea-event", "push"},           {"x-gitea-signature", mac},
      {"x-slot-machine-signature", "sha256=" + mac}, {"x-github-delivery", body.substr(0, 8)}};
  const Reading r = read_delivery(forge, headers, body, secret, "main");
  if (r.push && (r.push->commit.size() != 40 || !signed_right)) __builtin_trap();
  return 0;
}
