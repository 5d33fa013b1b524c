#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <signal.h>

int main(int argc, char** argv) {
  // A write to a process that died (a pipe to a crashed CLI, a socket the daemon closed)
  // must fail that test with EPIPE, not kill the whole run with SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  return doctest::Context(argc, argv).run();
}
