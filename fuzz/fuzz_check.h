#pragma once
// What a fuzz target asserts: FUZZ_CHECK(condition, what) prints the broken invariant and aborts,
// which libFuzzer reports as a crash (saving the input) and the replay driver as a failed test.
// Unlike assert() it stays on in every build type.

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace sticky::fuzz {

[[noreturn]] inline void invariantBroken(const char* condition, std::string_view what,
                                         const char* file, int line) {
  std::fprintf(stderr, "%s:%d: invariant broken: %.*s (%s)\n", file, line,
               static_cast<int>(what.size()), what.data(), condition);
  std::abort();
}

}  // namespace sticky::fuzz

#define FUZZ_CHECK(condition, what)                                                            \
  do {                                                                                         \
    if (!(condition)) ::sticky::fuzz::invariantBroken(#condition, (what), __FILE__, __LINE__); \
  } while (0)
