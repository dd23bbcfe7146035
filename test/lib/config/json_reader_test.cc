#include "config/json_reader.h"

#include <array>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "config/model.h"

namespace sticky {
namespace {

using nlohmann::json;

TEST_CASE("JsonReader: typed reads fill values and leave them alone on a problem") {
  json j = json::parse(R"({"name": "chat-0", "port": 8080, "down": true, "ttl": "1m30s",
                           "state": "Draining", "hosts": ["a", "b"], "gone": null})");
  JsonReader r;
  std::string name;
  uint16_t port = 0;
  bool down = false;
  Duration ttl{};
  EndpointState state = EndpointState::Active;
  std::vector<std::string> hosts;
  CHECK(r.readString(*JsonReader::optional(j, "name"), "name", name));
  CHECK(r.readUintAs(*JsonReader::optional(j, "port"), "port", UintRange{1, 65535}, port));
  CHECK(r.readBool(*JsonReader::optional(j, "down"), "down", down));
  CHECK(r.readDuration(*JsonReader::optional(j, "ttl"), "ttl", ttl));
  CHECK(r.readEnum(*JsonReader::optional(j, "state"), "state",
                   std::array{EndpointState::Active, EndpointState::Draining}, state));
  CHECK(r.readStringList(*JsonReader::optional(j, "hosts"), "hosts", hosts));
  CHECK(JsonReader::optional(j, "gone") == nullptr);  // null is "not set"
  CHECK(JsonReader::optional(j, "absent") == nullptr);
  CHECK(r.ok());
  CHECK(name == "chat-0");
  CHECK(port == 8080);
  CHECK(down);
  CHECK(ttl == std::chrono::seconds(90));
  CHECK((state == EndpointState::Draining));
  CHECK(hosts == std::vector<std::string>{"a", "b"});

  std::string kept = "kept";
  CHECK_FALSE(r.readString(json(5), "name", kept));
  CHECK(kept == "kept");
  CHECK_FALSE(r.readUintAs(json(70000), "port", UintRange{1, 65535}, port));
  CHECK(port == 8080);
  REQUIRE(r.errors().size() == 2);
  CHECK(r.errors()[0].toString() == "name: must be a string, not an integer");
  CHECK(r.errors()[1].toString() == "port: must be an integer between 1 and 65535, not 70000");
}

TEST_CASE("JsonReader: every problem names its path and what was expected") {
  JsonReader r;
  uint64_t n = 0;
  bool b = false;
  Duration d{};
  EndpointState s = EndpointState::Active;
  std::vector<std::string> list;
  r.readUint(json(-3), "a", UintRange{}, n);
  r.readUint(json(0), "b", UintRange{1}, n);
  r.readUint(json(1.5), "c", UintRange{}, n);
  r.readBool(json("yes"), "d", b);
  r.readDuration(json(30), "e", d);
  r.readDuration(json("30"), "f", d);
  r.readEnum(json("Gone"), "g", std::array{EndpointState::Active, EndpointState::Draining}, s);
  r.readStringList(json::parse(R"(["x", 1, "y"])"), "h", list);
  r.object(json::array(), "i", "such as {a: 1}");
  r.list(json("x"), "j", "routes");
  json obj = json::parse(R"({"known": 1, "knwon": 2})");
  r.knownFields(obj, "k", {"known", "other"});
  CHECK(r.required(obj, "k", "other", "a number such as 1") == nullptr);
  CHECK(r.required(obj, "", "other") == nullptr);
  CHECK(list == std::vector<std::string>{"x", "y"});

  std::vector<std::string> got;
  for (const auto& e : r.errors()) got.push_back(e.toString());
  std::vector<std::string> want = {
      "a: must be a non-negative integer, not a negative number",
      "b: must be an integer >= 1, not 0",
      "c: must be a non-negative integer, not a number with a fraction",
      "d: must be true or false, not a string",
      "e: must be a duration string such as \"30m\", \"1h30m\", \"10s\" or \"250ms\", not an "
      "integer",
      "f: must be a duration such as \"30m\", \"1h30m\", \"10s\" or \"250ms\", not \"30\" "
      "(missing unit; use ms, s, m or h)",
      "g: must be one of Active, Draining, not \"Gone\"",
      "h[1]: must be a string, not an integer",
      "i: must be an object (such as {a: 1}), not a list",
      "j: must be a list of routes, not a string",
      "k.knwon: unknown field; check its spelling or remove it (known fields here: known, other)",
      "k.other: is required; set it to a number such as 1",
      "other: is required",
  };
  CHECK(got == want);
  CHECK(
      describe(r.errors()).find("a: must be a non-negative integer, not a negative number; b: ") ==
      0);
}

TEST_CASE("JsonReader: paths and what a failed path covers") {
  CHECK(JsonReader::fieldPath("", "routes") == "routes");
  CHECK(JsonReader::fieldPath("routes[0]", "ttl") == "routes[0].ttl");
  CHECK(JsonReader::indexPath("routes", 3) == "routes[3]");

  JsonReader r;
  CHECK_FALSE(r.covered("routes[0]"));
  r.fail("routes[1].endpoints", "must be a list");
  CHECK(r.covered("routes[1].endpoints"));
  CHECK(r.covered("routes[1].endpoints[0].port"));
  CHECK_FALSE(r.covered("routes[1].endpointsX"));
  CHECK_FALSE(r.covered("routes[1]"));
  CHECK_FALSE(r.covered("routes[10].endpoints"));
  r.fail("", "must be an object");
  CHECK(r.covered("anything"));
  ConfigErrors taken = r.takeErrors();
  CHECK(taken.size() == 2);
}

TEST_CASE("parseJsonText: duplicate fields and syntax errors") {
  auto ok = parseJsonText(R"({"a": [1, {"b": 2}]})");
  REQUIRE(ok.ok());
  CHECK((*ok)["a"][1]["b"] == 2);

  auto dup = parseJsonText(R"({"a": [1, {"b": 2, "b": 3}], "c": 1, "c": 2})");
  REQUIRE_FALSE(dup.ok());
  REQUIRE(dup.error().size() == 2);
  CHECK(dup.error()[0].toString() == "a[1].b: duplicate field; set it once");
  CHECK(dup.error()[1].toString() == "c: duplicate field; set it once");

  auto bad = parseJsonText("{\"a\":");
  REQUIRE_FALSE(bad.ok());
  REQUIRE(bad.error().size() == 1);
  CHECK(bad.error()[0].message.find("invalid JSON") == 0);
}

TEST_CASE("quote and typeName, as messages show values") {
  CHECK(quote("a\"b") == "\"a\\\"b\"");
  CHECK(quote("\xff") == "\"\xEF\xBF\xBD\"");  // invalid UTF-8 replaced, no exception
  CHECK(std::string(typeName(json())) == "null");
  CHECK(std::string(typeName(json::object())) == "an object");
  CHECK(std::string(typeName(json(true))) == "a boolean");
}

}  // namespace
}  // namespace sticky
