#include <doctest/doctest.h>
#include <sys/wait.h>

#include "process/drain.h"
#include "process/reaper.h"

TEST_CASE("process: exit statuses are described for people") {
  CHECK(sm::process::describe_exit(0) == "exited with status 0");
  CHECK(sm::process::describe_exit(3 << 8) == "exited with status 3");
  CHECK(sm::process::describe_exit(9) == "killed by signal 9 (Killed)");
  CHECK(sm::process::describe_exit(15) == "killed by signal 15 (Terminated)");
}

TEST_CASE("process: a drain is described by how the app really ended") {
  using sm::process::DrainResult;
  const std::chrono::milliseconds grace(5000);
  CHECK(describe(DrainResult{false, true, {}, false, 15}, grace) == "exited after SIGTERM");
  CHECK(describe(DrainResult{false, true, {}, false, 0}, grace) == "exited after SIGTERM");
  CHECK(describe(DrainResult{false, true, {}, false, std::nullopt}, grace) == "exited after SIGTERM");  // adopted
  CHECK(describe(DrainResult{false, true, {}, false, 3 << 8}, grace) == "exited with status 3 after SIGTERM");
  CHECK(describe(DrainResult{false, true, {}, true, 3 << 8}, grace) == "had already exited with status 3");
  CHECK(describe(DrainResult{true, true, {}, false, 9}, grace) == "SIGKILLed after drain_timeout_ms=5000");
  CHECK(describe(DrainResult{true, false, {}, false, std::nullopt}, grace) ==
        "SIGKILLed after drain_timeout_ms=5000; some processes could not be killed");
}
