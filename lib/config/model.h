#pragma once
// The proxy's configuration model: the one schema that the proxy reads (static file, admin
// socket) and the operator generates, with its JSON form. Reading is in config/reader.h, the
// semantic checks in config/validate.h.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "config/duration.h"

namespace sticky {

enum class Placement { LeastSessions, ConsistentHash, RoundRobin };
enum class OnMissingKey { Balance, Reject };
enum class OnEndpointLost { Reassign, Reject };
enum class EndpointState { Active, Draining };

std::string_view toString(Placement p);
std::string_view toString(OnMissingKey m);
std::string_view toString(OnEndpointLost l);
std::string_view toString(EndpointState s);

struct EndpointConfig {
  std::string name;     // e.g. the pod name; unique within its route
  std::string address;  // IPv4 or IPv6 literal (no DNS names on the data path)
  uint16_t port = 0;
  EndpointState state = EndpointState::Active;

  bool operator==(const EndpointConfig&) const = default;
};

struct RouteMatch {
  std::vector<std::string> hosts;  // empty = any host; lower-cased; "*.example.com" wildcard
  std::string path_prefix = "/";

  bool operator==(const RouteMatch&) const = default;
};

struct RouteConfig {
  std::string name;  // "namespace/name"
  RouteMatch match;
  std::string header;  // session key header, stored lower-case
  Duration ttl = std::chrono::minutes(30);
  uint64_t max_sessions = 100000;
  Placement placement = Placement::LeastSessions;
  OnMissingKey on_missing_key = OnMissingKey::Balance;
  OnEndpointLost on_endpoint_lost = OnEndpointLost::Reassign;
  std::vector<EndpointConfig> endpoints;

  bool operator==(const RouteConfig&) const = default;
};

/// Limits and timeouts of the forwarding path. Every one has a default a user can rely on.
struct Limits {
  uint32_t max_header_bytes = 32 * 1024;  // request line + all header fields
  uint32_t max_header_count = 100;
  Duration client_header_timeout = std::chrono::seconds(10);    // to read a request's head
  Duration keep_alive_idle_timeout = std::chrono::seconds(60);  // between client requests
  Duration upstream_connect_timeout = std::chrono::seconds(2);
  Duration upstream_response_timeout = std::chrono::seconds(60);  // to the response head
  Duration endpoint_down_period = std::chrono::seconds(10);       // after a refused/reset connect
  Duration drain_timeout = std::chrono::seconds(30);              // SIGTERM: finish in-flight
  uint32_t upstream_max_idle_per_endpoint = 64;                   // pooled keep-alive connections
  // Overload and slow peers (docs/security.md). Each idle timeout counts from the last byte
  // that moved, not from the start of the transfer.
  uint32_t max_connections = 10000;  // client connections open at once, all workers together
  Duration client_body_timeout = std::chrono::seconds(60);    // no request body byte: 408
  Duration client_send_timeout = std::chrono::seconds(60);    // client takes no byte: close
  Duration upstream_read_timeout = std::chrono::seconds(60);  // no response body byte: cut
  Duration tunnel_idle_timeout = std::chrono::hours(1);       // no byte either way: close both

  bool operator==(const Limits&) const = default;
};

/// Names of the headers that announce a moved session.
struct HeaderNames {
  /// Added to the request sent to the new endpoint; value: the previous endpoint's name.
  std::string moved_from = "x-sticky-moved-from";
  /// Added to the response to the client (and to a Reject 503); value: previous endpoint name.
  std::string session_moved = "x-sticky-session-moved";

  bool operator==(const HeaderNames&) const = default;
};

/// The Redis behind the shared stick table (sharedTable.redis): one primary by address, or the
/// primary a set of Sentinels names. Fixed for the life of the process (flags or static file).
struct RedisConfig {
  std::string address;                 // "host:port" of the primary; empty with sentinels
  std::vector<std::string> sentinels;  // "host:port" of each Sentinel; empty with address
  std::string master_name;             // with sentinels: the name they monitor the primary as
  std::string username;                // AUTH user; empty: the default user
  std::string password_file;           // a file holding the password; empty: no AUTH
  bool tls = false;                    // TLS to the primary and to the sentinels
  std::string ca_file;                 // with tls: PEM CA bundle; empty: the system's CAs
  std::string server_name;             // with tls: SNI and name verified; empty: address host
  bool insecure_skip_verify = false;   // with tls: no certificate check (for tests only)
  std::string cert_file;               // with tls: client certificate (PEM), with key_file
  std::string key_file;                // with tls: its private key (PEM)
  std::string key_prefix = "sticky:";  // every key and the events channel start with it
  Duration connect_timeout = std::chrono::milliseconds(500);
  Duration command_timeout = std::chrono::milliseconds(100);  // then the request goes on locally

  bool operator==(const RedisConfig&) const = default;
};

/// Where the stick table lives beyond this process. No redis: in memory only, as before.
struct SharedTableConfig {
  std::optional<RedisConfig> redis;

  bool enabled() const { return redis.has_value(); }
  bool operator==(const SharedTableConfig&) const = default;
};

struct ProxyConfig {
  uint64_t version = 0;  // set by whoever generates the config; reported back in stats
  std::string listen;    // "host:port"; empty = the proxy's --listen flag
  Limits limits;
  HeaderNames headers;
  /// Empty = what the proxy was started with (flags or static file); a pushed config may not
  /// change it (Server::apply refuses, as for listen).
  SharedTableConfig shared_table;
  std::vector<RouteConfig> routes;

  bool operator==(const ProxyConfig&) const = default;
};

/// ProxyConfig::version as both binaries print it (logs, admin errors, the proxy's
/// `sticky_config_info{hash}`): 16 lowercase hex digits, zero-padded. The operator's versions are
/// 64-bit hashes, which a float (a Prometheus sample value) would round.
///   configVersionHex(0x2a) -> "000000000000002a"
std::string configVersionHex(uint64_t version);

/// Lower-cases what is case-insensitive (header names, hosts), as parsing does; Router::build
/// applies it too, so a config built in code may use any case.
void normalize(ProxyConfig& config);

/// The JSON form (the admin API's PUT /v1/config body); proxyConfigFromJson() reads it back to an
/// equal config.
nlohmann::json toJson(const ProxyConfig& config);
std::string toJsonString(const ProxyConfig& config, int indent = -1);

}  // namespace sticky
