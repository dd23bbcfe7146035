#include "http/headers.h"

#include <charconv>
#include <vector>

namespace sticky::proxy {

namespace http = boost::beast::http;

namespace {

bool istartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// Calls `fn(token)` for each non-empty element of a comma-separated list.
template <class Fn>
void forEachToken(std::string_view list, Fn&& fn) {
  while (true) {
    auto comma = list.find(',');
    auto token = trim(list.substr(0, comma));
    if (!token.empty()) fn(token);
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

}  // namespace

std::string_view hostWithoutPort(std::string_view host) {
  host = trim(host);
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    if (close == std::string_view::npos) return host;
    return host.substr(1, close - 1);
  }
  auto colon = host.find(':');
  if (colon != std::string_view::npos && host.find(':', colon + 1) == std::string_view::npos)
    return host.substr(0, colon);
  return host;
}

std::string_view targetAuthority(std::string_view target) {
  auto scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos || target.empty() || target.front() == '/') return {};
  auto rest = target.substr(scheme_end + 3);
  return rest.substr(0, rest.find_first_of("/?#"));
}

std::string_view targetPath(std::string_view target) {
  if (!target.empty() && target.front() != '/') {
    auto authority = targetAuthority(target);
    if (!authority.empty()) {
      auto start = target.find("://") + 3 + authority.size();
      target.remove_prefix(start);
      if (target.empty() || target.front() != '/') return "/";
    }
  }
  return target.substr(0, target.find_first_of("?#"));
}

bool tokenListContains(std::string_view list, std::string_view token) {
  bool found = false;
  forEachToken(list, [&](std::string_view t) { found = found || iequals(t, token); });
  return found;
}

namespace {

/// True for a hop-by-hop field, which no forwarded head carries: Connection and every field it
/// names, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, and Upgrade unless kept.
/// `names_fields`: some Connection field lists a token other than close, keep-alive or upgrade
/// (the usual ones, whose fields are hop-by-hop anyway), so each field's name must be looked up.
bool isHopByHop(const std::vector<HeadField>& fields, bool names_fields, const HeadField& f,
                bool keep_upgrade) {
  switch (f.id) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::te:
    case http::field::trailer:
    case http::field::transfer_encoding:
      return true;
    case http::field::upgrade:
      return !keep_upgrade;
    default:
      break;
  }
  if (istartsWith(f.name, "proxy-")) return true;
  if (!names_fields) return false;
  for (auto& c : fields) {
    if (c.id != http::field::connection) continue;
    if (tokenListContains(c.value, f.name)) return true;
  }
  return false;
}

/// True if a Connection field names a field other than Keep-Alive or Upgrade ("close" names none).
bool connectionNamesFields(const std::vector<HeadField>& fields) {
  bool names = false;
  for (auto& f : fields) {
    if (f.id != http::field::connection) continue;
    forEachToken(f.value, [&](std::string_view t) {
      names = names || !(iequals(t, "keep-alive") || iequals(t, "close") || iequals(t, "upgrade"));
    });
  }
  return names;
}

void appendField(ByteBuffer& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

/// The framing field `framing` asks for, if any.
void appendFraming(ByteBuffer& out, const Framing& framing) {
  if (framing.kind == Framing::Length) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, framing.length);
    appendField(out, "Content-Length", std::string_view(digits, end - digits));
  } else if (framing.kind == Framing::Chunked) {
    appendField(out, "Transfer-Encoding", "chunked");
  }
}

}  // namespace

void appendRequestHead(ByteBuffer& out, const MessageHead& head,
                       const RequestHeadRewrite& rewrite) {
  const auto& fields = head.fields();
  out.append(head.methodString());
  out.push_back(' ');
  out.append(head.target());
  out.append(" HTTP/1.1\r\n");
  bool names_fields = connectionNamesFields(fields);
  bool has_xff = false;
  std::string_view authority = targetAuthority(head.target());
  bool has_host = false;
  for (auto& f : fields) {
    if (isHopByHop(fields, names_fields, f, rewrite.keep_upgrade)) continue;
    auto name = f.name;
    if (f.id == http::field::host) {
      has_host = true;
      if (!authority.empty()) continue;
    }
    if (f.id == http::field::content_length && rewrite.framing.kind != Framing::Keep) continue;
    if (f.id == http::field::expect && rewrite.drop_expect) continue;
    if (!rewrite.moved_from_name.empty() && iequals(name, rewrite.moved_from_name)) continue;
    if (iequals(name, "x-forwarded-for")) {
      has_xff = true;
      continue;
    }
    if (iequals(name, "x-forwarded-proto") || iequals(name, "x-forwarded-host")) continue;
    appendField(out, name, f.value);
  }
  if (!authority.empty())
    appendField(out, "Host", authority);
  else if (!has_host && !rewrite.default_host.empty())
    appendField(out, "Host", rewrite.default_host);
  appendFraming(out, rewrite.framing);
  if (rewrite.keep_upgrade) appendField(out, "Connection", "upgrade");
  if (!rewrite.moved_from_value.empty())
    appendField(out, rewrite.moved_from_name, rewrite.moved_from_value);
  out.append("X-Forwarded-For: ");
  if (has_xff) {
    for (auto& f : fields) {
      if (!iequals(f.name, "x-forwarded-for")) continue;
      auto value = trim(f.value);
      if (value.empty()) continue;
      out.append(value);
      out.append(", ");
    }
  }
  out.append(rewrite.client_ip);
  out.append("\r\n");
  appendField(out, "X-Forwarded-Proto", rewrite.proto);
  if (!rewrite.host.empty()) appendField(out, "X-Forwarded-Host", rewrite.host);
  out.append("\r\n");
}

