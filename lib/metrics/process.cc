#include "metrics/process.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <limits>
#include <sstream>
#include <string>
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

void renderProcessMetrics(Exposition& x) {
  ProcessStats s = readProcessStats();
  if (s.cpu_seconds) {
    x.family("process_cpu_seconds_total", "counter",
             "Total user and system CPU time spent in seconds.");
    x.sampleFloat("process_cpu_seconds_total", {}, *s.cpu_seconds);
  }
  if (s.open_fds) {
    x.family("process_open_fds", "gauge", "Number of open file descriptors.");
    x.sample("process_open_fds", {}, *s.open_fds);
  }
  if (s.max_fds) {
    x.family("process_max_fds", "gauge", "Maximum number of open file descriptors.");
    x.sample("process_max_fds", {}, *s.max_fds);
  }
  if (s.virtual_bytes) {
    x.family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    x.sample("process_virtual_memory_bytes", {}, *s.virtual_bytes);
  }
  if (s.resident_bytes) {
    x.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    x.sample("process_resident_memory_bytes", {}, *s.resident_bytes);
  }
  if (s.start_time_unix) {
    x.family("process_start_time_seconds", "gauge",
             "Start time of the process since unix epoch in seconds.");
    x.sampleFloat("process_start_time_seconds", {}, *s.start_time_unix);
  }
}

}  // namespace sticky::metrics
