#pragma once
// Reading a proxy config from text (JSON or YAML) or from a parsed JSON tree: the model filled
// in, normalized (normalize()) and validated (validate()). On failure, every problem found, not
// just the first, each with its field path.
//
//   parseProxyConfig("routes: [{name: shop/chat, header: Client-ID}]")
//     -> ok, routes[0].header == "client-id"
//   parseProxyConfig("routes: [{name: shop/chat, ttl: 30}]")
//     -> {"routes[0].header", "is required; set it to the session key header, ..."},
//        {"routes[0].ttl", "must be a duration string such as \"30m\", ..., not an integer"}

#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"
#include "config/errors.h"
#include "config/model.h"

namespace sticky {

enum class ConfigFormat { Auto, Json, Yaml };  // Auto: JSON if the text starts with '{'

/// Parses and validates. On failure, returns every error found (not just the first).
Result<ProxyConfig, ConfigErrors> parseProxyConfig(std::string_view text,
                                                   ConfigFormat format = ConfigFormat::Auto);
/// Reads and validates a parsed JSON tree (the admin API's PUT body). Unknown fields are errors.
Result<ProxyConfig, ConfigErrors> proxyConfigFromJson(const nlohmann::json& j);

}  // namespace sticky
