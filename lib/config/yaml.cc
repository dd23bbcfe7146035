// YAML -> JSON, so YAML and JSON configs share one reading path. Scalars resolve as the YAML 1.2
// core schema says (unquoted 8080 is an integer, "8080" a string); yaml-cpp's exceptions stop
// here and become ConfigErrors.

#include "config/yaml.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

namespace sticky {
namespace {

using nlohmann::json;

// YAML 1.2 core schema resolution of a plain (unquoted) scalar.
json yamlPlainScalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(b + 2, e, v, s[1] == 'x' ? 16 : 8);
    if (ec == std::errc() && p == e) return v;
    return s;
  }
  {
    const char* digits = (s[0] == '+' || s[0] == '-') ? b + 1 : b;
    bool all_digits =
        digits < e && std::all_of(digits, e, [](char c) { return c >= '0' && c <= '9'; });
    if (all_digits) {
      if (s[0] == '-') {
        int64_t v = 0;
        auto [p, ec] = std::from_chars(b, e, v);
        if (ec == std::errc() && p == e) return v;
      } else {
        uint64_t v = 0;
        auto [p, ec] = std::from_chars(digits, e, v);
        if (ec == std::errc() && p == e) return v;
      }
      return s;  // out of range: left as a string, so the field reports a type error
    }
  }
  if (s == ".inf" || s == ".Inf" || s == ".INF" || s == "+.inf" || s == "-.inf" || s == ".nan" ||
      s == ".NaN" || s == ".NAN") {
    return s;  // not representable in JSON; no field of ours takes a float anyway
  }
  // Floats: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
  {
    size_t i = 0;
    if (s[i] == '+' || s[i] == '-') ++i;
    size_t int_digits = 0, frac_digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++int_digits;
    bool dot = i < s.size() && s[i] == '.';
    if (dot) {
      ++i;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++frac_digits;
    }
    bool ok = int_digits > 0 || frac_digits > 0;
    if (ok && i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
      ++i;
      if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
      size_t exp_digits = 0;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++exp_digits;
      ok = exp_digits > 0;
    }
    if (ok && i == s.size()) {
      char* end = nullptr;
      double d = std::strtod(s.c_str(), &end);
      if (end == s.c_str() + s.size() && std::isfinite(d)) return d;
    }
  }
  return s;
}

// True if `s` is well-formed UTF-8 (RFC 3629: shortest forms, no surrogates, <= U+10FFFF).
bool validUtf8(std::string_view s) {
  static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t more = c < 0x80             ? 0
                  : (c & 0xe0) == 0xc0 ? 1
                  : (c & 0xf0) == 0xe0 ? 2
                  : (c & 0xf8) == 0xf0 ? 3
                                       : 4;
    if (more == 4 || more >= s.size() - i) return false;
    uint32_t cp = c & (0x7fu >> more);
    for (size_t k = 1; k <= more; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    if (cp < kMin[more] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += more + 1;
  }
  return true;
}

std::string yamlWhere(const YAML::Mark& mark) {
  return "line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1);
}

// Deeper than any config: an alias inside its own anchor (`a: &x [*x]`) makes a YAML tree
// endless (found by fuzz/config_fuzz.cc: a stack overflow).
constexpr int kMaxYamlDepth = 64;

// Converts a YAML tree to JSON. Errors (duplicate or non-scalar keys) carry the line.
json yamlToJson(const YAML::Node& node, const std::string& path, ConfigErrors& errors,
                int depth = 0) {
  if (depth > kMaxYamlDepth) {
    errors.push_back({path, "is nested more than " + std::to_string(kMaxYamlDepth) +
                                " levels deep (at " + yamlWhere(node.Mark()) +
                                "), or holds an alias of itself; flatten it"});
    return nullptr;
  }
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Scalar: {
      const std::string& tag = node.Tag();
      const std::string& s = node.Scalar();
      // JSON text must be UTF-8 and the config's JSON form (GET /v1/config, what the operator
      // pushes) could not hold anything else: refused here as the JSON reader refuses it
      // (found by fuzz/config_fuzz.cc).
      if (!validUtf8(s)) {
        errors.push_back({path, "is not valid UTF-8 (at " + yamlWhere(node.Mark()) +
                                    "); write it as UTF-8 text"});
        return nullptr;
      }
      if (tag == "!" || tag == "tag:yaml.org,2002:str") return s;  // quoted or !!str
      return yamlPlainScalar(s);
    }
    case YAML::NodeType::Sequence: {
      json arr = json::array();
      size_t i = 0;
      for (const auto& entry : node) {
        const YAML::Node& item = entry;  // the iterator's value, alive for this pass
        arr.push_back(yamlToJson(item, path + "[" + std::to_string(i) + "]", errors, depth + 1));
        ++i;
      }
      return arr;
    }
    case YAML::NodeType::Map: {
      json obj = json::object();
      for (const auto& entry : node) {
        // Copies: the iterator's pair is a temporary, references into it would dangle.
        const YAML::Node k = entry.first;
        const YAML::Node v = entry.second;
        if (!k.IsScalar()) {
          errors.push_back({path, "a field name must be a plain string (at " + yamlWhere(k.Mark()) +
                                      "); fix the YAML there"});
          continue;
        }
        const std::string& key = k.Scalar();
        if (!validUtf8(key)) {
          errors.push_back({path, "a field name is not valid UTF-8 (at " + yamlWhere(k.Mark()) +
                                      "); write it as UTF-8 text"});
          continue;
        }
        std::string child = path.empty() ? key : path + "." + key;
        if (obj.contains(key)) {
          errors.push_back(
              {child, "duplicate field (at " + yamlWhere(k.Mark()) + "); set it once"});
          continue;
        }
        obj[key] = yamlToJson(v, child, errors, depth + 1);
      }
      return obj;
    }
  }
  return nullptr;
}

}  // namespace

Result<json, ConfigErrors> parseYamlText(std::string_view text) {
  try {
    YAML::Node root = YAML::Load(std::string(text));
    ConfigErrors errors;
    json j = yamlToJson(root, "", errors);
    if (!errors.empty()) return unexpected(std::move(errors));
    return j;
  } catch (const YAML::Exception& e) {
    std::string where = e.mark.is_null() ? std::string() : " at " + yamlWhere(e.mark);
    return unexpected(
        ConfigErrors{{"", "invalid YAML" + where + ": " + e.msg + "; fix the syntax there"}});
  }
}

}  // namespace sticky
