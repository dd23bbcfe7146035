// Fuzz target: the label selector parser (operator/src/controller/selector.h: Selector::fromJson
// of a StickyRoute's metav1.LabelSelector) and matching. The input is JSON: the selector, or
// {"selector": ..., "labels": ...} to match a pod's labels too.
//
// Invariants:
//  - nothing throws out of the parser or the matcher; a refusal says what is wrong;
//  - an accepted selector holds only what the API server would accept: valid keys and values,
//    values sorted and unique, In/NotIn with values and Exists/DoesNotExist without;
//  - matching a pod's labels as JSON and as a map agree; the empty selector matches everything.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "controller/selector.h"
#include "fuzz_check.h"

namespace {

using sticky::op::LabelRequirement;
using sticky::op::Selector;
using sticky::op::SelectorOperator;

void checkSelector(const Selector& s, const nlohmann::json& labels) {
  for (const LabelRequirement& r : s.requirements()) {
    FUZZ_CHECK(sticky::op::checkLabelKey(r.key).ok(), "an invalid key was accepted: " + r.key);
    for (const auto& v : r.values)
      FUZZ_CHECK(sticky::op::checkLabelValue(v).ok(), "an invalid value was accepted: " + v);
    FUZZ_CHECK(std::is_sorted(r.values.begin(), r.values.end()) &&
                   std::adjacent_find(r.values.begin(), r.values.end()) == r.values.end(),
               "values are not sorted and unique");
    bool set_op = r.op == SelectorOperator::In || r.op == SelectorOperator::NotIn;
    FUZZ_CHECK(set_op != r.values.empty(), "an operator with the wrong number of values");
  }
  if (s.requirements().empty()) {
    FUZZ_CHECK(s.toString().empty(), "the empty selector has text");
    FUZZ_CHECK(s.matches(labels), "the empty selector does not match");
  }
  sticky::op::Labels map;
  if (labels.is_object()) {
    for (const auto& [k, v] : labels.items())
      if (v.is_string()) map.emplace(k, v.get<std::string>());
  }
  FUZZ_CHECK(s.matches(labels) == s.matches(map), "matching JSON and a map disagree");
}

void checkInput(std::string_view text) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return;
  nlohmann::json selector = doc;
  nlohmann::json labels = nlohmann::json::object();
  if (doc.is_object() && doc.contains("selector")) {
    selector = doc["selector"];
    if (doc.contains("labels")) labels = doc["labels"];
  }
  auto parsed = Selector::fromJson(selector);
  if (!parsed) {
    FUZZ_CHECK(!parsed.error().message.empty(), "a refusal without a message");
    return;
  }
  checkSelector(*parsed, labels);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    checkInput(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, std::string("an exception escaped the selector: ") + e.what());
  }
  return 0;
}
