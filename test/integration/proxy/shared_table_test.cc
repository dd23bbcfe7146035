// The shared stick table through real processes: three sticky-proxy replicas, one real
// redis-server, real backends. Every replica must agree on every key; a restart, a Redis
// outage (even one that comes back empty), a failover move or an admin eviction on one replica
// must not split a session.
#include <doctest/doctest.h>

#include <signal.h>

#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "integration/proxy/proxy_harness.h"
#include "routing/placement.h"
#include "routing/redis_store.h"
#include "support/redis_server.h"

namespace sticky::test {
namespace {

/// The Prometheus sample `name` (first line starting with it, labels ignored), or -1.
double metricValue(uint16_t port, const std::string& name) {
  HttpClient c("127.0.0.1", port);
  auto res = c.get("/metrics");
  if (res.status != 200) return -1;
  std::istringstream in(res.body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + " ", 0) != 0 && line.rfind(name + "{", 0) != 0) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

struct Replicas {
  Replicas(const TempDir& dir, const ProxyConfig& config, const RedisServer& redis, int n = 3,
           std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--redis-address", redis.address(),    "--redis-command-timeout",
                                  "200ms",           "--metrics-listen", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    for (int i = 0; i < n; ++i) {
      proxies.push_back(std::make_unique<ProxyProc>(dir, config, args));
      REQUIRE(waitFor(
          [&] {
            return metricValue(proxies.back()->metricsPort(), "sticky_shared_table_connected") == 1;
          },
          10s));
    }
  }
  ProxyProc& operator[](size_t i) { return *proxies[i]; }
  size_t size() const { return proxies.size(); }
  std::vector<std::unique_ptr<ProxyProc>> proxies;
};

/// Sessions of shop/chat in Redis (DBSIZE would count the peer-load hash too).
size_t sessionsIn(const RedisServer& redis) {
  return redis.command({"KEYS", "sticky:shop/chat:*"}).elements.size();
}

/// Which backend `proxy` sends key `k` to (REQUIREs a 200).
std::string via(ProxyProc& proxy, const std::string& k) {
  auto client = proxy.client();
  auto res = client.get("/", key(k));
  REQUIRE_MESSAGE(res.status == 200, k << ": " << res.status << " " << res.error << res.body);
  return backendOf(res);
}

/// The most loaded backend's count over the least loaded one's.
double mostOverLeast(const std::map<std::string, int>& per_backend) {
  int most = 0, least = std::numeric_limits<int>::max();
  for (auto& [backend, n] : per_backend) {
    most = std::max(most, n);
    least = std::min(least, n);
  }
  return static_cast<double>(most) / least;
}

ProxyConfig threeBackends(BackendProc& b1, BackendProc& b2, BackendProc& b3,
                          Placement placement = Placement::LeastSessions) {
  return configOf(
      1, {stickyRoute("shop/chat", {b1.endpoint(), b2.endpoint(), b3.endpoint()}, placement)});
}

TEST_CASE("shared table - three replicas send every key to the same pod") {
  TempDir dir;
  RedisServer redis;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3"), b3(dir, "b3", "127.0.0.4");
  for (Placement placement : {Placement::LeastSessions, Placement::RoundRobin}) {
    CAPTURE(toString(placement));
    redis.command({"FLUSHALL"});
    Replicas replicas(dir, threeBackends(b1, b2, b3, placement), redis);
    // Each key is first seen by a different replica (several at once for some keys), then
    // asked of every replica.
    std::map<std::string, std::string> where;
    for (int i = 0; i < 300; ++i) {
      std::string k = "user-" + std::to_string(i);
      where[k] = via(replicas[i % 3], k);
    }
    std::map<std::string, int> per_backend;
    for (auto& [k, backend] : where) {
      per_backend[backend]++;
      for (size_t r = 0; r < replicas.size(); ++r) {
        INFO("key " << k << " via replica " << r);
        CHECK(via(replicas[r], k) == backend);
      }
    }
    CHECK(per_backend.size() == 3);
    CHECK(sessionsIn(redis) == 300);
    CHECK(metricValue(replicas[0].metricsPort(), "sticky_redis_command_latency_seconds_count") >=
          100);
  }
}

/// CLIENT LIST as name -> the connection's last command (connections without a name left out).
std::map<std::string, std::string> namedClients(const RedisServer& redis) {
  std::map<std::string, std::string> out;
  std::istringstream lines(redis.command({"CLIENT", "LIST"}).text);
  std::string line;
  while (std::getline(lines, line)) {
    std::map<std::string, std::string> fields;
    std::istringstream words(line);
    std::string word;
    while (words >> word) {
      size_t eq = word.find('=');
      if (eq != std::string::npos) fields[word.substr(0, eq)] = word.substr(eq + 1);
    }
    if (!fields["name"].empty()) out[fields["name"]] = fields["cmd"];
  }
  return out;
}

TEST_CASE("shared table - each worker claims on a Redis connection of its own") {
  TempDir dir;
  RedisServer redis;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3"), b3(dir, "b3", "127.0.0.4");
  Replicas replicas(dir, threeBackends(b1, b2, b3, Placement::RoundRobin), redis, 2);
  // A new connection per request: the kernel spreads them over both workers (SO_REUSEPORT).
  std::map<std::string, std::string> where;
  for (int i = 0; i < 200; ++i) {
    std::string k = "lane-" + std::to_string(i);
    where[k] = via(replicas[i % 2], k);
  }
  // Each replica (2 workers): its own connection "<replica>", its events "<replica>:events",
  // and one per worker "<replica>:claims-<n>", which sent the claims (SET NX GET).
  auto clients = namedClients(redis);
  std::set<std::string> replica_ids;
  for (auto& [name, cmd] : clients) {
    if (name.ends_with(":claims-0")) replica_ids.insert(name.substr(0, name.size() - 9));
  }
  REQUIRE(replica_ids.size() == 2);
  for (const std::string& id : replica_ids) {
    INFO("replica " << id);
    CHECK(clients.count(id) == 1);
    CHECK(clients.count(id + ":events") == 1);
    CHECK(clients[id + ":claims-0"] == "set");
    CHECK(clients[id + ":claims-1"] == "set");
    CHECK(clients[id] != "set");
  }
  CHECK(clients.size() == 8);

  // The workers' connections killed: claims meanwhile are placed locally (none fails), the
  // connections come back, and every replica agrees on every key again.
  for (auto& [name, cmd] : clients) {
    if (name.find(":claims-") == std::string::npos) continue;
    auto list = redis.command({"CLIENT", "LIST"}).text;
    size_t at = list.find(" name=" + name + " ");
    REQUIRE(at != std::string::npos);
    size_t line = list.rfind('\n', at);
    std::string id = list.substr(line == std::string::npos ? 3 : line + 4);
    redis.command({"CLIENT", "KILL", "ID", id.substr(0, id.find(' '))});
  }
  for (int i = 200; i < 260; ++i) {
    std::string k = "lane-" + std::to_string(i);
    where[k] = via(replicas[0], k);
  }
  for (size_t r = 0; r < replicas.size(); ++r) {
    REQUIRE(waitFor(
        [&] {
          return metricValue(replicas[r].metricsPort(), "sticky_shared_table_connected") == 1;
        },
        5s));
  }
  CHECK(namedClients(redis).size() == 8);
  // Keys placed while a lane was down are re-asserted by the next refresh round (1 s): from
  // then on both replicas send each key to the same pod.
  CHECK(waitFor(
      [&] {
        for (auto& [k, backend] : where) {
          if (via(replicas[0], k) != via(replicas[1], k)) return false;
        }
        return true;
      },
      5s));
}

TEST_CASE("shared table - LeastSessions stays balanced across three replicas") {
  TempDir dir;
  RedisServer redis;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3"), b3(dir, "b3", "127.0.0.4");
  Replicas replicas(dir, threeBackends(b1, b2, b3), redis);
  // Each replica places the keys it sees first on its own least loaded pod; the sum over
  // replicas stays balanced (the bound: max/min pod load <= 1.25 with 3 replicas x 10k keys).
  std::map<std::string, int> per_backend;
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (size_t r = 0; r < replicas.size(); ++r)
    clients.push_back(std::make_unique<HttpClient>("127.0.0.1", replicas[r].port()));
  constexpr int kKeys = 30000;
  for (int i = 0; i < kKeys; ++i) {
    auto res = clients[(i * 7 + i / 3) % 3]->get("/", key("bal-" + std::to_string(i)));
    REQUIRE(res.status == 200);
    per_backend[backendOf(res)]++;
  }
  REQUIRE(per_backend.size() == 3);
  INFO("b1=" << per_backend["b1"] << " b2=" << per_backend["b2"] << " b3=" << per_backend["b3"]);
  CHECK(mostOverLeast(per_backend) <= 1.25);
}

/// The peer-load field `proxy` wrote for shop/chat in Redis (its replica id holds "/<pid>/").
std::optional<proxy::LoadField> loadFieldOf(const RedisServer& redis, const ProxyProc& proxy) {
  auto all = redis.command({"HGETALL", "sticky:load:shop/chat"});
  const std::string pid = "/" + std::to_string(proxy.pid()) + "/";
  for (size_t i = 0; i + 1 < all.elements.size(); i += 2) {
    if (all.elements[i].text.find(pid) != std::string::npos) {
      return proxy::decodeLoadField(all.elements[i + 1].text);
    }
  }
  return std::nullopt;
}

TEST_CASE("shared table - LeastSessions fills a new pod with keys from a replica that saw none") {
  TempDir dir;
  RedisServer redis;
  BackendProc p1(dir, "p1", "127.0.0.2"), p2(dir, "p2", "127.0.0.3"), p3(dir, "p3", "127.0.0.4");
  Replicas replicas(dir, configOf(1, {stickyRoute("shop/chat", {p1.endpoint(), p2.endpoint()})}),
                    redis, 2);
  ProxyProc& a = replicas[0];
  ProxyProc& b = replicas[1];
  std::map<std::string, int> per_pod;
  auto send = [&](HttpClient& client, const std::string& k) {
    auto res = client.get("/", key(k));
    REQUIRE(res.status == 200);
    per_pod[backendOf(res)]++;
  };
  // Replica A places 10k keys while the route has two pods; B sees none of them.
  auto via_a = a.client();
  for (int i = 0; i < 10000; ++i) send(via_a, "old-" + std::to_string(i));
  // A third pod joins on both replicas.
  ProxyConfig three =
      configOf(2, {stickyRoute("shop/chat", {p1.endpoint(), p2.endpoint(), p3.endpoint()})});
  a.reload(three);
  b.reload(three);

  // Wait until B has read A's full counts: A's field in Redis says 10k at time T, and B has
  // since published twice (a round's script reads the hash as it writes, and B's next round
  // starts only after the last one's answer was applied).
  int64_t complete_at = 0;
  REQUIRE(waitFor(
      [&] {
        auto f = loadFieldOf(redis, a);
        uint64_t total = 0;
        for (auto& [id, n] : f ? f->counts : proxy::EndpointCounts{}) total += n;
        if (total == 10000 && f->counts.size() == 3) complete_at = f->at_ms;
        return complete_at > 0;
      },
      10s, 50ms));
  for (int round = 0; round < 2; ++round) {
    REQUIRE(waitFor(
        [&] {
          auto f = loadFieldOf(redis, b);
          if (!f || f->at_ms <= complete_at) return false;
          complete_at = f->at_ms;
          return true;
        },
        10s, 50ms));
  }
  CHECK(metricValue(b.metricsPort(), "sticky_shared_table_peer_replicas") == 1);
  CHECK(metricValue(a.metricsPort(), "sticky_shared_table_peer_replicas") == 1);

  // 5k new keys only through B: knowing A's 5k + 5k, B fills p3 first.
  auto via_b = b.client();
  for (int i = 0; i < 5000; ++i) send(via_b, "new-" + std::to_string(i));
  INFO("p1=" << per_pod["p1"] << " p2=" << per_pod["p2"] << " p3=" << per_pod["p3"]);
  REQUIRE(per_pod.size() == 3);
  CHECK(mostOverLeast(per_pod) <= 1.25);
}

TEST_CASE("shared table - peer load - a replica that stops publishing stops counting") {
  TempDir dir;
  RedisServer redis;
  BackendProc p1(dir, "p1", "127.0.0.2"), p2(dir, "p2", "127.0.0.3");
  ProxyConfig config = configOf(1, {stickyRoute("shop/chat", {p1.endpoint(), p2.endpoint()})});
  Replicas replicas(dir, config, redis, 2);
  REQUIRE(waitFor(
      [&] {
        return metricValue(replicas[0].metricsPort(), "sticky_shared_table_peer_replicas") == 1 &&
               metricValue(replicas[1].metricsPort(), "sticky_shared_table_peer_replicas") == 1;
      },
      10s));
  // A field left by a replica that died a minute ago is removed by the survivors; garbage too.
  redis.command({"HSET", "sticky:load:shop/chat", "dead/1/0", "1000 0000000000000001=5", "odd/2/0",
                 "not a load field"});
  CHECK(waitFor(
      [&] {
        return redis.command({"HEXISTS", "sticky:load:shop/chat", "dead/1/0"}).integer == 0 &&
               redis.command({"HEXISTS", "sticky:load:shop/chat", "odd/2/0"}).integer == 0;
      },
      10s));
  replicas[1].process().signal(SIGKILL);
  CHECK(waitFor(
      [&] {
        return metricValue(replicas[0].metricsPort(), "sticky_shared_table_peer_replicas") == 0;
      },
      10s));
}

TEST_CASE("shared table - peer load - an ACL without HSET is logged once - placement goes on") {
  TempDir dir;
  RedisServer redis;
  redis.command({"ACL", "SETUSER", "proxy", "on", ">pw", "~*", "&*", "+@all", "-hset"});
  writeFile(dir.file("redis-password"), "pw\n");
  BackendProc p1(dir, "p1", "127.0.0.2"), p2(dir, "p2", "127.0.0.3");
  ProxyProc proxy(
      dir, configOf(1, {stickyRoute("shop/chat", {p1.endpoint(), p2.endpoint()})}),
      {"--redis-address", redis.address(), "--redis-username", "proxy", "--redis-password-file",
       dir.file("redis-password"), "--metrics-listen", "127.0.0.1:0"});
  const std::string warning = "Redis refused the session-count script";
  REQUIRE(waitFor([&] { return proxy.log().find(warning) != std::string::npos; }, 10s));
  INFO(proxy.log());
  CHECK(proxy.log().find("reply=\"(error) ") != std::string::npos);  // Redis's reason with it
  std::map<std::string, int> per_pod;
  for (int i = 0; i < 100; ++i) per_pod[via(proxy, "acl-" + std::to_string(i))]++;
  CHECK(per_pod["p1"] == 50);
  CHECK(per_pod["p2"] == 50);
  CHECK(sessionsIn(redis) == 100);
  // Rounds go on failing; the warning is not repeated each second.
  const double commands = metricValue(proxy.metricsPort(), "sticky_redis_commands_total");
  REQUIRE(waitFor(
      [&] {
        return metricValue(proxy.metricsPort(), "sticky_redis_commands_total") >= commands + 2;
      },
      10s));
  const std::string log = proxy.log();
  CHECK(log.find(warning) == log.rfind(warning));
}

TEST_CASE("shared table - concurrent first requests on all replicas agree") {
  TempDir dir;
  RedisServer redis;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3"), b3(dir, "b3", "127.0.0.4");
  Replicas replicas(dir, threeBackends(b1, b2, b3, Placement::RoundRobin), redis);
  // RoundRobin gives each replica its own candidate: only Redis can make them agree.
  constexpr int kKeys = 1000;
  std::vector<std::map<std::string, std::string>> seen(6);
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      auto client = replicas[t % 3].client();
      for (int i = 0; i < kKeys; ++i) {
        std::string k = "race-" + std::to_string(i);
        auto res = client.get("/", key(k));
        seen[t][k] = res.status == 200 ? backendOf(res) : "status " + std::to_string(res.status);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kKeys; ++i) {
    std::string k = "race-" + std::to_string(i);
    std::set<std::string> answers;
    for (auto& s : seen) answers.insert(s[k]);
    INFO("key " << k);
    CHECK(answers.size() == 1);
  }
}

TEST_CASE("shared table - a restarted replica and a new one keep every session") {
  TempDir dir;
  RedisServer redis;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3"), b3(dir, "b3", "127.0.0.4");
  ProxyConfig config = threeBackends(b1, b2, b3);
  Replicas replicas(dir, config, redis, 1);
  std::map<std::string, std::string> where;
  for (int i = 0; i < 200; ++i)
    where["k" + std::to_string(i)] = via(replicas[0], "k" + std::to_string(i));

  replicas[0].process().signal(SIGKILL);
  replicas.proxies.clear();
  Replicas fresh(dir, config, redis, 2);  // an empty table each: only Redis remembers
  for (auto& [k, backend] : where) {
    INFO("key " << k);
    CHECK(via(fresh[0], k) == backend);
    CHECK(via(fresh[1], k) == backend);
  }
}

TEST_CASE("shared table - /readyz waits for Redis at start, at most twice the connect timeout") {
  TempDir dir;
  BackendProc b1(dir, "b1", "127.0.0.2");
  ProxyConfig config = configOf(1, {stickyRoute("shop/chat", {b1.endpoint()})});
  // Nothing listens on port 1: the replica never reaches Redis.
  ProxyProc proxy(dir, config,
                  {"--redis-address", "127.0.0.1:1", "--redis-connect-timeout", "3s",
                   "--metrics-listen", "127.0.0.1:0"});
  const auto started = std::chrono::steady_clock::now();
  auto ready = HttpClient("127.0.0.1", proxy.metricsPort()).get("/readyz");
  CHECK(ready.status == 503);
  CHECK(ready.body.find("connecting to Redis for the shared table") != std::string::npos);
  REQUIRE(waitFor(
      [&] { return HttpClient("127.0.0.1", proxy.metricsPort()).get("/readyz").status == 200; },
      15s, 100ms));
  CHECK(std::chrono::steady_clock::now() - started >= 3s);
  // Ready without Redis: sessions are placed on this replica alone, and served.
  CHECK(via(proxy, "42") == "b1");
}

TEST_CASE("shared table - a rolling restart under load moves no session and fails no request") {
  TempDir dir;
  RedisServer redis;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3"), b3(dir, "b3", "127.0.0.4");
  ProxyConfig config = threeBackends(b1, b2, b3);
  // As a Deployment rollout does it: a new replica first, then one old one leaves (taken out of
  // the "Service" before SIGTERM, with a shutdown delay for requests already on their way).
  std::vector<std::string> args{"--shutdown-delay", "500ms"};
  Replicas replicas(dir, config, redis, 3, args);

  std::mutex mu;
  std::vector<uint16_t> live;  // the Service's endpoints
  for (size_t i = 0; i < replicas.size(); ++i) live.push_back(replicas[i].port());
  std::map<std::string, std::set<std::string>> backends_of;  // key -> every backend seen
  std::vector<std::string> failures;
  std::atomic<int> requests{0};
  std::atomic<bool> done{false};

  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      for (int n = 0; !done.load(); ++n) {
        std::string k = "roll-" + std::to_string((n * 4 + t) % 600);
        uint16_t port = 0;
        {
          std::lock_guard lock(mu);
          port = live[static_cast<size_t>(n + t) % live.size()];
        }
        HttpClient client("127.0.0.1", port);
        auto res = client.get("/", key(k));
        requests.fetch_add(1);
        std::lock_guard lock(mu);
        if (res.status != 200) {
          failures.push_back(k + " via :" + std::to_string(port) + ": " +
                             std::to_string(res.status) + " " + res.error);
        } else {
          backends_of[k].insert(backendOf(res));
        }
      }
    });
  }

  // Three rounds: start a replica, wait until it serves, take the oldest out and stop it.
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(300ms);
    auto fresh = std::make_unique<ProxyProc>(
        dir, config,
        std::vector<std::string>{"--redis-address", redis.address(), "--redis-command-timeout",
                                 "200ms", "--shutdown-delay", "500ms", "--metrics-listen",
                                 "127.0.0.1:0"});
    // The readiness probe: ready only once it reached Redis (or gave up waiting for it).
    REQUIRE(waitFor(
        [&] { return HttpClient("127.0.0.1", fresh->metricsPort()).get("/readyz").status == 200; },
        10s));
    CHECK(metricValue(fresh->metricsPort(), "sticky_shared_table_connected") == 1);
    {
      std::lock_guard lock(mu);
      live.push_back(fresh->port());
      live.erase(live.begin());
    }
    std::unique_ptr<ProxyProc> old = std::move(replicas.proxies.front());
    replicas.proxies.erase(replicas.proxies.begin());
    replicas.proxies.push_back(std::move(fresh));
    old->process().signal(SIGTERM);
    CHECK(old->process().wait(10s) == 0);
  }
  std::this_thread::sleep_for(300ms);
  done = true;
  for (auto& c : clients) c.join();

  INFO(requests.load() << " requests");
  CHECK(requests.load() > 600);
  CHECK(failures.empty());
  for (size_t i = 0; i < failures.size() && i < 5; ++i) MESSAGE(failures[i]);
  int split = 0;
  for (auto& [k, seen] : backends_of) split += seen.size() > 1 ? 1 : 0;
  CHECK(split == 0);
  CHECK(backends_of.size() == 600);
}

