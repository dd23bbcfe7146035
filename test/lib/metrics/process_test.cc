#include "metrics/process.h"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "common/version.h"

namespace sticky::metrics {
namespace {

TEST_CASE("readProcessStats reads this process from /proc") {
  ProcessStats s = readProcessStats();
  REQUIRE(s.cpu_seconds.has_value());
  REQUIRE(s.resident_bytes.has_value());
  REQUIRE(s.virtual_bytes.has_value());
  REQUIRE(s.open_fds.has_value());
  REQUIRE(s.start_time_unix.has_value());
  CHECK(*s.cpu_seconds >= 0);
  CHECK(*s.resident_bytes > 1024 * 1024);  // a test binary is bigger than a megabyte
  CHECK(*s.virtual_bytes >= *s.resident_bytes);
  CHECK(*s.open_fds >= 3);  // stdin, stdout, stderr
  if (s.max_fds) CHECK(*s.max_fds >= *s.open_fds);

  // Started in the last hour, not in the future (the clock tick is 10 ms).
  double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(*s.start_time_unix <= now + 1);
  CHECK(*s.start_time_unix > now - 3600);

  // One more open descriptor is seen.
  int fd = ::open("/dev/null", O_RDONLY);
  REQUIRE(fd >= 0);
  CHECK(*readProcessStats().open_fds == *s.open_fds + 1);
  ::close(fd);
}

TEST_CASE("renderProcessMetrics and renderBuildInfo write the standard families") {
  Exposition x;
  renderBuildInfo(x);
  renderProcessMetrics(x);
  const std::string& text = x.text();
  CHECK(text.find("# TYPE sticky_build_info gauge\nsticky_build_info{version=\"" +
                  std::string(projectVersion()) + "\",revision=\"" + std::string(gitRevision()) +
                  "\",compiler=\"") != std::string::npos);
  for (const char* family :
       {"# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total ",
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes ",
        "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes ",
        "# TYPE process_open_fds gauge\nprocess_open_fds ",
        "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds "}) {
    CHECK_MESSAGE(text.find(family) != std::string::npos, "missing: " << family);
  }
  // The start time is seconds since the epoch as Go writes a float: 1.7e+09, with a fraction.
  CHECK(text.find("process_start_time_seconds 1.") != std::string::npos);
}

}  // namespace
}  // namespace sticky::metrics
