#pragma once
// The proxy config library's public API in one include: the one schema that the proxy reads
// (static file, admin socket) and the operator generates. Parsing and validation live here and
// nowhere else. The pieces:
//
//   config/model.h        the model (ProxyConfig, RouteConfig, ...), normalize(), toJson()
//   config/duration.h     parseDuration(), formatDuration()
//   config/errors.h       ConfigError(s) with field paths, describe()
//   config/reader.h       parseProxyConfig(), proxyConfigFromJson()
//   config/validate.h     validate(), validateRoute(), validateEndpoint(), isHeaderToken()
//   config/json_reader.h  JsonReader: typed reads from JSON with path-carrying errors
//   config/yaml.h         YAML text -> JSON

#include "config/duration.h"
#include "config/errors.h"
#include "config/model.h"
#include "config/reader.h"
#include "config/validate.h"
