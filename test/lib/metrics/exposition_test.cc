#include "metrics/exposition.h"

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <limits>

#include "metrics/instruments.h"

namespace sticky::metrics {
namespace {

TEST_CASE("formatFloat writes numbers as Go's strconv.FormatFloat(v, 'g', -1, 64)") {
  // Expected values printed by Go 1.19: fmt.Println(strconv.FormatFloat(v, 'g', -1, 64)).
  const std::pair<double, const char*> cases[] = {
      {0, "0"},
      {1, "1"},
      {-1, "-1"},
      {0.0005, "0.0005"},
      {0.00005, "5e-05"},
      {0.0001, "0.0001"},
      {0.001, "0.001"},
      {0.0025, "0.0025"},
      {0.005, "0.005"},
      {0.1, "0.1"},
      {0.25, "0.25"},
      {2.5, "2.5"},
      {10, "10"},
      {60, "60"},
      {22.003, "22.003"},
      {100000, "100000"},
      {123456, "123456"},
      {1e6, "1e+06"},
      {1234567, "1.234567e+06"},
      {1.5e300, "1.5e+300"},
      {-0.00012, "-0.00012"},
      {1e-10, "1e-10"},
      {1.7e9, "1.7e+09"},
  };
  for (const auto& [v, want] : cases) {
    INFO(v);
    CHECK(formatFloat(v) == want);
  }
  CHECK(formatFloat(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(formatFloat(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(formatFloat(std::nan("")) == "NaN");
}

TEST_CASE("label values and HELP texts are escaped as the text format requires") {
  CHECK(escapeLabelValue("plain") == "plain");
  CHECK(escapeLabelValue("a\\b\"c\nd") == R"(a\\b\"c\nd)");
  CHECK(escapeHelp("a\\b\"c\nd") == R"(a\\b"c\nd)");
}

TEST_CASE("Exposition writes HELP and TYPE, then samples with labels in order") {
  Exposition x;
  x.family("things_total", "counter", "Things.\nMore.");
  x.sample("things_total", {}, uint64_t{3});
  x.sample("things_total", {{"route", "shop/\"chat\""}, {"code", "2xx"}},
           uint64_t{18446744073709551615u});
  x.family("temperature", "gauge", "Degrees.");
  x.sample("temperature", {}, int64_t{-4});
  x.sampleFloat("temperature", {{"where", "out"}}, 0.0005);
  x.sample("temperature", {{"where", "raw"}}, std::string_view("1e3"));
  CHECK(x.text() ==
        "# HELP things_total Things.\\nMore.\n"
        "# TYPE things_total counter\n"
        "things_total 3\n"
        "things_total{route=\"shop/\\\"chat\\\"\",code=\"2xx\"} 18446744073709551615\n"
        "# HELP temperature Degrees.\n"
        "# TYPE temperature gauge\n"
        "temperature -4\n"
        "temperature{where=\"out\"} 0.0005\n"
        "temperature{where=\"raw\"} 1e3\n");
}

TEST_CASE("histogram buckets are cumulative, le as Go writes it, +Inf last") {
  Exposition x;
  const std::array<double, 3> bounds = {0.0005, 0.25, 1e6};
  const std::array<uint64_t, 4> per_bucket = {1, 0, 2, 4};
  x.histogram("took_seconds", {{"route", "a"}}, bounds, per_bucket, 12.5, 7);
  x.histogram("bare_seconds", {}, bounds, std::array<uint64_t, 4>{}, 0, 0);
  CHECK(x.take() ==
        "took_seconds_bucket{route=\"a\",le=\"0.0005\"} 1\n"
        "took_seconds_bucket{route=\"a\",le=\"0.25\"} 1\n"
        "took_seconds_bucket{route=\"a\",le=\"1e+06\"} 3\n"
        "took_seconds_bucket{route=\"a\",le=\"+Inf\"} 7\n"
        "took_seconds_sum{route=\"a\"} 12.5\n"
        "took_seconds_count{route=\"a\"} 7\n"
        "bare_seconds_bucket{le=\"0.0005\"} 0\n"
        "bare_seconds_bucket{le=\"0.25\"} 0\n"
        "bare_seconds_bucket{le=\"1e+06\"} 0\n"
        "bare_seconds_bucket{le=\"+Inf\"} 0\n"
        "bare_seconds_sum 0\n"
        "bare_seconds_count 0\n");
}

TEST_CASE("Histogram puts an observation on a bound into that bound's bucket") {
  const std::array<double, 2> bounds = {0.1, 1};
  Histogram h(bounds);
  h.observe(0.1);
  h.observe(0.5);
  h.observe(1);
  h.observe(3);
  CHECK(h.count() == 4);
  Exposition x;
  h.render(x, "t", {{"controller", "c"}});
  CHECK(x.text() ==
        "t_bucket{controller=\"c\",le=\"0.1\"} 1\n"
        "t_bucket{controller=\"c\",le=\"1\"} 3\n"
        "t_bucket{controller=\"c\",le=\"+Inf\"} 4\n"
        "t_sum{controller=\"c\"} 4.6\n"
        "t_count{controller=\"c\"} 4\n");
}

TEST_CASE("CounterVec counts by label values and renders every series") {
  CounterVec v({"code", "method"});
  v.add({"200", "GET"});
  v.add({"200", "GET"}, 2);
  v.add({"<error>", "PATCH"});
  CHECK(v.value({"200", "GET"}) == 3);
  CHECK(v.value({"404", "GET"}) == 0);
  Exposition x;
  v.render(x, "requests_total");
  CHECK(x.text() ==
        "requests_total{code=\"200\",method=\"GET\"} 3\n"
        "requests_total{code=\"<error>\",method=\"PATCH\"} 1\n");
}

}  // namespace
}  // namespace sticky::metrics
