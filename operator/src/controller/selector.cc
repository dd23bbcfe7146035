#include "controller/selector.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace sticky::op {
namespace {

bool isAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// The "qualified name" part: at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends.
Result<Ok> checkName(std::string_view name, std::string_view what) {
  if (name.empty()) return fail(std::string(what) + " must not be empty");
  if (name.size() > 63) return fail(std::string(what) + " must be at most 63 characters");
  if (!isAlnum(name.front()) || !isAlnum(name.back())) {
    return fail(std::string(what) + " must start and end with a letter or digit");
  }
  for (char c : name) {
    if (!isAlnum(c) && c != '-' && c != '_' && c != '.') {
      return fail(std::string(what) + " may contain only letters, digits, '-', '_' and '.'");
    }
  }
  return Ok{};
}

// RFC 1123 DNS subdomain: lower-case labels of [a-z0-9-] joined by dots, at most 253 characters.
Result<Ok> checkDnsSubdomain(std::string_view s) {
  if (s.empty() || s.size() > 253)
    return fail("prefix must be a DNS subdomain of 1-253 characters");
  size_t start = 0;
  while (start <= s.size()) {
    size_t dot = s.find('.', start);
    std::string_view label = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (label.empty() || label.size() > 63)
      return fail("prefix must be a DNS subdomain (bad label)");
    for (char c : label) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) return fail("prefix must be a lower-case DNS subdomain");
    }
    if (label.front() == '-' || label.back() == '-') {
      return fail("prefix labels must not start or end with '-'");
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return Ok{};
}

std::string describe(std::string_view key, const std::string& problem) {
  return "label key \"" + std::string(key) + "\": " + problem;
}

Result<SelectorOperator> parseOperator(const std::string& s) {
  if (s == "In") return SelectorOperator::In;
  if (s == "NotIn") return SelectorOperator::NotIn;
  if (s == "Exists") return SelectorOperator::Exists;
  if (s == "DoesNotExist") return SelectorOperator::DoesNotExist;
  return fail("unknown operator \"" + s + "\" (use In, NotIn, Exists or DoesNotExist)");
}

std::string_view operatorText(SelectorOperator op) {
  switch (op) {
    case SelectorOperator::In:
      return "in";
    case SelectorOperator::NotIn:
      return "notin";
    case SelectorOperator::Exists:
      return "";
    case SelectorOperator::DoesNotExist:
      return "!";
  }
  return "";
}

bool matchesOne(const LabelRequirement& r, const Labels& labels) {
  auto it = labels.find(r.key);
  bool has = it != labels.end();
  auto contains = [&](const std::string& v) {
    return std::binary_search(r.values.begin(), r.values.end(), v);
  };
  switch (r.op) {
    case SelectorOperator::In:
      return has && contains(it->second);
    case SelectorOperator::NotIn:
      return !has || !contains(it->second);
    case SelectorOperator::Exists:
      return has;
    case SelectorOperator::DoesNotExist:
      return !has;
  }
  return false;
}

}  // namespace

Result<Ok> checkLabelKey(std::string_view key) {
  if (key.empty()) return fail("must not be empty");
  size_t slash = key.find('/');
  if (slash == std::string_view::npos) return checkName(key, "name");
  if (key.find('/', slash + 1) != std::string_view::npos) {
    return fail("must contain at most one '/'");
  }
  if (auto prefix = checkDnsSubdomain(key.substr(0, slash)); !prefix) return prefix;
  return checkName(key.substr(slash + 1), "name part");
}

Result<Ok> checkLabelValue(std::string_view value) {
  if (value.empty()) return Ok{};
  return checkName(value, "value");
}

