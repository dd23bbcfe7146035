#pragma once
// The logger's escaping, for other line writers (the proxy's access log): the same quoting and
// escapes as the log's JSON and text lines (common/log.h).

#include <string>
#include <string_view>

namespace sticky {

/// `s` as a JSON string, quoted and escaped as the JSON lines escape text, appended to `out`:
/// `a"b` and a newline -> `"a\"b\n"`; bytes that are not UTF-8 become U+FFFD.
void appendLogJsonString(std::string& out, std::string_view s);
/// `value` as a text line writes a field's value (bare, or quoted and escaped), appended to `out`.
void appendLogTextValue(std::string& out, std::string_view value);

}  // namespace sticky
