#pragma once
// Where the tests find the source tree and the programs they run. The paths are compiled into
// one translation unit (paths.cc) rather than passed to every test as -D definitions: an
// absolute path on every compile line would give each checkout its own ccache keys, so a fresh
// clone (CI) would recompile every test from scratch.

#include <string>

namespace sticky::test {

/// The repository root (crds/, charts/, test/ ...).
std::string sourceDir();
/// The sticky-proxy built alongside the tests.
std::string proxyBinary();
/// The standalone test backend (test/support/test_backend_main.cc).
std::string testBackendBinary();
/// The sticky-operator built alongside the tests; empty in builds without the operator.
std::string operatorBinary();

}  // namespace sticky::test