Result<Selector> Selector::fromJson(const nlohmann::json& j) {
  if (!j.is_object()) return fail("selector must be an object with matchLabels/matchExpressions");
  Selector s;
  std::vector<LabelRequirement> from_labels;
  if (auto it = j.find("matchLabels"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return fail("selector.matchLabels must be an object of strings");
    for (const auto& [key, value] : it->items()) {
      if (auto p = checkLabelKey(key); !p) {
        return fail("selector.matchLabels: " + describe(key, p.error().message));
      }
      if (!value.is_string()) {
        return fail("selector.matchLabels[" + key + "]: value must be a string");
      }
      const auto& v = value.get_ref<const std::string&>();
      if (auto p = checkLabelValue(v); !p) {
        return fail("selector.matchLabels[" + key + "]: " + p.error().message);
      }
      from_labels.push_back({key, SelectorOperator::In, {v}});
    }
  }
  std::vector<LabelRequirement> from_exprs;
  if (auto it = j.find("matchExpressions"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return fail("selector.matchExpressions must be a list");
    for (size_t i = 0; i < it->size(); ++i) {
      const auto& e = (*it)[i];
      std::string where = "selector.matchExpressions[" + std::to_string(i) + "]";
      if (!e.is_object()) return fail(where + " must be an object with key and operator");
      auto key_it = e.find("key");
      if (key_it == e.end() || !key_it->is_string()) return fail(where + ".key is required");
      const auto& key = key_it->get_ref<const std::string&>();
      if (auto p = checkLabelKey(key); !p) {
        return fail(where + ": " + describe(key, p.error().message));
      }
      auto op_it = e.find("operator");
      if (op_it == e.end() || !op_it->is_string()) return fail(where + ".operator is required");
      auto op = parseOperator(op_it->get<std::string>());
      if (!op) return fail(where + ": " + op.error().message);
      LabelRequirement r{key, *op, {}};
      if (auto v_it = e.find("values"); v_it != e.end() && !v_it->is_null()) {
        if (!v_it->is_array()) return fail(where + ".values must be a list of strings");
        for (const auto& v : *v_it) {
          if (!v.is_string()) return fail(where + ".values must be a list of strings");
          const auto& text = v.get_ref<const std::string&>();
          if (auto p = checkLabelValue(text); !p) {
            return fail(where + ".values: " + p.error().message);
          }
          r.values.push_back(text);
        }
      }
      bool set_op = r.op == SelectorOperator::In || r.op == SelectorOperator::NotIn;
      if (set_op && r.values.empty()) {
        return fail(where + ": operator " + op_it->get<std::string>() +
                    " needs at least one value");
      }
      if (!set_op && !r.values.empty()) {
        return fail(where + ": operator " + op_it->get<std::string>() + " takes no values");
      }
      std::sort(r.values.begin(), r.values.end());
      r.values.erase(std::unique(r.values.begin(), r.values.end()), r.values.end());
      from_exprs.push_back(std::move(r));
    }
  }
  auto by_key = [](const LabelRequirement& a, const LabelRequirement& b) { return a.key < b.key; };
  std::stable_sort(from_labels.begin(), from_labels.end(), by_key);
  std::stable_sort(from_exprs.begin(), from_exprs.end(), by_key);
  s.requirements_ = std::move(from_labels);
  s.requirements_.insert(s.requirements_.end(), from_exprs.begin(), from_exprs.end());
  return s;
}

bool Selector::matches(const Labels& labels) const {
  return std::all_of(requirements_.begin(), requirements_.end(),
                     [&](const LabelRequirement& r) { return matchesOne(r, labels); });
}

bool Selector::matches(const nlohmann::json& labels) const {
  Labels l;
  if (labels.is_object()) {
    for (const auto& [k, v] : labels.items()) {
      if (v.is_string()) l.emplace(k, v.get<std::string>());
    }
  }
  return matches(l);
}

std::string Selector::toString() const {
  std::string out;
  for (const auto& r : requirements_) {
    if (!out.empty()) out += ',';
    switch (r.op) {
      case SelectorOperator::Exists:
        out += r.key;
        break;
      case SelectorOperator::DoesNotExist:
        out += "!" + r.key;
        break;
      case SelectorOperator::In:
      case SelectorOperator::NotIn: {
        if (r.op == SelectorOperator::In && r.values.size() == 1) {
          out += r.key + "=" + r.values.front();
          break;
        }
        out += r.key + " " + std::string(operatorText(r.op)) + " (";
        for (size_t i = 0; i < r.values.size(); ++i) out += (i ? "," : "") + r.values[i];
        out += ")";
        break;
      }
    }
  }
  return out;
}

}  // namespace sticky::op
