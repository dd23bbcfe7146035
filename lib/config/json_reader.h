#pragma once
// JsonReader: the one way this project reads a parsed JSON document into C++ values (the proxy
// config, the admin API's answers). Every problem becomes a ConfigError located by its field path
// ("routes[0].endpoints[2].port") and saying what was expected and what was there; reading goes
// on after a problem, so a caller reports every problem at once. Nothing here throws.
//
//   JsonReader r;
//   EndpointConfig e;
//   if (r.object(j, "endpoints[0]", "such as {name: chat-0, port: 8080}")) {
//     if (const json* v = r.required(j, "endpoints[0]", "port", "the port, such as 8080"))
//       r.readUintAs(*v, "endpoints[0].port", UintRange{1, 65535}, e.port);
//   }
//   if (!r.ok()) return unexpected(r.takeErrors());
//
//   {"port": 70000} -> "endpoints[0].port: must be an integer between 1 and 65535, not 70000"
//   {}              -> "endpoints[0].port: is required; set it to the port, such as 8080"
//
// A null field counts as absent, as in Kubernetes ("not set").

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"
#include "config/duration.h"
#include "config/errors.h"

namespace sticky {

/// An inclusive range of unsigned integers.
struct UintRange {
  uint64_t min = 0;
  uint64_t max = std::numeric_limits<uint64_t>::max();

  constexpr bool contains(uint64_t v) const { return v >= min && v <= max; }
  /// "must be a non-negative integer", "must be an integer >= 1",
  /// "must be an integer between 1 and 65535".
  std::string describe() const;
};

/// `text` as a message shows a value: JSON-quoted, invalid UTF-8 replaced. abc -> "abc"
std::string quote(std::string_view text);
/// What `j` is, for "must be X, not <typeName>": "a string", "a list", "an object", "null", ...
std::string_view typeName(const nlohmann::json& j);

/// Parses JSON text; a field given twice in one object is an error (not silently the last one).
/// Errors: the syntax error with its line and column, or each duplicated field's path.
Result<nlohmann::json, ConfigErrors> parseJsonText(std::string_view text);

class JsonReader {
 public:
  /// "routes" + "ttl" -> "routes.ttl"; "" + "ttl" -> "ttl".
  static std::string fieldPath(std::string_view path, std::string_view name);
  /// "routes" + 3 -> "routes[3]".
  static std::string indexPath(std::string_view path, size_t index);

  /// Records a problem at `path`.
  void fail(std::string path, std::string message);
  bool ok() const { return errors_.empty(); }
  const ConfigErrors& errors() const { return errors_; }
  ConfigErrors takeErrors() { return std::move(errors_); }
  /// True if `path` is at or under a path where reading failed: a later semantic check of the
  /// same field would only repeat the problem. "" covers everything.
  bool covered(std::string_view path) const;

  /// Checks that `j` is an object. `example` (may be empty) shows one, e.g. "such as {port: 80}".
  bool object(const nlohmann::json& j, const std::string& path, std::string_view example = {});
  /// Reports every field of object `obj` not in `known` (a misspelling, usually).
  void knownFields(const nlohmann::json& obj, const std::string& path,
                   std::initializer_list<std::string_view> known);
  /// Checks that `j` is a list; `of` says of what: "routes" -> "must be a list of routes, not ..".
  bool list(const nlohmann::json& j, const std::string& path, std::string_view of);

  /// Field `name` of object `obj`, or nullptr when absent or null.
  static const nlohmann::json* optional(const nlohmann::json& obj, std::string_view name);
  /// Like optional(), but absence is a problem: "is required; set it to <hint>" (or just
  /// "is required" when `hint` is empty). `path` is the object's path.
  const nlohmann::json* required(const nlohmann::json& obj, const std::string& path,
                                 std::string_view name, std::string_view hint = {});

  // Typed reads of one value at `path`. On a problem: record it, leave `out` as it was, return
  // false.
  bool readString(const nlohmann::json& v, const std::string& path, std::string& out);
  bool readBool(const nlohmann::json& v, const std::string& path, bool& out);
  bool readUint(const nlohmann::json& v, const std::string& path, UintRange range, uint64_t& out);
  template <class T>
  bool readUintAs(const nlohmann::json& v, const std::string& path, UintRange range, T& out) {
    uint64_t value = 0;
    if (!readUint(v, path, range, value)) return false;
    out = static_cast<T>(value);  // the range keeps it within T
    return true;
  }
  /// A duration string, see parseDuration().
  bool readDuration(const nlohmann::json& v, const std::string& path, Duration& out);
  /// One of `names`; returns its index.
  std::optional<size_t> readChoice(const nlohmann::json& v, const std::string& path,
                                   std::span<const std::string_view> names);
  /// One of `values`, written as toString(value).
  template <class E, size_t N>
  bool readEnum(const nlohmann::json& v, const std::string& path, const std::array<E, N>& values,
                E& out) {
    std::array<std::string_view, N> names;
    for (size_t i = 0; i < N; ++i) names[i] = toString(values[i]);
    auto index = readChoice(v, path, names);
    if (!index) return false;
    out = values[*index];
    return true;
  }
  /// A list of strings; a non-string item is a problem at "path[i]" and is left out.
  bool readStringList(const nlohmann::json& v, const std::string& path,
                      std::vector<std::string>& out);

 private:
  ConfigErrors errors_;
  std::vector<std::string> bad_paths_;  // where reading failed
};

}  // namespace sticky
