#pragma once
// The project's one error vocabulary: a small expected-style result. The data plane reports
// failures by value, never by throwing.
//
// Rules
//   - A fallible function returns `Result<T>`; one with no value returns `Result<Ok>` and ends
//     with `return Ok{};`. Failures are made with `fail("one sentence")`.
//   - `Error::message` is one sentence a user can act on: what was wrong and what to do.
//   - `Error::code` is empty unless some caller branches on the kind of failure; then it is a
//     stable CamelCase name (such as "Unreachable") that callers compare, never the message.
//   - A typed error (`Result<T, E>`) only where callers branch on its structure: `ConfigErrors`
//     (every problem with its field path) and `KubeError` (HTTP status, Kubernetes reason).
//   - No "empty string means valid", no out-parameters for errors.
//
//   Result<Duration> d = parseDuration("30m");
//   if (!d) return fail("ttl " + d.error().message);
//   use(*d);

#include <string>
#include <utility>
#include <variant>

namespace sticky {

struct Error {
  std::string message;  // one sentence: what was wrong and what to do
  std::string code{};   // empty, or a stable name a caller branches on
};

template <class E>
struct Unexpected {
  E error;
};

template <class E>
Unexpected<std::decay_t<E>> unexpected(E&& e) {
  return {std::forward<E>(e)};
}

inline Unexpected<Error> fail(std::string message, std::string code = {}) {
  return {Error{std::move(message), std::move(code)}};
}

template <class T, class E = Error>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  template <class G>
  Result(Unexpected<G> u) : v_(std::in_place_index<1>, std::move(u.error)) {}

  bool ok() const { return v_.index() == 0; }
  /// Same as ok(); callers write `if (!result)`.
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const E& error() const& { return std::get<1>(v_); }
  E&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, E> v_;
};

/// The value of a Result that has none: `Result<Ok> apply(...)`, `return Ok{};`.
struct Ok {};

}  // namespace sticky
