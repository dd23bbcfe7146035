// Request smuggling as a property (docs/smuggling.md): every ambiguous or hostile input of
// smuggling_cases.h is sent raw through the real sticky-proxy to two real, independent backend
// parsers that log what they received: nginx and Python's http.server
// (smuggling_backend.py). For every input, either the proxy refuses it (its own 4xx, a close,
// and no request reaches a backend, or only the requests before the bad one), or each backend
// records exactly the requests the proxy answered for, with one framing, and both backends agree
// on each of them: method, path, body.
//
// Seeded: STICKY_SMUGGLING_SEED and STICKY_SMUGGLING_CASES pick other random inputs (the seed is
// printed; a failure prints the input, escaped).
#include <doctest/doctest.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "integration/proxy/proxy_harness.h"
#include "integration/proxy/smuggling_cases.h"
#include "support/paths.h"

namespace sticky::test {
namespace {

using nlohmann::json;
using smuggling::Case;

constexpr uint64_t kDefaultSeed = 20261205;
constexpr int kDefaultRandomCases = 300;

uint64_t envNumber(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 0) : fallback;
}

/// `s` as a C string literal would spell it (for failure messages).
std::string escaped(std::string_view s, size_t max = 600) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\\' || c == '"') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > max) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

std::string replaceAll(std::string s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

/// What the client got: final responses (1xx skipped), how many of them a backend wrote.
struct ClientView {
  std::vector<int> statuses;
  int from_backend = 0;  // responses carrying the backends' X-Seen
  bool closed = false;
  std::string error;  // unparseable response stream
};

std::string lowered(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

ClientView parseResponses(const RawResult& r) {
  ClientView v;
  v.closed = r.closed;
  const std::string& d = r.data;
  size_t pos = 0;
  while (pos < d.size()) {
    if (d.compare(pos, 5, "HTTP/") != 0 || d.size() < pos + 12) {
      v.error = "no status line at byte " + std::to_string(pos);
      return v;
    }
    size_t head_end = d.find("\r\n\r\n", pos);
    if (head_end == std::string::npos) {
      v.error = "response head cut short";
      return v;
    }
    int status = std::atoi(d.c_str() + pos + 9);
    std::istringstream head(lowered(d.substr(pos, head_end - pos)));
    std::string line;
    long long length = -1;
    bool chunked = false, seen = false;
    while (std::getline(head, line)) {
      if (line.rfind("content-length:", 0) == 0) length = std::atoll(line.c_str() + 15);
      if (line.rfind("transfer-encoding:", 0) == 0) chunked = true;
      if (line.rfind("x-seen:", 0) == 0) seen = true;
    }
    pos = head_end + 4;
    if (status >= 100 && status < 200) continue;
    v.statuses.push_back(status);
    if (seen) ++v.from_backend;
    if (d.compare(pos, 5, "HTTP/") == 0) continue;  // an answer to HEAD: no body
    if (chunked) {
      while (true) {
        size_t eol = d.find("\r\n", pos);
        if (eol == std::string::npos) return v;
        size_t size = std::strtoul(d.c_str() + pos, nullptr, 16);
        pos = eol + 2 + size + 2;
        if (size == 0) break;
      }
    } else if (length >= 0) {
      pos += static_cast<size_t>(length);
    } else if (status != 204 && status != 304) {
      pos = d.size();
    }
  }
  return v;
}

/// nginx as the second parser: its own prefix, one process, a JSON access-log line per request
/// (with the body nginx read, which it only keeps when it proxies: so it proxies to a second
/// server block of its own that answers 200).
class NginxProc {
 public:
  explicit NginxProc(const TempDir& dir) : dir_(dir.path() + "/nginx"), log_(dir_ + "/requests") {
    std::filesystem::create_directories(dir_ + "/logs");
    port_ = static_cast<uint16_t>(freePort());
    int sink = freePort();
    std::string conf = R"(daemon off;
master_process off;
worker_processes 1;
pid @DIR@/nginx.pid;
error_log @DIR@/logs/error.log warn;
events { worker_connections 256; }
http {
  client_body_temp_path @DIR@/body;
  proxy_temp_path @DIR@/proxy;
  fastcgi_temp_path @DIR@/fastcgi;
  uwsgi_temp_path @DIR@/uwsgi;
  scgi_temp_path @DIR@/scgi;
  keepalive_timeout 300s;
  keepalive_requests 1000000;
  large_client_header_buffers 8 64k;
  client_body_buffer_size 1m;
  client_body_in_single_buffer on;
  client_max_body_size 10m;
  log_format smuggling escape=json '{"case":"$http_x_case","method":"$request_method",'
    '"target":"$request_uri","status":"$status","body":"$request_body"}';
  server {
    listen 127.0.0.1:@PORT@;
    access_log @LOG@ smuggling;
    add_header X-Seen nginx always;
    location / { proxy_pass http://127.0.0.1:@SINK@; }
  }
  server {
    listen 127.0.0.1:@SINK@;
    access_log off;
    location / { return 200 "ok"; }
  }
}
)";
    conf = replaceAll(conf, "@DIR@", dir_);
    conf = replaceAll(conf, "@LOG@", log_);
    conf = replaceAll(conf, "@PORT@", std::to_string(port_));
    conf = replaceAll(conf, "@SINK@", std::to_string(sink));
    writeFile(dir_ + "/nginx.conf", conf);
    process_ = std::make_unique<Process>(
        std::vector<std::string>{"/usr/sbin/nginx", "-p", dir_, "-c", dir_ + "/nginx.conf"},
        dir_ + "/stdout.log");
    bool up = waitFor(
        [&] {
          HttpClient c("127.0.0.1", port_, 1s);
          return c.get("/", {{"x-case", "ready"}}).status == 200;
        },
        10s, 50ms);
    REQUIRE_MESSAGE(
        up, "nginx did not start: " << readFile(dir_ + "/logs/error.log") << process_->log());
  }
  uint16_t port() const { return port_; }
  const std::string& requestLog() const { return log_; }

 private:
  std::string dir_;
  std::string log_;
  uint16_t port_ = 0;
  std::unique_ptr<Process> process_;
};

/// Python's http.server as the other parser (smuggling_backend.py).
class PythonBackendProc {
 public:
  explicit PythonBackendProc(const TempDir& dir) : log_(dir.file("python-requests")) {
    writeFile(log_, "");
    process_ = std::make_unique<Process>(
        std::vector<std::string>{
            "/usr/bin/python3",
            sticky::test::sourceDir() + "/test/integration/proxy/smuggling_backend.py", "--listen",
            "127.0.0.1:0", "--log", log_},
        dir.file("python-backend.log"));
    std::optional<uint16_t> port;
    bool up = waitFor([&] { return (port = listeningPort(process_->log())).has_value(); }, 10s);
    REQUIRE_MESSAGE(up, "the Python backend did not start: " << process_->log());
    port_ = *port;
  }
  uint16_t port() const { return port_; }
  const std::string& requestLog() const { return log_; }

 private:
  std::string log_;
  uint16_t port_ = 0;
  std::unique_ptr<Process> process_;
};

/// A backend's log, each record with the "id" of the input it came from: the leading digits of
/// its x-case (an obs-fold line after x-case is joined to its value: "88 Transfer-Encoding:
/// chunked"); for a request nginx refused before it read the fields (no x-case, status 400),
/// the id of the record before it: the inputs are sent one after another, nginx logs in order.
std::vector<json> readRecords(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = json::parse(line, nullptr, false);
    if (j.is_discarded()) j = json{{"case", "unparseable"}, {"line", line}};
    std::string mark = j.value("case", "");
    std::string id = mark.substr(0, mark.find_first_not_of("0123456789"));
    if (mark == "ready") id = mark;
    if (id.empty() && mark.empty() && j.value("status", "200") != "200") id = last;
    if (!id.empty() && id != "ready") last = id;
    j["id"] = id;
    out.push_back(j);
  }
  return out;
}

/// The authority of an absolute-form target ("" for origin form).
std::string authorityOf(const std::string& target) {
  auto scheme = target.find("://");
  if (scheme == std::string::npos || target.empty() || target.front() == '/') return {};
  return target.substr(scheme + 3, target.find_first_of("/?#", scheme + 3) - scheme - 3);
}

/// The path a backend saw, without an absolute-form target's scheme and authority, and with
/// one leading slash (http.server turns "//a/b" into "/a/b"; nginx keeps it).
std::string pathOf(std::string target) {
  auto authority = authorityOf(target);
  if (!authority.empty()) {
    auto slash = target.find('/', target.find("://") + 3);
    target = slash == std::string::npos ? "/" : target.substr(slash);
  }
  size_t slashes = target.find_first_not_of('/');
  if (slashes != std::string::npos && slashes > 1) target.erase(0, slashes - 1);
  return target;
}

struct BackendUnderTest {
  std::string name;
  std::unique_ptr<ProxyProc> proxy;
  std::string log;
  std::vector<ClientView> views;                     // per case
  std::map<std::string, std::vector<json>> records;  // by x-case
  /// A record of a request the backend took whole and answered (vs. cut short or refused).
  std::function<bool(const json&)> complete;
};

TEST_CASE(
    "smuggling - every ambiguous input is refused or reaches nginx and http.server as the "
    "same single request") {
  const uint64_t seed = envNumber("STICKY_SMUGGLING_SEED", kDefaultSeed);
  const int random_cases =
      static_cast<int>(envNumber("STICKY_SMUGGLING_CASES", kDefaultRandomCases));
  MESSAGE("smuggling inputs: seed " << seed << ", " << random_cases
                                    << " random cases (STICKY_SMUGGLING_SEED, "
                                       "STICKY_SMUGGLING_CASES)");
  std::vector<Case> cases = smuggling::explicitCases();
  for (auto& c : smuggling::randomCases(seed, random_cases)) cases.push_back(std::move(c));
  for (size_t i = 0; i < cases.size(); ++i)
    cases[i].bytes = replaceAll(cases[i].bytes, smuggling::kCaseMark, std::to_string(i));

  TempDir dir;
  NginxProc nginx(dir);
  PythonBackendProc python(dir);
  std::vector<BackendUnderTest> backends(2);
  backends[0].name = "nginx";
  backends[0].proxy = std::make_unique<ProxyProc>(
      dir, configOf(1, {stickyRoute("smuggling/nginx",
                                    {EndpointConfig{"nginx", "127.0.0.1", nginx.port(),
                                                    EndpointState::Active}})}));
  backends[0].log = nginx.requestLog();
  backends[0].complete = [](const json& r) { return r.value("status", "") == "200"; };
  backends[1].name = "python";
  backends[1].proxy = std::make_unique<ProxyProc>(
      dir, configOf(1, {stickyRoute("smuggling/python",
                                    {EndpointConfig{"python", "127.0.0.1", python.port(),
                                                    EndpointState::Active}})}));
  backends[1].log = python.requestLog();
  backends[1].complete = [](const json& r) { return !r.contains("error"); };

  // Every input on a fresh connection to each proxy; the client half-closes after it, so the
  // proxy answers what it accepts and then sees the end of the input.
  int expected_total = 0;
  for (auto& c : cases) {
    for (auto& b : backends) {
      RawConnection conn("127.0.0.1", b.proxy->port());
      REQUIRE(conn.error().empty());
      conn.send(c.bytes);
      conn.shutdownSend();
      b.views.push_back(parseResponses(conn.readUntilClose(5s)));
      expected_total += b.views.back().from_backend;
    }
  }
  // nginx writes its access log just after answering: wait until every answer is logged.
  auto logged = [&] {
    size_t n = 0;
    for (auto& b : backends) n += readRecords(b.log).size();
    return n;
  };
  waitFor([&] { return logged() >= static_cast<size_t>(expected_total) + 1; }, 5s);
  for (auto& b : backends) {
    for (auto& r : readRecords(b.log)) b.records[r.value("id", "")].push_back(r);
    b.records.erase("ready");
  }

  int refused = 0, forwarded = 0, backend_refusals = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string id = std::to_string(i);
    INFO("case " << i << " (" << cases[i].family << "), seed " << seed << ": \""
                 << escaped(cases[i].bytes) << "\"");
    // The records of requests each backend read whole, up to the first it refused itself.
    std::vector<std::vector<json>> complete(backends.size());
    bool backend_refused = false;
    std::vector<size_t> nginx_refused;  // indexes of requests nginx refused
    for (size_t k = 0; k < backends.size(); ++k) {
      auto& b = backends[k];
      const ClientView& v = b.views[i];
      const auto& records = b.records[id];
      INFO(b.name << ": client got " << v.statuses.size() << " responses (" << v.from_backend
                  << " from the backend), closed " << v.closed << "; the backend logged "
                  << json(records).dump());
      CHECK_MESSAGE(v.error.empty(), v.error);
      CHECK_MESSAGE(v.closed, "the proxy neither answered all nor closed");
      // Exactly the requests answered reached the backend; at most one more, the last, cut
      // short (a body the client ended early after the proxy started streaming it).
      const size_t answered = static_cast<size_t>(v.from_backend);
      bool cut_short = records.size() == answered + 1 && !b.complete(records.back());
      bool as_answered = records.size() == answered || cut_short;
      CHECK_MESSAGE(as_answered,
                    "the backend saw other requests than those the client got answers to");
      CHECK(records.size() <= v.statuses.size() + 1);
      for (size_t r = 0; r < records.size() && r < answered; ++r) {
        if (b.complete(records[r])) {
          if (!backend_refused) complete[k].push_back(records[r]);
          continue;
        }
        // http.server refusing what the proxy forwarded means broken framing; nginx refuses a
        // method with lower-case letters, which the proxy and http.server accept (checked
        // below): compared no further.
        CHECK_MESSAGE(k == 0, "http.server could not read a request the proxy forwarded");
        if (k == 0) nginx_refused.push_back(r);
        backend_refused = true;
        ++backend_refusals;
      }
      if (k == 1) {
        for (auto& r : records) {
          int cl = r.value("content_length_fields", 0), te = r.value("transfer_encoding_fields", 0);
          CHECK_MESSAGE(cl + te <= 1, "more than one framing field forwarded");
          std::vector<std::string> hosts;
          for (auto& h : r["headers"]) {
            auto name = lowered(h[0].get<std::string>());
            if (name == "transfer-encoding") CHECK(h[1].get<std::string>() == "chunked");
            if (name == "host") hosts.push_back(h[1].get<std::string>());
          }
          // One Host, and the one the proxy routed by: an absolute-form target's authority.
          CHECK_MESSAGE(hosts.size() == 1, "Host fields forwarded: " << hosts.size());
          auto authority = authorityOf(r["target"].get<std::string>());
          if (!authority.empty() && hosts.size() == 1) CHECK(hosts[0] == authority);
        }
      }
    }
    // nginx may refuse only a method with lower-case letters (as http.server read it).
    for (size_t r : nginx_refused) {
      const auto& twins = backends[1].records[id];
      std::string method = r < twins.size() ? twins[r].value("method", "") : "";
      bool lower_case = method.find_first_of("abcdefghijklmnopqrstuvwxyz") != std::string::npos;
      CHECK_MESSAGE(lower_case, "nginx refused request " << r << " the proxy forwarded (method "
                                                         << method << ")");
    }
    // Both parsers saw the same requests (up to one nginx refused).
    REQUIRE(complete.size() == 2);
    if (!backend_refused) CHECK(complete[0].size() == complete[1].size());
    for (size_t r = 0; r < complete[0].size() && r < complete[1].size(); ++r) {
      const json &n = complete[0][r], &p = complete[1][r];
      CHECK(n["method"] == p["method"]);
      CHECK(pathOf(n["target"].get<std::string>()) == pathOf(p["target"].get<std::string>()));
      CHECK(n["body"] == p["body"]);
    }
    if (backends[1].views[i].from_backend == 0)
      ++refused;
    else
      ++forwarded;
  }
  // Nothing arrived that no input asked for (a case id the inputs do not have, or none).
  for (auto& b : backends) {
    for (auto& [id, records] : b.records) {
      bool known = !id.empty() && id.find_first_not_of("0123456789") == std::string::npos &&
                   std::stoul(id) < cases.size();
      CHECK_MESSAGE(known, b.name << " logged requests of no input: " << json(records).dump());
    }
    CHECK(b.proxy->process().running());
  }
  MESSAGE(cases.size() << " inputs: " << forwarded << " forwarded, " << refused
                       << " refused by the proxy; " << backend_refusals
                       << " forwarded requests refused by nginx");
}

}  // namespace
}  // namespace sticky::test
