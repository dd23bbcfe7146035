// Fuzz target: the admin protocol's readers (lib/admin_api: what the operator's AdminClient
// makes of the proxy's answers), fed any body a proxy, or something pretending to be one, could
// send back.
//
// Invariants:
//  - nothing throws out of the readers;
//  - a document a reader accepts, written again by the server side's toJson, reads back to an
//    equal value (stats, session dumps, applied, evicted): server and client agree on the shape;
//  - errorMessageFromBody always says something (the fallback at worst);
//  - configErrorsFromBody(errorsToJson(errors)) gives back the errors it read.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "admin_api/admin_api.h"
#include "fuzz_check.h"

namespace {

namespace admin = sticky::admin;

// The JSON text of `j` as the admin server sends it (invalid UTF-8 replaced, never a throw).
std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void checkBody(std::string_view body) {
  std::string message = admin::errorMessageFromBody(body, "fallback");
  FUZZ_CHECK(!message.empty(), "errorMessageFromBody said nothing");
  sticky::ConfigErrors errors = admin::configErrorsFromBody(body);
  if (!errors.empty()) {
    auto again = admin::configErrorsFromBody(dump(admin::errorsToJson(errors)));
    FUZZ_CHECK(again.size() == errors.size(), "errors written again read back to another count");
  }

  auto parsed = admin::parseJson(body);
  if (!parsed) return;
  const nlohmann::json& j = *parsed;
  if (auto stats = admin::statsFromJson(j)) {
    auto again = admin::statsFromJson(admin::toJson(*stats));
    FUZZ_CHECK(again.ok() && *again == *stats, "stats written again read back differently");
  }
  if (auto sessions = admin::sessionDumpFromJson(j)) {
    auto again = admin::sessionDumpFromJson(admin::toJson(*sessions));
    FUZZ_CHECK(again.ok() && *again == *sessions, "a session dump read back differently");
  }
  if (auto applied = admin::appliedFromJson(j)) {
    auto again = admin::appliedFromJson(admin::toJson(*applied));
    FUZZ_CHECK(again.ok() && again->version == applied->version, "applied read back differently");
  }
  if (auto evicted = admin::evictedFromJson(j)) {
    auto again = admin::evictedFromJson(admin::toJson(*evicted));
    FUZZ_CHECK(again.ok() && again->evicted == evicted->evicted, "evicted read back differently");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  try {
    checkBody(body);
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, std::string("an exception escaped the admin API readers: ") + e.what());
  }
  return 0;
}
