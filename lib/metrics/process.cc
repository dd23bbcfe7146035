#include "metrics/process.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/version.h"

namespace sticky::metrics {
namespace {

std::string compilerName() {
#if defined(__clang__)
  return std::string("clang-") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("gcc-") + __VERSION__;
#else
  return "unknown";
#endif
}

std::string readFile(const char* path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::optional<double> bootTime() {
  std::istringstream in(readFile("/proc/stat"));
  std::string key;
  while (in >> key) {
    if (key == "btime") {
      double t = 0;
      if (in >> t) return t;
      return std::nullopt;
    }
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return std::nullopt;
}

}  // namespace

void renderBuildInfo(Exposition& x) {
  x.family("sticky_build_info", "gauge",
           "Always 1; the labels say which build this is (version, git revision, compiler).");
  std::string compiler = compilerName();
  x.sample("sticky_build_info",
           {{"version", projectVersion()}, {"revision", gitRevision()}, {"compiler", compiler}},
           uint64_t{1});
}

ProcessStats readProcessStats() {
  ProcessStats s;
  // /proc/self/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so the
  // fields are counted from after the last ')': token k there is field k + 3 of proc(5).
  std::string stat = readFile("/proc/self/stat");
  size_t paren = stat.rfind(')');
  if (paren != std::string::npos) {
    std::istringstream in(stat.substr(paren + 1));
    std::vector<std::string> fields;
    for (std::string f; in >> f;) fields.push_back(f);
    if (fields.size() > 21) {
      const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
      const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
      try {
        s.cpu_seconds = (std::stod(fields[11]) + std::stod(fields[12])) / ticks;  // utime, stime
        s.virtual_bytes = std::stoull(fields[20]);                                // vsize
        s.resident_bytes = std::stoull(fields[21]) * page;                        // rss (pages)
        if (auto boot = bootTime()) s.start_time_unix = *boot + std::stod(fields[19]) / ticks;
      } catch (const std::exception&) {
        // A field that is not a number: report what was read before it.
      }
    }
  }
  if (DIR* dir = opendir("/proc/self/fd")) {
    uint64_t n = 0;
    while (const dirent* entry = readdir(dir)) {
      if (entry->d_name[0] != '.') ++n;
    }
    closedir(dir);
    s.open_fds = n > 0 ? n - 1 : 0;  // not counting the descriptor opendir itself holds
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    s.max_fds = static_cast<uint64_t>(limit.rlim_cur);
  }
  return s;
}

namespace {

// One unlabelled family with its sample, when /proc gave the value.
template <class T>
void single(Exposition& x, std::string_view name, std::string_view type, std::string_view help,
            const std::optional<T>& value) {
  if (!value) return;
  x.family(name, type, help);
  if constexpr (std::is_floating_point_v<T>) {
    x.sampleFloat(name, {}, *value);
  } else {
    x.sample(name, {}, *value);
  }
}

}  // namespace

void renderProcessMetrics(Exposition& x) {
  ProcessStats s = readProcessStats();
  single(x, "process_cpu_seconds_total", "counter",
         "Total user and system CPU time spent in seconds.", s.cpu_seconds);
  single(x, "process_open_fds", "gauge", "Number of open file descriptors.", s.open_fds);
  single(x, "process_max_fds", "gauge", "Maximum number of open file descriptors.", s.max_fds);
  single(x, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
         s.virtual_bytes);
  single(x, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
         s.resident_bytes);
  single(x, "process_start_time_seconds", "gauge",
         "Start time of the process since unix epoch in seconds.", s.start_time_unix);
}

}  // namespace sticky::metrics
