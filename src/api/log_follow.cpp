#include "api/log_follow.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "api/http_server.h"
#include "api/params.h"
#include "api/peer.h"
#include "app/slot_logs.h"
#include "ui/sse.h"

namespace sm::api {

void LogFollowers::serve(const httplib::Request& req, httplib::Response& res, int api_port,
                         std::shared_ptr<app::App> app) {
  std::string error;
  if (req.has_param("slot") + req.has_param("worker") + req.has_param("cron") > 1) {
    reply(res, 400, {{"error", "give one of slot, worker or cron"}});
    return;
  }
  const auto path = req.has_param("worker") ? app->worker_log_file(req.get_param_value("worker"), error)
                    : req.has_param("cron") ? app->cron_log_file(req.get_param_value("cron"), error)
                                            : app->log_file(req.has_param("slot") ? req.get_param_value("slot") : "live", error);
  if (path.empty()) {
    reply(res, error.rfind("unknown", 0) == 0 ? 400 : 404, {{"error", error}});
    return;
  }
  size_t tail = 0;
  if (!count_param(req, res, "tail", 100, 0, 100000, tail)) return;
  const std::string follow = req.has_param("follow") ? req.get_param_value("follow") : "0";
  if (follow != "0" && follow != "1") {
    reply(res, 400, {{"error", fmt::format("follow must be 0 or 1, got \"{}\"", follow)}});
    return;
  }
  std::uintmax_t offset = 0;
  std::string text = app::tail_lines(path, tail, offset);
  // A browser's EventSource asks for Server-Sent Events: one "line" event per line.
  std::shared_ptr<ui::SseLines> sse;
  if (req.get_header_value("Accept").find("text/event-stream") != std::string::npos) {
    sse = std::make_shared<ui::SseLines>();
    text = sse->feed(text);
  }
  const char* type = sse ? "text/event-stream" : "text/plain; charset=utf-8";
  if (follow == "0") {
    res.set_content(text, type);
    return;
  }
  if (++followers_ > kMaxLogFollowers) {
    --followers_;
    reply(res, 503, {{"error", fmt::format("already {} log followers; stop one and try again", kMaxLogFollowers)}});
    return;
  }
  // Streams what is there, then every new byte as it is written; the log being
  // truncated by rotation restarts from its beginning. Ends when the daemon stops or
  // the client goes away: noticed at the next write, or within a second while the log
  // is quiet (a closed dashboard tab must not hold one of the few follower places).
  auto pending = std::make_shared<std::string>(std::move(text));
  auto at = std::make_shared<std::uintmax_t>(offset);
  auto idle = std::make_shared<unsigned>(0);
  res.set_chunked_content_provider(
      type,
      [this, path, pending, at, sse, idle, gone = peer_gone(req, api_port)](size_t, httplib::DataSink& sink) {
        while (pending->empty()) {
          if (stopping_) {
            sink.done();
            return true;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          if (++*idle % 10 == 0 && gone()) return false;
          std::error_code ec;
          const auto size = std::filesystem::file_size(path, ec);
          if (ec) continue;
          if (size < *at) *at = 0;
          if (size == *at) continue;
          std::ifstream in(path, std::ios::binary);
          in.seekg(static_cast<std::streamoff>(*at));
          pending->resize(static_cast<size_t>(std::min<std::uintmax_t>(size - *at, 1 << 20)));
          in.read(pending->data(), static_cast<std::streamsize>(pending->size()));
          pending->resize(static_cast<size_t>(in.gcount()));
          *at += pending->size();
          if (sse) *pending = sse->feed(*pending);
        }
        const bool ok = sink.write(pending->data(), pending->size());
        pending->clear();
        return ok;
      },
      [this](bool) { --followers_; });
}

}  // namespace sm::api
