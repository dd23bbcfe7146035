#pragma once
// What every exporter reports about itself, rendered at scrape time:
//
//   sticky_build_info{version="0.2.0",revision="1a2b3c4d5e6f",compiler="gcc-12.2.0"} 1
//   process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
//   process_open_fds, process_max_fds, process_start_time_seconds
//
// The process_* families are the ones Go's and Python's clients export (same names, types and
// meaning), read from /proc/self on Linux; a value that cannot be read is left out.

#include <cstdint>
#include <optional>

#include "metrics/exposition.h"

namespace sticky::metrics {

/// `sticky_build_info`: the project version, the git revision (empty when unknown) and the
/// compiler, value 1.
void renderBuildInfo(Exposition& x);

/// What /proc says about this process now.
struct ProcessStats {
  std::optional<double> cpu_seconds;  // user + system
  std::optional<uint64_t> resident_bytes;
  std::optional<uint64_t> virtual_bytes;
  std::optional<uint64_t> open_fds;
  std::optional<uint64_t> max_fds;        // the soft RLIMIT_NOFILE
  std::optional<double> start_time_unix;  // seconds since the epoch
};
ProcessStats readProcessStats();

/// The process_* families from readProcessStats().
void renderProcessMetrics(Exposition& x);

}  // namespace sticky::metrics
