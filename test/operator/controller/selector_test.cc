#include "controller/selector.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

namespace sticky::op {
namespace {

using nlohmann::json;

Selector parse(const char* text) {
  auto s = Selector::fromJson(json::parse(text));
  REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  return *s;
}

std::string parseError(const char* text) {
  auto s = Selector::fromJson(json::parse(text));
  REQUIRE_FALSE(s.ok());
  return s.error().message;
}

TEST_CASE("matchLabels selects pods carrying every label") {
  Selector s = parse(R"({"matchLabels":{"app":"chat","tier":"web"}})");
  CHECK(s.matches(Labels{{"app", "chat"}, {"tier", "web"}, {"extra", "x"}}));
  CHECK_FALSE(s.matches(Labels{{"app", "chat"}}));
  CHECK_FALSE(s.matches(Labels{{"app", "chat"}, {"tier", "db"}}));
  CHECK(s.toString() == "app=chat,tier=web");
}

TEST_CASE("matchExpressions In NotIn Exists and DoesNotExist") {
  Selector s = parse(R"({"matchExpressions":[
      {"key":"tier","operator":"In","values":["web","api"]},
      {"key":"env","operator":"NotIn","values":["dev"]},
      {"key":"app","operator":"Exists"},
      {"key":"legacy","operator":"DoesNotExist"}]})");
  CHECK(s.matches(Labels{{"tier", "api"}, {"app", "x"}}));
  CHECK(s.matches(Labels{{"tier", "web"}, {"app", "x"}, {"env", "prod"}}));
  CHECK_FALSE(s.matches(Labels{{"tier", "db"}, {"app", "x"}}));                   // In
  CHECK_FALSE(s.matches(Labels{{"tier", "web"}, {"app", "x"}, {"env", "dev"}}));  // NotIn
  CHECK_FALSE(s.matches(Labels{{"tier", "web"}}));                                // Exists
  CHECK_FALSE(s.matches(Labels{{"tier", "web"}, {"app", "x"}, {"legacy", ""}}));  // DoesNotExist
  CHECK(s.toString() == "app,env notin (dev),!legacy,tier in (api,web)");
}

TEST_CASE("matchLabels and matchExpressions combine with AND") {
  Selector s = parse(
      R"({"matchLabels":{"app":"chat"},
          "matchExpressions":[{"key":"track","operator":"NotIn","values":["canary"]}]})");
  CHECK(s.matches(Labels{{"app", "chat"}}));
  CHECK_FALSE(s.matches(Labels{{"app", "chat"}, {"track", "canary"}}));
  CHECK_FALSE(s.matches(Labels{{"track", "stable"}}));
}

TEST_CASE("an empty selector matches everything - as in Kubernetes") {
  Selector s = parse("{}");
  CHECK(s.matches(Labels{}));
  CHECK(s.matches(Labels{{"a", "b"}}));
  CHECK(parse(R"({"matchLabels":null,"matchExpressions":[]})").matches(Labels{}));
}

TEST_CASE("matches reads a pod's metadata.labels JSON - absent labels are none") {
  Selector s = parse(R"({"matchExpressions":[{"key":"app","operator":"DoesNotExist"}]})");
  CHECK(s.matches(json()));
  CHECK(s.matches(json::object()));
  CHECK_FALSE(s.matches(json{{"app", "x"}}));
  CHECK(parse(R"({"matchLabels":{"app":"x"}})").matches(json{{"app", "x"}}));
}

TEST_CASE("selector errors name what is wrong") {
  CHECK(parseError(R"({"matchExpressions":[{"key":"a","operator":"Has"}]})")
            .find("unknown operator \"Has\"") != std::string::npos);
  CHECK(parseError(R"({"matchExpressions":[{"key":"a","operator":"In","values":[]}]})")
            .find("In needs at least one value") != std::string::npos);
  CHECK(parseError(R"({"matchExpressions":[{"key":"a","operator":"NotIn"}]})")
            .find("NotIn needs at least one value") != std::string::npos);
  CHECK(parseError(R"({"matchExpressions":[{"key":"a","operator":"Exists","values":["x"]}]})")
            .find("Exists takes no values") != std::string::npos);
  CHECK(parseError(R"({"matchExpressions":[{"key":"a","operator":"DoesNotExist","values":["x"]}]})")
            .find("DoesNotExist takes no values") != std::string::npos);
  CHECK(parseError(R"({"matchLabels":{"-bad":"x"}})").find("label key \"-bad\"") !=
        std::string::npos);
  CHECK(parseError(R"({"matchExpressions":[{"key":"a b","operator":"Exists"}]})")
            .find("label key \"a b\"") != std::string::npos);
  CHECK(parseError(R"({"matchLabels":{"app":"not valid!"}})").find("matchLabels[app]") !=
        std::string::npos);
  CHECK(parseError(R"({"matchLabels":{"app":1}})").find("must be a string") != std::string::npos);
  CHECK(parseError(R"({"matchExpressions":[{"operator":"Exists"}]})").find(".key is required") !=
        std::string::npos);
  CHECK(parseError(R"({"matchExpressions":{"key":"a"}})").find("must be a list") !=
        std::string::npos);
  CHECK(parseError(R"("app=chat")").find("must be an object") != std::string::npos);
}

TEST_CASE("label key syntax follows Kubernetes") {
  CHECK(checkLabelKey("app").ok());
  CHECK(checkLabelKey("app.kubernetes.io/name").ok());
  CHECK(checkLabelKey("a_b-c.d").ok());
  CHECK_FALSE(checkLabelKey("").ok());
  CHECK_FALSE(checkLabelKey(std::string(64, 'a')).ok());
  CHECK(checkLabelKey(std::string(63, 'a')).ok());
  CHECK_FALSE(checkLabelKey("Example.com/name").ok());  // prefix must be lower-case
  CHECK_FALSE(checkLabelKey("a/b/c").ok());
  CHECK_FALSE(checkLabelKey("example.com/").ok());
  CHECK_FALSE(checkLabelKey("/name").ok());
  CHECK_FALSE(checkLabelKey("name-").ok());
  CHECK(checkLabelValue("").ok());
  CHECK(checkLabelValue("v1.2_3-x").ok());
  CHECK_FALSE(checkLabelValue("-x").ok());
  CHECK_FALSE(checkLabelValue(std::string(64, 'v')).ok());
}

}  // namespace
}  // namespace sticky::op
