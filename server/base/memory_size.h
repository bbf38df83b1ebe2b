// How much memory this process may use: the machine's physical memory, or the cgroup's limit
// when it is lower (a container's, e.g. a Kubernetes pod's memory limit). --max-state-bytes
// defaults to a fraction of it.
#ifndef QCAL_SERVER_BASE_MEMORY_SIZE_H_
#define QCAL_SERVER_BASE_MEMORY_SIZE_H_

#include <cstdint>

namespace qcal::server {

// Bytes: min(physical memory, cgroup v2 memory.max or cgroup v1 memory.limit_in_bytes, where
// set); 0 when none can be read.
int64_t MemoryAvailableToProcess();

}  // namespace qcal::server

#endif  // QCAL_SERVER_BASE_MEMORY_SIZE_H_