TEST_CASE(
    "shared table - Redis down - no request fails - back empty - local sessions re-asserted") {
  TempDir dir;
  RedisServer redis;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3"), b3(dir, "b3", "127.0.0.4");
  Replicas replicas(dir, threeBackends(b1, b2, b3), redis, 2);
  std::map<std::string, std::string> where;
  for (int i = 0; i < 50; ++i)
    where["old" + std::to_string(i)] = via(replicas[0], "old" + std::to_string(i));

  redis.kill();
  REQUIRE(waitFor(
      [&] { return metricValue(replicas[0].metricsPort(), "sticky_shared_table_connected") == 0; },
      10s));
  // Known keys are served from the local table; new keys are placed locally. Nothing fails.
  for (auto& [k, backend] : where) CHECK(via(replicas[0], k) == backend);
  for (int i = 0; i < 50; ++i)
    where["new" + std::to_string(i)] = via(replicas[0], "new" + std::to_string(i));
  CHECK(metricValue(replicas[0].metricsPort(), "sticky_shared_table_unavailable_total") >= 50);
  CHECK(metricValue(replicas[0].metricsPort(), "sticky_shared_table_unsynced_entries") >= 50);

  redis.start();  // empty: nothing was persisted
  REQUIRE(waitFor([&] { return sessionsIn(redis) == 100; }, 15s));
  // Checked by the refresh rounds: none left unconfirmed. An unconfirmed entry leaves that state
  // only through a round (or by going away), so the rounds carried the 50 placed meanwhile.
  CHECK(waitFor(
      [&] {
        return metricValue(replicas[0].metricsPort(), "sticky_shared_table_unsynced_entries") == 0;
      },
      10s));
  CHECK(metricValue(replicas[0].metricsPort(), "sticky_shared_table_refresh_batch_size_count") >=
        1);
  CHECK(metricValue(replicas[0].metricsPort(), "sticky_shared_table_refresh_batch_size_sum") >= 50);
  // Replica 1 never saw these keys: it learns them from what replica 0 re-asserted.
  for (auto& [k, backend] : where) {
    INFO("key " << k);
    CHECK(via(replicas[1], k) == backend);
  }
  CHECK(metricValue(replicas[0].metricsPort(), "sticky_shared_table_reasserted_total") >= 100);
}

