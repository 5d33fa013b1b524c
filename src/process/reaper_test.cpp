#include <doctest/doctest.h>
#include <sys/wait.h>

#include "process/reaper.h"

TEST_CASE("process: exit statuses are described for people") {
  CHECK(sm::process::describe_exit(0) == "exited with status 0");
  CHECK(sm::process::describe_exit(3 << 8) == "exited with status 3");
  CHECK(sm::process::describe_exit(9) == "killed by signal 9 (Killed)");
  CHECK(sm::process::describe_exit(15) == "killed by signal 15 (Terminated)");
}
