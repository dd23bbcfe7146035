#pragma once
// ASCII string helpers shared by both binaries: protocol text (header names, hosts, query
// strings, tokens read from files) is ASCII, so none of these depend on the C locale.
//
//   trim("  abc\n")                   -> "abc"
//   asciiLower("Client-ID")           -> "client-id"
//   asciiIEquals("Chunked", "chunked") -> true
//   percentDecode("a%2Fb+c")          -> "a/b c"      percentDecode("%zz") -> nullopt

#include <optional>
#include <string>
#include <string_view>

namespace sticky {

/// `text` without leading and trailing spaces, tabs, CRs and LFs. A view into `text`: keep what
/// it views alive (assign it to a std::string when `text` is a temporary).
std::string_view trim(std::string_view text);

/// A copy of `text` with A-Z turned into a-z; every other byte unchanged.
std::string asciiLower(std::string_view text);

/// True if `a` and `b` are equal ignoring the case of A-Z.
bool asciiIEquals(std::string_view a, std::string_view b);

/// Whether '+' stands for a space, as in a query string (application/x-www-form-urlencoded).
enum class PlusIsSpace { No, Yes };

/// Decodes %XX escapes (either hex case). nullopt when a '%' is not followed by two hex digits.
std::optional<std::string> percentDecode(std::string_view text,
                                         PlusIsSpace plus = PlusIsSpace::Yes);

}  // namespace sticky
