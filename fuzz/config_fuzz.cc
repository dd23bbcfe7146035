// Fuzz target: the proxy config reader (lib/config: parseProxyConfig, JSON or YAML by the first
// character, as `--config` and the admin API's PUT read it), and durations.
//
// Invariants:
//  - nothing throws out of the reader; a refused config says at least one thing, each with a
//    message;
//  - an accepted config passes validate(), and its JSON form (toJson, what the admin API's
//    GET /v1/config answers and the operator pushes) reads back to an equal config, in either
//    format the reader takes (JSON text, and the same text read as YAML);
//  - a duration that parses formats to text that parses to the same duration.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "config/proxy_config.h"
#include "config/reader.h"
#include "config/validate.h"
#include "fuzz_check.h"

namespace {

using sticky::ConfigFormat;

void checkRefusal(const sticky::ConfigErrors& errors) {
  FUZZ_CHECK(!errors.empty(), "a refused config without an error");
  for (const auto& e : errors) FUZZ_CHECK(!e.message.empty(), "an error without a message");
}

void checkConfig(std::string_view text) {
  auto parsed = sticky::parseProxyConfig(text);
  if (!parsed) {
    checkRefusal(parsed.error());
    return;
  }
  const sticky::ProxyConfig& config = *parsed;
  FUZZ_CHECK(sticky::validate(config).empty(), "an accepted config does not validate");
  std::string json = sticky::toJsonString(config);
  for (ConfigFormat format : {ConfigFormat::Json, ConfigFormat::Yaml}) {
    auto again = sticky::parseProxyConfig(json, format);
    FUZZ_CHECK(again.ok(), "the JSON form of an accepted config is refused: " + json + " -> " +
                               (again ? "" : sticky::describe(again.error())));
    FUZZ_CHECK(*again == config, "the JSON form reads back to another config: " + json);
  }
}

void checkDuration(std::string_view text) {
  auto d = sticky::parseDuration(text);
  if (!d) return;
  std::string formatted = sticky::formatDuration(*d);
  auto again = sticky::parseDuration(formatted);
  FUZZ_CHECK(again.ok() && *again == *d, "a formatted duration reads back differently: " +
                                             std::string(text) + " -> " + formatted);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    checkConfig(text);
    if (size <= 64) checkDuration(text);
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, std::string("an exception escaped the config reader: ") + e.what());
  }
  return 0;
}
