#include "config/json_reader.h"

#include <algorithm>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "config/schema.h"

namespace sticky {
namespace {

using nlohmann::json;

std::string joinNames(std::initializer_list<std::string_view> items) {
  std::string out;
  for (std::string_view s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

// Tracks JSON object keys while nlohmann parses, so a duplicated field is an error rather than
// silently overwritten.
class DuplicateKeyTracker {
 public:
  ConfigErrors errors;

  bool onEvent(json::parse_event_t event, const json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        enterValue();
        frames_.push_back({event == json::parse_event_t::array_start, -1, {}, {}});
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!frames_.empty()) frames_.pop_back();
        break;
      case json::parse_event_t::key:
        if (!frames_.empty() && parsed.is_string()) {
          Frame& top = frames_.back();
          top.key = parsed.get<std::string>();
          if (!top.keys.insert(top.key).second) {
            errors.push_back({path(), "duplicate field; set it once"});
          }
        }
        break;
      case json::parse_event_t::value:
        enterValue();
        break;
    }
    return true;
  }

 private:
  struct Frame {
    bool array;
    long index;
    std::string key;
    std::set<std::string> keys;
  };

  void enterValue() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
  }

  std::string path() const {
    std::string out;
    for (const Frame& f : frames_) {
      if (f.array) {
        // Appended piecewise: GCC 12 at -O3 reports a false -Wstringop-overflow for
        // "[" + std::to_string(...) (the release preset, make bench).
        out += '[';
        out += std::to_string(f.index);
        out += ']';
      } else {
        if (!out.empty()) out += ".";
        out += f.key;
      }
    }
    return out;
  }

  std::vector<Frame> frames_;
};

}  // namespace

Result<json, ConfigErrors> parseJsonText(std::string_view text) {
  DuplicateKeyTracker tracker;
  try {
    json j = json::parse(
        text.begin(), text.end(),
        [&tracker](int, json::parse_event_t event, json& parsed) {
          return tracker.onEvent(event, parsed);
        },
        /*allow_exceptions=*/true);
    if (!tracker.errors.empty()) return unexpected(std::move(tracker.errors));
    return j;
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix; keep its line and column.
    if (size_t close = what.find("] "); what.starts_with("[json.exception") && close != what.npos) {
      what = what.substr(close + 2);
    }
    return unexpected(
        ConfigErrors{{"", "invalid JSON: " + what + "; fix the syntax at that position"}});
  } catch (const json::exception& e) {
    return unexpected(ConfigErrors{{"", std::string("invalid JSON: ") + e.what()}});
  }
}

std::string UintRange::describe() const {
  if (max == std::numeric_limits<uint64_t>::max()) {
    if (min == 0) return "must be a non-negative integer";
    return "must be an integer >= " + std::to_string(min);
  }
  return "must be an integer between " + std::to_string(min) + " and " + std::to_string(max);
}

std::string quote(std::string_view s) {
  return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string_view typeName(const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "a list";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a number with a fraction";
    default:
      return "an unsupported value";
  }
}

std::string JsonReader::fieldPath(std::string_view path, std::string_view name) {
  std::string out(path);
  if (!out.empty()) out += '.';
  out += name;
  return out;
}

std::string JsonReader::indexPath(std::string_view path, size_t index) {
  return std::string(path) + "[" + std::to_string(index) + "]";
}

void JsonReader::fail(std::string path, std::string message) {
  bad_paths_.push_back(path);
  errors_.push_back({std::move(path), std::move(message)});
}

bool JsonReader::covered(std::string_view path) const {
  for (const std::string& bad : bad_paths_) {
    if (bad.empty()) return true;
    if (path.starts_with(bad) &&
        (path.size() == bad.size() || path[bad.size()] == '.' || path[bad.size()] == '[')) {
      return true;
    }
  }
  return false;
}

