// The API's listening socket: bound or adopted, served on a thread of its own, and
// let go of without shutting it down (it may be shared with systemd or a newer daemon).

#include <fcntl.h>
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "api/http_server.h"
#include "api/server.h"
#include "process/reaper.h"

namespace sm::api {

void ApiServer::bind(const std::string& host, int port) {
  port_ = port;
  if (!server_->bind_to_port(host, port))
    throw std::runtime_error(fmt::format(
        "cannot listen on {}:{} for the API: {}; is another slot-machine daemon running? "
        "choose another port with --port or \"api_port\"",
        host, port, errno ? std::strerror(errno) : "bind failed"));
  fd_ = listening_socket_of(*server_);
  keep_ = fcntl(fd_, F_DUPFD_CLOEXEC, 3);
}

void ApiServer::adopt(int fd, int port) {
  port_ = port;
  fd_ = fd;  // close-on-exec already (service::passed_sockets)
  keep_ = fcntl(fd_, F_DUPFD_CLOEXEC, 3);
  listening_socket_of(*server_) = fd;
}

void ApiServer::serve() {
  static const bool handler_installed = [] {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};  // only to interrupt accept(); no SA_RESTART
    sigemptyset(&sa.sa_mask);
    return sigaction(process::interrupt_signal(), &sa, nullptr) == 0;
  }();
  (void)handler_installed;
  serving_ = true;
  thread_ = std::thread([this] {
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, process::interrupt_signal());
    pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
    server_->listen_after_bind();
  });
}

void ApiServer::stop_accepting() {
  if (!serving_ || accept_loop_ended_) return;
  // httplib's accept loop ends when accept() fails, and then closes its descriptor.
  // Make its descriptor /dev/null (the socket lives on in keep_), and interrupt an
  // accept() already blocked on the socket. Its workers keep seeing the server as
  // open, so every connection it accepted before is answered.
  if (int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC); devnull >= 0) {
    dup3(devnull, fd_, O_CLOEXEC);
    close(devnull);
  }
  while (!accept_loop_ended_) {
    pthread_kill(thread_.native_handle(), process::interrupt_signal());
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void ApiServer::stop() {
  stopping_ = true;  // ends log followers
  stop_accepting();
  if (thread_.joinable()) thread_.join();  // after the requests in progress
  if (!serving_ && fd_ >= 0) close(fd_);  // else httplib's loop closed it
  if (keep_ >= 0) close(keep_);
  fd_ = keep_ = -1;
}

}  // namespace sm::api
