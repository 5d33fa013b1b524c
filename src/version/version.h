#pragma once
// The build's version ("0.1.0+<git describe>"), defined in one generated file so that a
// new commit recompiles that file alone, not every file that prints the version.

namespace sm {

/// "MAJOR.MINOR.PATCH+<git describe --always --dirty>" of this build.
extern const char* const kVersion;

}  // namespace sm