TEST_CASE("shared table - a session moved by one replica moves on every replica") {
  TempDir dir;
  RedisServer redis;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3"), b3(dir, "b3", "127.0.0.4");
  Replicas replicas(dir, threeBackends(b1, b2, b3), redis, 2);
  std::vector<std::string> on_b1;
  for (int i = 0; on_b1.size() < 10 && i < 200; ++i) {
    std::string k = "m" + std::to_string(i);
    std::string backend = via(replicas[0], k);
    CHECK(via(replicas[1], k) == backend);  // replica 1 caches it too
    if (backend == "b1") on_b1.push_back(k);
  }
  REQUIRE(on_b1.size() == 10);

  b1.kill();
  // Replica 0 finds b1 refusing, fails over and moves each session (compare-and-set in Redis,
  // announced); replica 1, which has not noticed b1 is gone, follows the announcement.
  std::map<std::string, std::string> moved;
  for (const auto& k : on_b1) {
    moved[k] = via(replicas[0], k);
    CHECK(moved[k] != "b1");
  }
  REQUIRE(waitFor(
      [&] {
        return metricValue(replicas[1].metricsPort(), "sticky_shared_table_events_applied_total") >=
               10;
      },
      10s));
  for (const auto& k : on_b1) {
    INFO("key " << k);
    CHECK(via(replicas[1], k) == moved[k]);
  }
}

