#include "app/journal.h"
#include "log/json_text.h"
#include "log/log.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace sm::app {
using nlohmann::json;

void journal_append(const std::filesystem::path& file, const json& entry) {
  std::string line = log::json_text(entry) + "\n";
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot open {}: {}", file.string(), std::strerror(errno)));
  // After a crash mid-write the last line is torn: start on a fresh line, so only the
  // torn one is lost.
  if (const off_t size = ::lseek(fd, 0, SEEK_END); size > 0) {
    char last = '\n';
    if (::pread(fd, &last, 1, size - 1) == 1 && last != '\n') line = std::string(1, '\n') + line;
  }
  ssize_t n;
  do n = ::write(fd, line.data(), line.size());
  while (n < 0 && errno == EINTR);
  const int err = errno;
  ::fsync(fd);
  ::close(fd);
  if (n != static_cast<ssize_t>(line.size()))
    throw std::runtime_error(fmt::format("cannot append to {}: {}", file.string(),
                                         n < 0 ? std::strerror(err) : "short write"));
}

Events::Subscription journal_to(Events& events, const std::filesystem::path& file) {
  return events.subscribe([file](const Event& e) {
    if (e.kind != EventKind::Finished) return;
    try {
      journal_append(file, e.fields);
    } catch (const std::exception& ex) {
      log::info("warning: {}", ex.what());
    }
  });
}

std::vector<json> journal_read(const std::filesystem::path& file, size_t limit, size_t skip) {
  std::ifstream in(file, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<json> out;
  size_t end = text.size();
  while (end > 0 && out.size() < limit) {  // lines from the last one back
    const size_t nl = text.rfind('\n', end - 1);
    const size_t begin = nl == std::string::npos ? 0 : nl + 1;
    json j = json::parse(text.begin() + static_cast<std::ptrdiff_t>(begin), text.begin() + static_cast<std::ptrdiff_t>(end),
                         nullptr, /*allow_exceptions=*/false);
    end = nl == std::string::npos ? 0 : nl;
    if (!j.is_object()) continue;
    if (skip > 0) {
      --skip;
      continue;
    }
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace sm::app
