#pragma once
// YAML text -> JSON tree: the config reader then reads JSON only, one code path for both.
//
//   "port: 8080\nhost: '8080'" -> {"port": 8080, "host": "8080"}   (YAML 1.2 core schema)
//   "a: 1\na: 2"               -> error at "a": duplicate field (at line 2, column 1)

#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"
#include "config/errors.h"

namespace sticky {

/// Parses YAML into JSON without throwing. A field given twice, a non-scalar key or a syntax
/// error is an error carrying its line and column.
Result<nlohmann::json, ConfigErrors> parseYamlText(std::string_view text);

}  // namespace sticky
