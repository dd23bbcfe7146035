#pragma once
// The Prometheus text exposition format (0.0.4), written the way Go's client (client_golang's
// expfmt) writes it, so dashboards and recording rules written against Go exporters match:
//
//   # HELP sticky_sessions Sessions in the route's stick table.
//   # TYPE sticky_sessions gauge
//   sticky_sessions{namespace="shop",stickyroute="chat"} 2
//   sticky_upstream_latency_seconds_bucket{namespace="shop",stickyroute="chat",le="0.0005"} 0
//   sticky_upstream_latency_seconds_bucket{namespace="shop",stickyroute="chat",le="+Inf"} 3
//
// Nothing here is a registry: a binary keeps its counters where they are counted (relaxed
// atomics on the proxy's request path) and renders them into an Exposition when scraped, one
// family at a time. Integer samples are written as integers ("2"); floating-point ones with
// formatFloat (Go's strconv.FormatFloat(v, 'g', -1, 64)).

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace sticky::metrics {

/// The Content-Type of a scrape in this format.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

using Label = std::pair<std::string_view, std::string_view>;

/// `v` as Go's strconv.FormatFloat(v, 'g', -1, 64) writes it: the shortest digits that read back
/// as `v`, in fixed notation unless the decimal exponent is below -4 or at least 6 (Go's %g rule
/// for the shortest form), else as d.ddde±XX. Examples: 0.0005 -> "0.0005", 0.00005 ->
/// "5e-05", 2.5 -> "2.5", 10 -> "10", 100000 -> "100000", 1e6 -> "1e+06", and "+Inf", "-Inf",
/// "NaN".
std::string formatFloat(double v);

/// A label value for the text format: backslash, double quote and newline escaped.
std::string escapeLabelValue(std::string_view value);
/// A HELP text for the text format: backslash and newline escaped.
std::string escapeHelp(std::string_view text);

/// Builds one scrape. Declare a family (HELP and TYPE) before its samples; each family once.
class Exposition {
 public:
  /// `type`: counter, gauge, histogram, summary or untyped.
  void family(std::string_view name, std::string_view type, std::string_view help);

  /// One sample with its value already formatted.
  void sample(std::string_view name, std::initializer_list<Label> labels, std::string_view value);
  void sample(std::string_view name, std::initializer_list<Label> labels, uint64_t value);
  void sample(std::string_view name, std::initializer_list<Label> labels, int64_t value);
  /// A floating-point value, formatted with formatFloat.
  void sampleFloat(std::string_view name, std::initializer_list<Label> labels, double value);

  /// The samples of one histogram series: `<name>_bucket` for every bound (cumulative, `le` by
  /// formatFloat) and `+Inf`, `<name>_sum`, `<name>_count`. `per_bucket` holds the count of
  /// observations in each bucket alone (not cumulative), `bounds.size() + 1` of them, the last
  /// for observations above the highest bound. `count` is written as given (a scrape may read
  /// it a moment apart from the buckets).
  void histogram(std::string_view name, std::initializer_list<Label> labels,
                 std::span<const double> bounds, std::span<const uint64_t> per_bucket, double sum,
                 uint64_t count);

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void writeSample(std::string_view name, std::string_view suffix,
                   std::initializer_list<Label> labels, const Label* extra, std::string_view value);

  std::string out_;
};

}  // namespace sticky::metrics
