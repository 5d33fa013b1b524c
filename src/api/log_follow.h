#pragma once
// GET /logs: the last lines of a slot's log, and with follow=1 every new byte as it is
// written (plain text, or Server-Sent Events for a browser's EventSource).

#include <atomic>

#include "app/app.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace sm::api {

/// `GET /logs?follow=1` streams at once; each holds one API thread.
inline constexpr int kMaxLogFollowers = 4;

class LogFollowers {
 public:
  /// `stopping` turning true ends every follower (the API is stopping).
  explicit LogFollowers(const std::atomic<bool>& stopping) : stopping_(stopping) {}
  /// Answers one GET /logs of `app` from a client of the API on `api_port`.
  void serve(const httplib::Request& req, httplib::Response& res, int api_port, std::shared_ptr<app::App> app);

 private:
  const std::atomic<bool>& stopping_;
  std::atomic<int> followers_{0};
};

}  // namespace sm::api
