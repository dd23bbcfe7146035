#include "http/headers.h"

#include <cctype>
#include <vector>

namespace sticky::proxy {

namespace http = boost::beast::http;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

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

void removeHopByHop(HttpFields& fields, bool keep_upgrade) {
  std::vector<std::string> named;
  for (auto& f : fields) {
    if (f.name() != http::field::connection) continue;
    forEachToken(f.value(), [&](std::string_view t) {
      if (keep_upgrade && iequals(t, "upgrade")) return;
      named.emplace_back(t);
    });
  }
  for (auto& name : named) fields.erase(name);
  std::vector<std::string> proxy_fields;
  for (auto& f : fields)
    if (istartsWith(f.name_string(), "proxy-")) proxy_fields.emplace_back(f.name_string());
  for (auto& name : proxy_fields) fields.erase(name);
  fields.erase(http::field::connection);
  fields.erase(http::field::keep_alive);
  fields.erase(http::field::te);
  fields.erase(http::field::trailer);
  fields.erase(http::field::transfer_encoding);
  if (keep_upgrade) {
    fields.set(http::field::connection, "upgrade");
  } else {
    fields.erase(http::field::upgrade);
  }
}

void addForwardedHeaders(HttpFields& fields, std::string_view client_ip, std::string_view proto,
                         std::string_view host) {
  std::string xff;
  for (auto& f : fields) {
    if (!iequals(f.name_string(), "x-forwarded-for")) continue;
    auto value = trim(f.value());
    if (value.empty()) continue;
    if (!xff.empty()) xff += ", ";
    xff += value;
  }
  if (!xff.empty()) xff += ", ";
  xff += client_ip;
  fields.set("X-Forwarded-For", xff);
  fields.set("X-Forwarded-Proto", proto);
  if (host.empty())
    fields.erase("X-Forwarded-Host");
  else
    fields.set("X-Forwarded-Host", host);
}

size_t fieldCount(const HttpFields& fields) {
  size_t n = 0;
  for (auto it = fields.begin(); it != fields.end(); ++it) ++n;
  return n;
}

RequestProblem checkRequestHead(const HttpFields& fields, unsigned version,
                                std::string_view method) {
  if (method == "CONNECT")
    return {http::status::method_not_allowed, "CONNECT is not supported by this proxy"};
  size_t hosts = 0;
  size_t transfer_encodings = 0;
  bool content_length = false;
  std::vector<std::string_view> codings;
  for (auto& f : fields) {
    switch (f.name()) {
      case http::field::host:
        ++hosts;
        break;
      case http::field::content_length:
        content_length = true;
        break;
      case http::field::transfer_encoding:
        ++transfer_encodings;
        forEachToken(f.value(), [&](std::string_view t) { codings.push_back(t); });
        break;
      default:
        break;
    }
  }
  if (version >= 11 && hosts == 0)
    return {http::status::bad_request, "an HTTP/1.1 request must carry a Host header"};
  if (hosts > 1)
    return {http::status::bad_request, "the request carries more than one Host header"};
  if (transfer_encodings == 0) return {};
  if (content_length)
    return {http::status::bad_request,
            "the request carries both Content-Length and Transfer-Encoding"};
  if (version < 11)
    return {http::status::bad_request, "Transfer-Encoding is not allowed in an HTTP/1.0 request"};
  if (codings.empty() || !iequals(codings.back(), "chunked"))
    return {http::status::bad_request, "Transfer-Encoding must end with chunked"};
  if (codings.size() > 1)
    return {http::status::not_implemented, "only the chunked transfer coding is supported"};
  return {};
}

}  // namespace sticky::proxy
