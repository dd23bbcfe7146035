#pragma once
// A Kubernetes LabelSelector (metav1.LabelSelector): matchLabels and matchExpressions with the
// operators In, NotIn, Exists and DoesNotExist, parsed from its JSON form and checked the way the
// API server checks one, so a bad selector is reported instead of silently matching nothing.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"

namespace sticky::op {

using Labels = std::map<std::string, std::string, std::less<>>;

enum class SelectorOperator { In, NotIn, Exists, DoesNotExist };

struct LabelRequirement {
  std::string key;
  SelectorOperator op = SelectorOperator::Exists;
  std::vector<std::string> values;  // sorted, unique; empty for Exists/DoesNotExist

  bool operator==(const LabelRequirement&) const = default;
};

class Selector {
 public:
  /// Parses {matchLabels: {...}, matchExpressions: [{key, operator, values}]}. An empty selector
  /// ({}) matches every pod, as in Kubernetes. Errors name the offending field.
  static Result<Selector> fromJson(const nlohmann::json& j);

  bool matches(const Labels& labels) const;
  /// `labels` is a pod's metadata.labels (an object of strings; null or absent = no labels).
  bool matches(const nlohmann::json& labels) const;

  /// All requirements, matchLabels first (as key In [value]), each group sorted by key.
  const std::vector<LabelRequirement>& requirements() const { return requirements_; }
  /// A canonical text form such as "app=chat,tier in (a,b),!legacy".
  std::string toString() const;

  bool operator==(const Selector&) const = default;

 private:
  std::vector<LabelRequirement> requirements_;
};

/// Kubernetes label key syntax: optional DNS-subdomain prefix and '/', then a name of at most 63
/// characters of [A-Za-z0-9-_.], starting and ending alphanumeric. The error says what is wrong.
Result<Ok> checkLabelKey(std::string_view key);
/// Kubernetes label value syntax (empty allowed); the error says what is wrong.
Result<Ok> checkLabelValue(std::string_view value);

}  // namespace sticky::op
