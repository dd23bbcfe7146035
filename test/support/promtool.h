#pragma once
// Prometheus's own checker on a scrape: `promtool check metrics` (Debian's `prometheus`
// package), for tests of both binaries' /metrics.

#include <optional>
#include <string>

#include "support/process.h"

namespace sticky::test {

/// promtool's complaints about `text` (empty when it has none), or nullopt when promtool is not
/// installed. Writes `<name>.prom` and `<name>.promtool` into `dir`.
std::optional<std::string> promtoolProblems(const TempDir& dir, const std::string& name,
                                            const std::string& text);

}  // namespace sticky::test
