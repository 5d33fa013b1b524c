#include "app/slot_logs.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "log/log.h"

namespace sm::app {
namespace fs = std::filesystem;

bool rotate_if_needed(const fs::path& log, std::uintmax_t max_bytes, int keep) {
  std::error_code ec;
  const auto size = fs::file_size(log, ec);
  if (ec || size <= max_bytes) return false;
  auto numbered = [&](int i) { return fs::path(log.string() + "." + std::to_string(i)); };
  if (keep > 0) {
    fs::remove(numbered(keep), ec);
    for (int i = keep - 1; i >= 1; --i)
      if (fs::exists(numbered(i), ec)) fs::rename(numbered(i), numbered(i + 1), ec);
    fs::copy_file(log, numbered(1), fs::copy_options::overwrite_existing, ec);
    if (ec) throw std::runtime_error(fmt::format("cannot rotate {}: {}", log.string(), ec.message()));
  }
  if (::truncate(log.c_str(), 0) != 0)
    throw std::runtime_error(fmt::format("cannot truncate {}: {}", log.string(), std::strerror(errno)));
  return true;
}

std::string tail_lines(const fs::path& file, size_t n, std::uintmax_t& end) {
  std::ifstream in(file, std::ios::binary);
  end = 0;
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  end = static_cast<std::uintmax_t>(size);
  if (n == 0 || size <= 0) return "";
  // Read backwards in blocks until n+1 newlines (the last line may lack one) are seen.
  std::string data;
  std::streamoff pos = size;
  size_t newlines = 0;
  constexpr std::streamoff kBlock = 64 * 1024;
  while (pos > 0 && newlines <= n) {
    const std::streamoff len = std::min(kBlock, pos);
    pos -= len;
    std::string block(static_cast<size_t>(len), '\0');
    in.seekg(pos);
    in.read(block.data(), len);
    for (char c : block) newlines += c == '\n';
    data.insert(0, block);
  }
  // Walk back from the end; a final newline ends the last line, it does not start one.
  size_t i = data.size(), seen = 0;
  if (i > 0 && data[i - 1] == '\n') --i;
  for (; i > 0; --i)
    if (data[i - 1] == '\n' && ++seen == n) break;
  return data.substr(i);
}

std::string read_new(const fs::path& file, std::uintmax_t& offset) {
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (ec) return "";
  if (size < offset) offset = 0;
  if (size == offset) return "";
  std::ifstream in(file, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::string chunk(static_cast<size_t>(size - offset), '\0');
  in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
  chunk.resize(static_cast<size_t>(in.gcount()));
  offset += chunk.size();
  return chunk;
}

void append_note(const fs::path& log, const std::string& line) {
  std::ofstream(log, std::ios::app) << log::now_rfc3339() << " ==> " << line << "\n";
}

void NamedLogs::create() const {
  std::error_code ec;
  fs::create_directories(dir_, ec);
}

void NamedLogs::rotate(const std::vector<std::string>& names) const {
  for (const auto& name : names) {
    try {
      if (rotate_if_needed(of(name), max_bytes_, keep_))
        note(name, fmt::format("log rotated (over log_max_bytes={})", max_bytes_));
    } catch (const std::exception& e) {
      log::info("warning: {}", e.what());
    }
  }
}

}  // namespace sm::app