TEST_CASE("shared table - an admin eviction through one replica applies on all") {
  TempDir dir;
  RedisServer redis;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3");
  ProxyConfig config = configOf(1, {stickyRoute("shop/chat", {b1.endpoint(), b2.endpoint()})});
  std::vector<std::unique_ptr<ProxyProcess>> proxies;
  for (int i = 0; i < 2; ++i) {
    std::string config_path = dir.file("evict-" + std::to_string(i) + ".json");
    writeFile(config_path, toJsonString(config, 2));
    proxies.push_back(std::make_unique<ProxyProcess>(ProxyOptions{
        .log_path = config_path + ".log",
        .config_file = config_path,
        .admin_socket = dir.file("admin-" + std::to_string(i) + ".sock"),
        .metrics = true,
        .extra_args = {"--redis-address", redis.address()},
    }));
    REQUIRE(waitFor(
        [&] { return proxies.back()->log().find("connected to Redis") != std::string::npos; },
        10s));
  }
  auto get = [&](int i, const std::string& k) {
    HttpClient client("127.0.0.1", proxies[i]->port());
    return backendOf(client.get("/", key(k)));
  };
  for (int i = 0; i < 20; ++i) {
    std::string k = "e" + std::to_string(i);
    CHECK(get(0, k) == get(1, k));
  }
  REQUIRE(waitFor([&] { return sessionsIn(redis) == 20; }, 5s));

  auto evicted = proxies[0]->admin().evictKey("shop/chat", "e3");
  REQUIRE(evicted);
  CHECK(*evicted == 1);
  CHECK(waitFor([&] { return redis.command({"EXISTS", "sticky:shop/chat:e3"}).integer == 0; }, 5s));
  // endpoint name -> sessions on it, in replica i's table
  auto sessions_of = [&](int i) {
    auto dump = proxies[i]->admin().sessions("shop/chat", 100);
    REQUIRE(dump);
    std::map<std::string, std::set<std::string>> by_endpoint;
    for (auto& s : dump->sessions) by_endpoint[s.endpoint].insert(s.key);
    return by_endpoint;
  };
  CHECK(waitFor(
      [&] { return !sessions_of(1)["b1"].contains("e3") && !sessions_of(1)["b2"].contains("e3"); },
      5s));
  // Counted once per replica by why it dropped the session: admin where the API was called,
  // replica where the event arrived.
  auto evicted_for = [&](int i, const std::string& reason) {
    return metricValue(
        proxies[i]->metricsPort(),
        R"(sticky_sessions_evicted_total{namespace="shop",stickyroute="chat",reason=")" + reason +
            "\"}");
  };
  CHECK(evicted_for(0, "admin") == 1);
  CHECK(evicted_for(0, "replica") == 0);
  CHECK(evicted_for(1, "admin") == 0);
  CHECK(evicted_for(1, "replica") == 1);
  CHECK(evicted_for(1, "capacity") == 0);

  // The whole endpoint through the other replica: every replica drops b1's sessions and Redis
  // holds none of them.
  REQUIRE(!sessions_of(0)["b1"].empty());
  auto by_endpoint = proxies[1]->admin().evictEndpoint("shop/chat", "b1");
  REQUIRE(by_endpoint);
  const std::string b1_value = proxy::endpointValue(proxy::endpointId(b1.endpoint()));
  CHECK(waitFor(
      [&] {
        auto keys = redis.command({"KEYS", "sticky:shop/chat:*"});
        for (auto& k : keys.elements) {
          if (redis.command({"GET", k.text}).text == b1_value) return false;
        }
        return true;
      },
      5s));
  CHECK(waitFor([&] { return sessions_of(0)["b1"].empty(); }, 5s));
  CHECK(!sessions_of(0)["b2"].empty());
  CHECK(evicted_for(1, "admin") == static_cast<double>(*by_endpoint));
  CHECK(evicted_for(1, "replica") == 1);
  CHECK(
      waitFor([&] { return evicted_for(0, "replica") == static_cast<double>(*by_endpoint); }, 5s));
  CHECK(evicted_for(0, "admin") == 1);
}

