#pragma once
// The dashboard's files (src/ui/page/), compiled into the binary by CMake
// (cmake/embed_assets.cmake writes assets.cpp): nothing is read from disk or the network.

#include <string_view>

namespace sm::ui {

struct Asset {
  std::string_view path;  // "/ui/index.html", "/ui/app.js", "/ui/style.css"
  std::string_view type;  // its Content-Type
  std::string_view body;
};

/// The asset served at `path`, or nullptr.
const Asset* find_asset(std::string_view path);

}  // namespace sm::ui
