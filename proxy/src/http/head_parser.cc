#include "http/head_parser.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include <boost/beast/http/error.hpp>

namespace sticky::proxy {

namespace http = boost::beast::http;

namespace {

constexpr unsigned char lower(unsigned char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<unsigned char>(c + ('a' - 'A')) : c;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(static_cast<unsigned char>(a[i])) != lower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// --- MessageHead ---

std::string_view MessageHead::operator[](http::field id) const {
  for (const auto& f : fields_)
    if (f.id == id) return f.value;
  return {};
}

const HeadField* MessageHead::find(std::string_view name) const {
  for (const auto& f : fields_)
    if (iequals(f.name, name)) return &f;
  return nullptr;
}

size_t MessageHead::count(http::field id) const {
  return static_cast<size_t>(std::count_if(fields_.begin(), fields_.end(),
                                           [id](const HeadField& f) { return f.id == id; }));
}

void MessageHead::clear() {
  text_.clear();
  fields_.clear();
  method_ = http::verb::unknown;
  method_string_ = target_ = reason_ = {};
  status_ = 0;
  version_ = 11;
}

void MessageHead::makeRoom(size_t n) {
  if (text_.capacity() - text_.size() < n) grow(n);
}

void MessageHead::releaseNow() {
  clear();
  text_.clearAndShrink(kKeptTextBytes);
  if (fields_.capacity() > kKeptFields) std::vector<HeadField>().swap(fields_);
}

std::string_view MessageHead::keep(std::string_view s) {
  size_t at = text_.size();
  text_.append(s);
  return std::string_view(text_.data() + at, s.size());
}

void MessageHead::grow(size_t more) {
  // Offsets of every view, taken while the old buffer is still there; views again afterwards.
  // (An empty view may point anywhere, or nowhere; it stays as it is.)
  const char* base = text_.data();
  auto offset = [base](std::string_view v) {
    return v.empty() ? 0 : static_cast<size_t>(v.data() - base);
  };
  std::vector<std::pair<size_t, size_t>> offsets;
  offsets.reserve(fields_.size());
  for (const auto& f : fields_) offsets.emplace_back(offset(f.name), offset(f.value));
  size_t method = offset(method_string_), target = offset(target_), reason = offset(reason_);

  text_.reserve(std::max(2 * text_.capacity(), text_.size() + more + 512));
  std::string_view text = text_.view();
  auto rebase = [text](std::string_view& v, size_t at) {
    if (!v.empty()) v = text.substr(at, v.size());
  };
  for (size_t i = 0; i < fields_.size(); ++i) {
    rebase(fields_[i].name, offsets[i].first);
    rebase(fields_[i].value, offsets[i].second);
  }
  rebase(method_string_, method);
  rebase(target_, target);
  rebase(reason_, reason);
}

void MessageHead::setRequestLine(http::verb method, std::string_view method_string,
                                 std::string_view target, unsigned version) {
  makeRoom(method_string.size() + target.size());
  method_ = method;
  method_string_ = keep(method_string);
  target_ = keep(target);
  version_ = version;
}

void MessageHead::setStatusLine(unsigned status, std::string_view reason, unsigned version) {
  makeRoom(reason.size());
  status_ = status;
  reason_ = keep(reason);
  version_ = version;
}

void MessageHead::addField(http::field id, std::string_view name, std::string_view value) {
  makeRoom(name.size() + value.size());
  std::string_view kept_name = keep(name);
  fields_.push_back({id, kept_name, keep(value)});
}

// --- HeadParser ---

template <bool isRequest>
void HeadParser<isRequest>::on_request_impl(http::verb method, string_view method_string,
                                            string_view target, int version, error_code&) {
  head_.setRequestLine(method, method_string, target, static_cast<unsigned>(version));
}

template <bool isRequest>
void HeadParser<isRequest>::on_response_impl(int status, string_view reason, int version,
                                             error_code&) {
  head_.setStatusLine(static_cast<unsigned>(status), reason, static_cast<unsigned>(version));
}

template <bool isRequest>
void HeadParser<isRequest>::on_field_impl(http::field id, string_view name, string_view value,
                                          error_code&) {
  head_.addField(id, name, value);
}

template <bool isRequest>
void HeadParser<isRequest>::on_header_impl(error_code&) {}

template <bool isRequest>
void HeadParser<isRequest>::on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) {}

template <bool isRequest>
std::size_t HeadParser<isRequest>::on_body_impl(string_view body, error_code& ec) {
  if (!body_data_) {
    ec = http::error::need_buffer;
    return 0;
  }
  size_t n = std::min(body.size(), body_space_);
  std::memcpy(body_data_, body.data(), n);
  body_data_ += n;
  body_space_ -= n;
  if (n < body.size()) ec = http::error::need_buffer;
  return n;
}

template <bool isRequest>
void HeadParser<isRequest>::on_chunk_header_impl(std::uint64_t size, string_view, error_code&) {
  chunk_seen_ = true;
  body_budget_ -= size;  // Beast checked size <= body_budget_ before it called this
}

template <bool isRequest>
std::size_t HeadParser<isRequest>::on_chunk_body_impl(std::uint64_t, string_view body,
                                                      error_code& ec) {
  return on_body_impl(body, ec);
}

template <bool isRequest>
void HeadParser<isRequest>::on_finish_impl(error_code&) {}

template class HeadParser<true>;
template class HeadParser<false>;

}  // namespace sticky::proxy
