#include "server/base/memory_size.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>

namespace qcal::server {
namespace {

// The number in `path` (a cgroup limit file); 0 when absent, "max" or unreadable.
int64_t LimitInFile(const char* path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text) || text == "max") return 0;
  try {
    const long long value = std::stoll(text);
    return value > 0 ? static_cast<int64_t>(value) : 0;
  } catch (...) {
    return 0;
  }
}

}  // namespace

int64_t MemoryAvailableToProcess() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  int64_t bytes = pages > 0 && page_size > 0 ? int64_t{pages} * page_size : 0;
  // cgroup v1 reports "no limit" as a huge number, which the min ignores.
  for (const char* path :
       {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    const int64_t limit = LimitInFile(path);
    if (limit > 0) bytes = bytes > 0 ? std::min(bytes, limit) : limit;
  }
  return bytes;
}

}  // namespace qcal::server