TEST_CASE("shared table - the admin stats count sessions cluster-wide") {
  TempDir dir;
  RedisServer redis;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3");
  ProxyConfig config = configOf(1, {stickyRoute("shop/chat", {b1.endpoint(), b2.endpoint()})});
  std::vector<std::unique_ptr<ProxyProcess>> proxies;
  for (int i = 0; i < 2; ++i) {
    std::string config_path = dir.file("census-" + std::to_string(i) + ".json");
    writeFile(config_path, toJsonString(config, 2));
    proxies.push_back(std::make_unique<ProxyProcess>(ProxyOptions{
        .log_path = config_path + ".log",
        .config_file = config_path,
        .admin_socket = dir.file("census-" + std::to_string(i) + ".sock"),
        .extra_args = {"--redis-address", redis.address()},
    }));
    REQUIRE(waitFor(
        [&] { return proxies.back()->log().find("connected to Redis") != std::string::npos; },
        10s));
  }
  // 30 keys only through replica 0, 50 only through replica 1, 20 through both: 100 sessions,
  // of which replica 0 holds 50 and replica 1 holds 70.
  std::map<std::string, int> per_backend;
  auto send = [&](int i, const std::string& k) {
    HttpClient client("127.0.0.1", proxies[i]->port());
    auto res = client.get("/", key(k));
    REQUIRE(res.status == 200);
    return backendOf(res);
  };
  for (int i = 0; i < 30; ++i) per_backend[send(0, "zero-" + std::to_string(i))]++;
  for (int i = 0; i < 50; ++i) per_backend[send(1, "one-" + std::to_string(i))]++;
  for (int i = 0; i < 20; ++i) {
    std::string k = "both-" + std::to_string(i);
    per_backend[send(0, k)]++;
    send(1, k);
  }
  // Another route's keys under the same prefix are not this route's sessions.
  redis.command({"SET", "sticky:shop/other:x", "0000000000000001"});

  // The first ask starts the count; within a few seconds the stats are the cluster's.
  admin::ProxyStats stats;
  REQUIRE(waitFor(
      [&] {
        auto got = proxies[0]->admin().stats();
        REQUIRE(got);
        stats = *got;
        return stats.sessions_scope == admin::SessionsScope::Cluster;
      },
      10s, 200ms));
  const admin::RouteStatsView* route = stats.findRoute("shop/chat");
  REQUIRE(route);
  CHECK(route->sessions == 100);
  CHECK(route->local_sessions == 50);
  std::map<std::string, uint64_t> counted;
  for (const auto& e : route->endpoints) counted[e.name] = e.sessions;
  CHECK(counted["b1"] == static_cast<uint64_t>(per_backend["b1"]));
  CHECK(counted["b2"] == static_cast<uint64_t>(per_backend["b2"]));

  // Replica 1 agrees on the count and holds its own 70.
  REQUIRE(waitFor(
      [&] {
        auto got = proxies[1]->admin().stats();
        return got && got->sessions_scope == admin::SessionsScope::Cluster;
      },
      10s, 200ms));
  auto other = proxies[1]->admin().stats();
  REQUIRE(other);
  CHECK(other->findRoute("shop/chat")->sessions == 100);
  CHECK(other->findRoute("shop/chat")->local_sessions == 70);

  // The shared table's own figures: replica 0 placed its 50 new keys, replica 1 adopted the 20
  // replica 0 had placed first.
  REQUIRE(stats.shared_table);
  CHECK(stats.shared_table->connected);
  CHECK(stats.shared_table->primary == redis.address());
  CHECK_FALSE(stats.shared_table->replica_id.empty());
  CHECK(stats.shared_table->commands >= 50);
  CHECK(stats.shared_table->latency_count >= 50);
  CHECK(stats.shared_table->errors == 0);
  REQUIRE(route->shared_table);
  CHECK(*route->shared_table == admin::RouteSharedView{50, 0, 0, 0});
  REQUIRE(other->shared_table);
  CHECK(other->shared_table->replica_id != stats.shared_table->replica_id);
  REQUIRE(other->findRoute("shop/chat")->shared_table);
  CHECK(*other->findRoute("shop/chat")->shared_table == admin::RouteSharedView{70, 20, 0, 0});

  // An eviction shows in the next count (a count is at most a few seconds old).
  REQUIRE(proxies[1]->admin().evictKey("shop/chat", "zero-3"));
  CHECK(waitFor(
      [&] {
        auto got = proxies[0]->admin().stats();
        return got && got->findRoute("shop/chat")->sessions == 99;
      },
      15s, 250ms));

  // Redis gone: the stats say so (the breaker is open), and a new key is placed locally.
  redis.kill();
  REQUIRE(waitFor(
      [&] {
        auto got = proxies[0]->admin().stats();
        return got && got->shared_table && !got->shared_table->connected;
      },
      10s, 100ms));
  send(0, "while-down");
  auto down = proxies[0]->admin().stats();
  REQUIRE(down);
  REQUIRE(down->shared_table);
  CHECK(down->shared_table->rejected >= 1);
  const auto& chat_down = down->findRoute("shop/chat")->shared_table;
  REQUIRE(chat_down);
  CHECK(chat_down->unavailable == 1);
  CHECK(chat_down->unsynced_entries == 1);
}

