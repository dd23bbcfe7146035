// sticky-test-backend: the test Backend as its own process (integration tests, demo, benchmarks).
//   sticky-test-backend --listen IP:PORT --name NAME
// Prints "listening on IP:PORT" once bound; exits 0 on SIGTERM/SIGINT.

#include <signal.h>

#include <charconv>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include "support/backend.h"

namespace {

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: sticky-test-backend --listen IP:PORT --name NAME\n"
               "  --listen IP:PORT  address to serve on (port 0 picks a free port); "
               "IPv6 as [::1]:PORT\n"
               "  --name NAME       reported in every response (JSON \"backend\" and the "
               "x-backend header)\n");
}

bool splitHostPort(std::string_view s, std::string& host, uint16_t& port) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos) return false;
  auto h = s.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  auto p = s.substr(colon + 1);
  unsigned value = 0;
  auto r = std::from_chars(p.data(), p.data() + p.size(), value);
  if (h.empty() || r.ec != std::errc() || r.ptr != p.data() + p.size() || value > 65535)
    return false;
  host = std::string(h);
  port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  std::string name = "backend";
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    }
    if ((arg == "--listen" || arg == "--name") && i + 1 < argc) {
      (arg == "--listen" ? listen : name) = argv[++i];
      continue;
    }
    std::fprintf(stderr, "sticky-test-backend: unknown or incomplete argument '%s'.\n", argv[i]);
    usage(stderr);
    return 1;
  }
  std::string host;
  uint16_t port = 0;
  if (!splitHostPort(listen, host, port)) {
    std::fprintf(stderr, "sticky-test-backend: --listen must be IP:PORT, got '%s'.\n",
                 listen.c_str());
    return 1;
  }

  // Block the stop signals before the server thread starts, so only sigwait sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  try {
    sticky::test::Backend backend(host, port, name);
    std::string shown = backend.address().find(':') != std::string::npos
                            ? "[" + backend.address() + "]"
                            : backend.address();
    std::printf("listening on %s:%u\n", shown.c_str(), static_cast<unsigned>(backend.port()));
    std::fflush(stdout);
    int sig = 0;
    sigwait(&stop_signals, &sig);
    backend.stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sticky-test-backend: %s\n", e.what());
    return 1;
  }
  return 0;
}
