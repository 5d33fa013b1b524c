#pragma once
// Telling whether an API client has gone away while its request waits for its turn.

#include <functional>

namespace httplib {
struct Request;
}

namespace sm::api {

/// A check that turns true once the client of `req` (connected to the API on
/// `api_port`) has closed its connection. cpp-httplib 0.11 gives handlers no socket, so
/// it is found among this process's descriptors by the client's address and port; when
/// it cannot be found, the check never turns true.
std::function<bool()> peer_gone(const httplib::Request& req, int api_port);

}  // namespace sm::api