TEST_CASE("shared table - a hung Redis delays new sessions by the timeout, fails none") {
  TempDir dir;
  RedisServer redis;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3"), b3(dir, "b3", "127.0.0.4");
  Replicas replicas(dir, threeBackends(b1, b2, b3), redis, 1);
  redis.freeze();  // SIGSTOP: connections stay open, nothing answers
  auto client = replicas[0].client(5s);
  for (int i = 0; i < 20; ++i) {
    auto res = client.get("/", key("hung" + std::to_string(i)));
    CHECK(res.status == 200);
  }
  redis.thaw();
  CHECK(metricValue(replicas[0].metricsPort(), "sticky_shared_table_unavailable_total") >= 1);
}

TEST_CASE("shared table - a key used only through one replica lives on the others - idle ones go") {
  TempDir dir;
  RedisServer redis;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3"), b3(dir, "b3", "127.0.0.4");
  ProxyConfig config = threeBackends(b1, b2, b3, Placement::RoundRobin);
  config.routes[0].ttl = std::chrono::seconds(2);  // Redis margin: 1 s
  Replicas replicas(dir, config, redis, 2);
  const std::string busy = via(replicas[0], "busy");
  const std::string idle = via(replicas[0], "idle");
  // Replica 1 keeps "busy" alive for three TTLs; replica 0 never sees it again.
  for (int i = 0; i < 24; ++i) {
    CHECK(via(replicas[1], "busy") == busy);
    std::this_thread::sleep_for(250ms);
  }
  // Replica 0's copy expired long ago: it asks Redis, which the refreshes kept.
  CHECK(via(replicas[0], "busy") == busy);
  CHECK(redis.command({"EXISTS", "sticky:shop/chat:busy"}).integer == 1);
  // "idle" was not used for 6 s > ttl + margin + a refresh round: gone from Redis.
  CHECK(redis.command({"EXISTS", "sticky:shop/chat:idle"}).integer == 0);
}