bool JsonReader::object(const json& j, const std::string& path, std::string_view example) {
  if (j.is_object()) return true;
  std::string shape = example.empty() ? "an object" : "an object (" + std::string(example) + ")";
  fail(path, "must be " + shape + ", not " + std::string(typeName(j)));
  return false;
}

void JsonReader::knownFields(const json& obj, const std::string& path,
                             std::initializer_list<std::string_view> known) {
  if (!obj.is_object()) return;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string& key = it.key();
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      fail(fieldPath(path, key),
           "unknown field; check its spelling or remove it (known fields here: " +
               joinNames(known) + ")");
    }
  }
}

bool JsonReader::list(const json& j, const std::string& path, std::string_view of) {
  if (j.is_array()) return true;
  fail(path, "must be a list of " + std::string(of) + ", not " + std::string(typeName(j)));
  return false;
}

const json* JsonReader::optional(const json& obj, std::string_view name) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

const json* JsonReader::required(const json& obj, const std::string& path, std::string_view name,
                                 std::string_view hint) {
  const json* v = optional(obj, name);
  if (!v) {
    fail(fieldPath(path, name),
         hint.empty() ? std::string("is required") : "is required; set it to " + std::string(hint));
  }
  return v;
}

bool JsonReader::readString(const json& v, const std::string& path, std::string& out) {
  if (!v.is_string()) {
    fail(path, "must be a string, not " + std::string(typeName(v)));
    return false;
  }
  out = v.get_ref<const std::string&>();
  return true;
}

bool JsonReader::readBool(const json& v, const std::string& path, bool& out) {
  if (!v.is_boolean()) {
    fail(path, "must be true or false, not " + std::string(typeName(v)));
    return false;
  }
  out = v.get<bool>();
  return true;
}

bool JsonReader::readUint(const json& v, const std::string& path, UintRange range, uint64_t& out) {
  uint64_t value = 0;
  // Parsed text gives unsigned numbers; a json built in code may hold signed ones.
  if (v.is_number_unsigned()) {
    value = v.get<uint64_t>();
  } else if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    value = static_cast<uint64_t>(v.get<int64_t>());
  } else {
    fail(path,
         range.describe() + ", not " +
             (v.is_number_integer() ? std::string("a negative number") : std::string(typeName(v))));
    return false;
  }
  if (!range.contains(value)) {
    fail(path, range.describe() + ", not " + std::to_string(value));
    return false;
  }
  out = value;
  return true;
}

bool JsonReader::readDuration(const json& v, const std::string& path, Duration& out) {
  if (!v.is_string()) {
    fail(path, "must be a duration string " + std::string(schema::kDurationHint) + ", not " +
                   std::string(typeName(v)));
    return false;
  }
  auto d = parseDuration(v.get_ref<const std::string&>());
  if (!d) {
    fail(path, d.error().message);
    return false;
  }
  out = *d;
  return true;
}

std::optional<size_t> JsonReader::readChoice(const json& v, const std::string& path,
                                             std::span<const std::string_view> names) {
  std::string options;
  for (std::string_view name : names) {
    if (!options.empty()) options += ", ";
    options += name;
  }
  if (!v.is_string()) {
    fail(path, "must be one of " + options + ", not " + std::string(typeName(v)));
    return std::nullopt;
  }
  const auto& s = v.get_ref<const std::string&>();
  for (size_t i = 0; i < names.size(); ++i) {
    if (s == names[i]) return i;
  }
  fail(path, "must be one of " + options + ", not " + quote(s));
  return std::nullopt;
}

bool JsonReader::readStringList(const json& v, const std::string& path,
                                std::vector<std::string>& out) {
  if (!list(v, path, "strings")) return false;
  out.clear();
  bool all = true;
  for (size_t i = 0; i < v.size(); ++i) {
    const json& item = v[i];
    if (!item.is_string()) {
      fail(indexPath(path, i), "must be a string, not " + std::string(typeName(item)));
      all = false;
      continue;
    }
    out.push_back(item.get_ref<const std::string&>());
  }
  return all;
}

}  // namespace sticky