void appendResponseHead(ByteBuffer& out, const MessageHead& head,
                        const ResponseHeadRewrite& rewrite) {
  const auto& fields = head.fields();
  char digits[8];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, head.status());
  out.append("HTTP/1.1 ");
  out.append(std::string_view(digits, end - digits));
  out.push_back(' ');
  out.append(head.reason());
  out.append("\r\n");
  bool names_fields = connectionNamesFields(fields);
  for (auto& f : fields) {
    if (isHopByHop(fields, names_fields, f, rewrite.keep_upgrade)) continue;
    if (f.id == http::field::content_length && rewrite.framing.kind != Framing::Keep) continue;
    if (!rewrite.session_moved_name.empty() && iequals(f.name, rewrite.session_moved_name))
      continue;
    appendField(out, f.name, f.value);
  }
  appendFraming(out, rewrite.framing);
  if (rewrite.keep_upgrade)
    appendField(out, "Connection", "upgrade");
  else if (rewrite.connection == ConnectionHeader::Close)
    appendField(out, "Connection", "close");
  else if (rewrite.connection == ConnectionHeader::KeepAlive)
    appendField(out, "Connection", "keep-alive");
  if (!rewrite.session_moved_value.empty())
    appendField(out, rewrite.session_moved_name, rewrite.session_moved_value);
  out.append("\r\n");
}

namespace {
Unexpected<LocalReply> refuse(LocalReason reason) {
  return unexpected(localReply(reason));
}

/// True for uri-host [":" port] (RFC 3986 3.2.2): a reg-name, IPv4 address or IP literal, made
/// of unreserved, pct-encoded and sub-delims characters (brackets and colons for the literal and
/// the port); never empty. No whitespace, no userinfo ("@"), no path.
bool validHost(std::string_view host) {
  if (host.empty()) return false;
  for (unsigned char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("-._~%!$&'()*+,;=:[]").find(static_cast<char>(c)) !=
                  std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}
}  // namespace

Result<Ok, LocalReply> checkRequestHead(const MessageHead& head) {
  unsigned version = head.version();
  if (head.methodString() == "CONNECT") return refuse(LocalReason::ConnectMethod);
  size_t hosts = 0;
  bool invalid_host = false;
  size_t transfer_encodings = 0;
  bool content_length = false;
  std::vector<std::string_view> codings;
  for (auto& f : head.fields()) {
    switch (f.id) {
      case http::field::host:
        ++hosts;
        invalid_host = invalid_host || !validHost(f.value);
        break;
      case http::field::content_length:
        content_length = true;
        break;
      case http::field::transfer_encoding:
        ++transfer_encodings;
        forEachToken(f.value, [&](std::string_view t) { codings.push_back(t); });
        break;
      default:
        break;
    }
  }
  if (version >= 11 && hosts == 0) return refuse(LocalReason::MissingHost);
  if (hosts > 1) return refuse(LocalReason::RepeatedHost);
  auto authority = targetAuthority(head.target());
  bool absolute = head.target().find("://") != std::string_view::npos && !head.target().empty() &&
                  head.target().front() != '/';
  if (invalid_host || (absolute && !validHost(authority))) return refuse(LocalReason::InvalidHost);
  if (transfer_encodings == 0) return Ok{};
  if (content_length) return refuse(LocalReason::LengthAndEncoding);
  if (version < 11) return refuse(LocalReason::EncodingOnHttp10);
  if (codings.empty() || !iequals(codings.back(), "chunked"))
    return refuse(LocalReason::EncodingNotChunked);
  if (codings.size() > 1) return refuse(LocalReason::UnsupportedCoding);
  return Ok{};
}

}  // namespace sticky::proxy