TEST_CASE("shared table - after the events connection is killed, no stale route survives") {
  TempDir dir;
  RedisServer redis;
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3");
  ProxyConfig config = configOf(1, {stickyRoute("shop/chat", {b1.endpoint(), b2.endpoint()})});
  Replicas replicas(dir, config, redis, 2);
  std::map<std::string, std::string> where;
  for (int i = 0; i < 20; ++i) {
    std::string k = "p" + std::to_string(i);
    where[k] = via(replicas[0], k);
    CHECK(via(replicas[1], k) == where[k]);  // cached on replica 1
  }
  // Kill the subscribers, then move every session in Redis behind the replicas' backs while
  // replica 1 cannot hear about it (as if its events were lost).
  redis.command({"CLIENT", "KILL", "TYPE", "pubsub"});
  const std::string v1 = proxy::endpointValue(proxy::endpointId(b1.endpoint()));
  const std::string v2 = proxy::endpointValue(proxy::endpointId(b2.endpoint()));
  for (auto& [k, backend] : where) {
    redis.command({"SET", "sticky:shop/chat:" + k, backend == "b1" ? v2 : v1, "PX", "600000"});
    backend = backend == "b1" ? "b2" : "b1";
  }
  // Once resubscribed, replica 1 re-checks its recent entries against Redis within a round.
  CHECK(waitFor(
      [&] {
        for (auto& [k, backend] : where) {
          if (via(replicas[1], k) != backend) return false;
        }
        return true;
      },
      5s));
}

