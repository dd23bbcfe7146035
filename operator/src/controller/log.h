#pragma once
// The operator logs with the project's one logger: sticky::Logger (common/log.h), which code in
// sticky::op names `Logger`, `LogLevel`, `LogField`. Kept so existing includes compile;
// include "common/log.h" in new code.
#include "common/log.h"