TEST_CASE("shared table - through Sentinel with AUTH, sessions survive a failover") {
  TempDir dir;
  RedisSentinelSet redis("s3cret");
  writeFile(dir.file("redis-password"), "s3cret\n");
  BackendProc b1(dir, "b1", "127.0.0.2"), b2(dir, "b2", "127.0.0.3"), b3(dir, "b3", "127.0.0.4");
  std::string sentinels;
  for (const auto& s : redis.sentinelAddresses()) sentinels += (sentinels.empty() ? "" : ",") + s;
  std::vector<std::string> args{"--redis-sentinels",     sentinels,
                                "--redis-master-name",   redis.masterName(),
                                "--redis-password-file", dir.file("redis-password"),
                                "--metrics-listen",      "127.0.0.1:0"};
  ProxyConfig config = threeBackends(b1, b2, b3, Placement::RoundRobin);
  std::vector<std::unique_ptr<ProxyProc>> proxies;
  for (int i = 0; i < 2; ++i) {
    proxies.push_back(std::make_unique<ProxyProc>(dir, config, args));
    REQUIRE(waitFor(
        [&] {
          return metricValue(proxies.back()->metricsPort(), "sticky_shared_table_connected") == 1;
        },
        15s));
  }
  std::map<std::string, std::string> where;
  for (int i = 0; i < 60; ++i) {
    std::string k = "s" + std::to_string(i);
    where[k] = via(*proxies[i % 2], k);
  }
  // Let the replica catch up, then lose the primary.
  REQUIRE(waitFor(
      [&] {
        return redisCommand(redis.primaryPort(), {"WAIT", "1", "1000"}, "", "s3cret").integer == 1;
      },
      10s));
  // Killing the primary drops every connection; each replica's three (its own, one per worker)
  // must come back, to the new primary.
  double connects[2];
  for (int i = 0; i < 2; ++i) {
    connects[i] = metricValue(proxies[i]->metricsPort(), "sticky_redis_connects_total");
  }
  redis.failover();
  REQUIRE(waitFor(
      [&] {
        for (int i = 0; i < 2; ++i) {
          uint16_t port = proxies[i]->metricsPort();
          if (metricValue(port, "sticky_redis_connects_total") < connects[i] + 3 ||
              metricValue(port, "sticky_shared_table_connected") != 1) {
            return false;
          }
        }
        return true;
      },
      30s));
  // A fresh replica knows nothing locally: every answer comes from the new primary.
  ProxyProc fresh(dir, config, args);
  REQUIRE(waitFor(
      [&] { return metricValue(fresh.metricsPort(), "sticky_shared_table_connected") == 1; }, 15s));
  for (auto& [k, backend] : where) {
    INFO("key " << k);
    CHECK(via(fresh, k) == backend);
    CHECK(via(*proxies[0], k) == backend);
  }
}

}  // namespace
}  // namespace sticky::test
