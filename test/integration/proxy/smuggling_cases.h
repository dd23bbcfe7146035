#pragma once
// Ambiguous and hostile request inputs for the smuggling test (smuggling_test.cc): the explicit
// families of the request-smuggling literature, then `random_cases` more drawn from the same
// pieces by a seeded generator (mt19937_64, used through `rng() % n` only, so a seed gives the
// same inputs with every standard library).
//
// Every request head an input holds, the hidden ones in bodies included, carries
// `x-case: @CASE@`; the test replaces @CASE@ with the case's index, so a backend's log line says
// which input it came from.

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace sticky::test::smuggling {

struct Case {
  std::string family;
  std::string bytes;
};

inline constexpr std::string_view kCaseMark = "@CASE@";

/// A complete, valid GET: what a smuggler hides behind the first request's body.
inline std::string hiddenGet(std::string_view path = "/smuggled") {
  return "GET " + std::string(path) +
         " HTTP/1.1\r\nHost: x\r\nclient-id: c\r\nx-case: " + std::string(kCaseMark) + "\r\n\r\n";
}

/// "POST /t HTTP/1.1" with Host, the session key and the case mark; no framing, no empty line.
inline std::string postHead(std::string_view target = "/t", std::string_view version = "1.1") {
  return "POST " + std::string(target) + " HTTP/" + std::string(version) +
         "\r\nHost: x\r\nclient-id: c\r\nx-case: " + std::string(kCaseMark) + "\r\n";
}

inline std::string chunk(std::string_view data, std::string_view size_prefix = "",
                         std::string_view ext = "") {
  char hex[20];
  std::snprintf(hex, sizeof hex, "%zx", data.size());
  return std::string(size_prefix) + hex + std::string(ext) + "\r\n" + std::string(data) + "\r\n";
}

/// "hello" chunked, then the last chunk and no trailers.
inline std::string chunkedHello() {
  return chunk("hello") + "0\r\n\r\n";
}

/// Transfer-Encoding field lines, plain and obfuscated (each ends in CRLF).
inline std::vector<std::string> transferEncodingLines() {
  return {
      "Transfer-Encoding: chunked\r\n",
      "Transfer-Encoding: xchunked\r\n",
      "Transfer-Encoding:  chunked\r\n",
      "Transfer-Encoding:\tchunked\r\n",
      "Transfer-Encoding: chunked \r\n",
      "Transfer-Encoding: chunked, identity\r\n",
      "Transfer-Encoding: identity, chunked\r\n",
      "Transfer-Encoding: chunked, chunked\r\n",
      "Transfer-Encoding: gzip, chunked\r\n",
      "Transfer-Encoding: chunked,\r\n",
      "Transfer-Encoding: ,chunked\r\n",
      "Transfer-Encoding: \"chunked\"\r\n",
      "Transfer-Encoding: chunk\r\n",
      "Transfer-Encoding: Chunked\r\n",
      "Transfer-Encoding: CHUNKED\r\n",
      "Transfer-Encoding: chunked;q=1\r\n",
      "Transfer-Encoding: \x0b"
      "chunked\r\n",
      "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
      "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n",
      "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
      "Transfer-Encoding: chunked\r\nTransfer-encoding: x\r\n",
      "transfer-encoding: chunked\r\n",
      "TRANSFER-ENCODING: chunked\r\n",
      "Transfer-Encoding : chunked\r\n",
      "Transfer-Encoding\t: chunked\r\n",
      "Transfer_Encoding: chunked\r\n",
      "Transfer-Encoding:\r\n chunked\r\n",
      "X-Fold: a\r\n Transfer-Encoding: chunked\r\n",
      " Transfer-Encoding: chunked\r\n",
      "Transfer-Encoding: chunked\n",
      "Transfer-Encoding: chunked\r\r\n",
      std::string("Transfer-Encoding: chu\0nked\r\n", 29),
      "Transfer-Encoding\r\n: chunked\r\n",
  };
}

/// Content-Length values, valid and not (`5` is "hello").
inline std::vector<std::string> contentLengthValues() {
  return {"5",
          "5, 5",
          "5,5",
          "5, 6",
          "6, 5",
          "+5",
          "0x5",
          "05",
          "00000000000000000005",
          " 5",
          "5 ",
          "5\t",
          "-5",
          "5.0",
          "5e0",
          "5,",
          ",5",
          "5 5",
          "0",
          "",
          "\"5\"",
          "18446744073709551615",
          "18446744073709551616",
          "99999999999999999999999",
          "4294967301"};
}

/// Chunked bodies of "hello" in many spellings, valid and not (each ends the body).
inline std::vector<std::string> chunkedBodies() {
  const std::string tail = "0\r\n\r\n";
  return {
      chunkedHello(),
      chunk("hello", "000") + tail,
      chunk("hello", "0000000000000000000000000000") + tail,
      "ffffffffffffffffff\r\nhello\r\n" + tail,
      "10000000000000005\r\nhello\r\n" + tail,
      chunk("hello", "", ";ext=1") + tail,
      chunk("hello", "", ";ext=\"quoted value\"") + tail,
      chunk("hello", "", ";a;b=c;d=\"e\"") + tail,
      chunk("hello", "", ";") + tail,
      chunk("hello", "", "; ext") + tail,
      chunk("hello", "", ";ext=\"unterminated") + tail,
      chunk("hello", "", ";" + std::string(4000, 'e')) + tail,
      chunk("hello", "", "\x01") + tail,
      chunk("hello", " ") + tail,
      chunk("hello", "", " ") + tail,
      "5\nhello\n0\n\n",
      "5\rhello\r\n0\r\n\r\n",
      "5\r\nhello\n0\r\n\r\n",
      "5\r\nhelloXX0\r\n\r\n",
      "3\r\nhello\r\n" + tail,
      "-5\r\nhello\r\n" + tail,
      "0x5\r\nhello\r\n" + tail,
      chunk("hello") + "0\r\nX-Trailer: t\r\n\r\n",
      chunk("hello") + "0\r\nContent-Length: 5\r\n\r\n",
      chunk("hello") + "0\r\nTransfer-Encoding: chunked\r\n\r\n",
      chunk("hello") + "0\r\nHost: evil\r\n\r\n",
      chunk("hello") + "0\r\nX-Trailer : t\r\n\r\n",
      chunk("hello") + "0\r\n",
      chunk("hello") + "0;ext=1\r\n\r\n",
      chunk("hello") + "00\r\n\r\n",
      chunk("he") + chunk("llo") + tail,
  };
}

/// The explicit families, each input a whole exchange as a client would send it.
inline std::vector<Case> explicitCases() {
  std::vector<Case> out;
  auto add = [&](std::string family, std::string bytes) {
    out.push_back({std::move(family), std::move(bytes)});
  };
  const std::string hidden = hiddenGet();
  const std::string zero_then_hidden = "0\r\n\r\n" + hidden;

  // CL.TE and TE.CL: the classic pair, both orders, with a request hidden where the other
  // framing would end the body.
  add("CL.TE", postHead() + "Content-Length: " + std::to_string(zero_then_hidden.size()) +
                   "\r\nTransfer-Encoding: chunked\r\n\r\n" + zero_then_hidden);
  add("CL.TE", postHead() + "Transfer-Encoding: chunked\r\nContent-Length: " +
                   std::to_string(zero_then_hidden.size()) + "\r\n\r\n" + zero_then_hidden);
  {
    std::string inner = "GPOST / HTTP/1.1\r\nHost: x\r\nx-case: " + std::string(kCaseMark) +
                        "\r\nContent-Length: 15\r\n\r\nx=1";
    add("TE.CL", postHead() + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
                     chunk(inner) + "0\r\n\r\n");
    add("TE.CL", postHead() + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" +
                     chunk(inner) + "0\r\n\r\n");
  }

  // TE.TE: every Transfer-Encoding spelling, alone and beside a Content-Length, with a body
  // that is "hello" chunked followed by a hidden request (so a parser that reads it as
  // Content-Length: 5, or as no body, sees something else than one that decodes the chunks).
  for (const auto& te : transferEncodingLines()) {
    add("TE.TE", postHead() + te + "\r\n" + chunkedHello() + hidden);
    add("TE.TE+CL", postHead() + te + "Content-Length: 5\r\n\r\n" + chunkedHello() + hidden);
    add("CL+TE.TE", postHead() + "Content-Length: 3\r\n" + te + "\r\n" + chunkedHello() + hidden);
  }

  // Content-Length spellings: the body is "hello" then a hidden request.
  for (const auto& cl : contentLengthValues()) {
    add("CL", postHead() + "Content-Length: " + cl + "\r\n\r\nhello" + hidden);
  }
  add("CL.CL", postHead() + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello" + hidden);
  add("CL.CL", postHead() + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!" + hidden);
  add("CL.CL", postHead() + "Content-Length: 6\r\nContent-Length: 5\r\n\r\nhello!" + hidden);
  add("CL.CL", postHead() + "Content-Length: 5\r\nContent-Length : 6\r\n\r\nhello!" + hidden);
  add("CL.CL", postHead() + "Content-Length: 5\r\ncontent-length: 0\r\n\r\nhello" + hidden);
  add("CL.CL",
      postHead() + "Content-Length: 5\r\nX-Fold: a\r\n Content-Length: 0\r\n\r\nhello" + hidden);
  add("CL.CL", postHead() + "Content-Length:\r\n 5\r\n\r\nhello" + hidden);
  add("CL.CL", postHead() + "Content-Length: 0\r\nContent-Length: 5\r\n\r\nhello" + hidden);

  // Chunked bodies: sizes, extensions, line endings, trailers, then a hidden request.
  for (const auto& body : chunkedBodies()) {
    add("chunked", postHead() + "Transfer-Encoding: chunked\r\n\r\n" + body + hidden);
  }

  // Line endings and field syntax in the head.
  const std::string get = "GET /h HTTP/1.1\r\n";
  const std::string mark = "x-case: " + std::string(kCaseMark);
  add("line endings", "GET /h HTTP/1.1\nHost: x\nclient-id: c\n" + mark + "\n\n");
  add("line endings", get + "Host: x\r\nclient-id: c\n" + mark + "\r\n\r\n");
  add("line endings", get + "Host: x\rclient-id: c\r\n" + mark + "\r\n\r\n");
  add("line endings", get + "Host: x\r\nX-A: a\rContent-Length: 5\r\n" + mark + "\r\n\r\nhello");
  add("line endings", "GET /h\r HTTP/1.1\r\nHost: x\r\n" + mark + "\r\n\r\n");
  add("line endings", get + "Host: x\r\n" + mark + "\r\n\n");
  add("line endings", get + "Host: x\r\n" + mark + "\r\n\r\r\n");
  add("whitespace before colon", get + "Host : x\r\n" + mark + "\r\n\r\n");
  add("whitespace before colon", get + "Host: x\r\n" + mark + "\r\nX-A\t: a\r\n\r\n");
  add("whitespace before colon", postHead() + "Content-Length : 5\r\n\r\nhello" + hidden);
  add("obs-fold", get + "Host: x\r\n" + mark + "\r\nX-A: a\r\n b\r\n\r\n");
  add("obs-fold", get + "Host: x\r\n" + mark + "\r\nX-A: a\r\n\tb\r\n\r\n");
  add("obs-fold", get + "Host: x\r\n" + mark + "\r\nX-A: a\r\n \r\n\r\n");
  add("obs-fold", get + " Host: x\r\n" + mark + "\r\n\r\n");
  add("obs-fold", get + "Host: x\r\n" + mark + "\r\nX-A: a\r\n Content-Length: 5\r\n\r\nhello");
  add("NUL", get + "Host: x\r\n" + mark + "\r\nX-Nul: a" + std::string(1, '\0') + "b\r\n\r\n");
  add("NUL", get + "Host: x\r\n" + mark + "\r\nX-Nul" + std::string(1, '\0') + ": b\r\n\r\n");
  add("NUL", std::string("GET /h") + '\0' + " HTTP/1.1\r\nHost: x\r\n" + mark + "\r\n\r\n");
  add("control chars", get + "Host: x\r\n" + mark +
                           "\r\nX-A: a\x01"
                           "b\r\n\r\n");
  add("control chars", get + "Host: x\r\n" + mark +
                           "\r\nX-A: a\x7f"
                           "b\r\n\r\n");
  add("long line",
      get + "Host: x\r\n" + mark + "\r\nX-Long: " + std::string(20000, 'l') + "\r\n\r\n");
  add("long line",
      get + "Host: x\r\n" + mark + "\r\nX-Long: " + std::string(40000, 'l') + "\r\n\r\n");
  add("long line",
      "GET /" + std::string(40000, 'p') + " HTTP/1.1\r\nHost: x\r\n" + mark + "\r\n\r\n");

  // Host: duplicates, absolute-form targets that disagree with it.
  add("Host", get + "Host: x\r\nHost: y\r\n" + mark + "\r\n\r\n");
  add("Host", get + "Host: x\r\nHost: x\r\n" + mark + "\r\n\r\n");
  add("Host", get + "Host: x\r\nhost: y\r\n" + mark + "\r\n\r\n");
  add("Host", get + "Host: x, y\r\n" + mark + "\r\n\r\n");
  add("Host", get + "Host:\r\n" + mark + "\r\n\r\n");
  add("Host", get + mark + "\r\n\r\n");
  add("absolute-form", "GET http://x/h HTTP/1.1\r\nHost: x\r\n" + mark + "\r\n\r\n");
  add("absolute-form", "GET http://other.example/h HTTP/1.1\r\nHost: x\r\n" + mark + "\r\n\r\n");
  add("absolute-form",
      "GET http://other.example:8080/h?q=1 HTTP/1.1\r\nHost: x\r\n" + mark + "\r\n\r\n");
  add("absolute-form", "GET https://other.example HTTP/1.1\r\nHost: x\r\n" + mark + "\r\n\r\n");
  add("absolute-form", "GET http://other.example/h HTTP/1.1\r\n" + mark + "\r\n\r\n");
  add("absolute-form", "GET http://a@other.example/h HTTP/1.1\r\nHost: x\r\n" + mark + "\r\n\r\n");
  add("absolute-form", "GET //other.example/h HTTP/1.1\r\nHost: x\r\n" + mark + "\r\n\r\n");
  add("absolute-form", "GET * HTTP/1.1\r\nHost: x\r\n" + mark + "\r\n\r\n");

  // HTTP/1.0: keep-alive, a Transfer-Encoding, no Host, a pipelined second request.
  const std::string get10 = "GET /h HTTP/1.0\r\nHost: x\r\n" + mark + "\r\n";
  add("HTTP/1.0", get10 + "\r\n");
  add("HTTP/1.0", "GET /h HTTP/1.0\r\n" + mark + "\r\n\r\n");
  add("HTTP/1.0", get10 + "Connection: keep-alive\r\n\r\n" + hidden);
  add("HTTP/1.0", get10 + "Connection: keep-alive\r\n\r\n" + get10 + "\r\n");
  add("HTTP/1.0",
      postHead("/t", "1.0") + "Transfer-Encoding: chunked\r\n\r\n" + chunkedHello() + hidden);
  add("HTTP/1.0", postHead("/t", "1.0") +
                      "Connection: keep-alive\r\nTransfer-Encoding: "
                      "chunked\r\nContent-Length: 5\r\n\r\n" +
                      chunkedHello() + hidden);
  add("HTTP/1.0", postHead("/t", "1.0") +
                      "Connection: keep-alive\r\nContent-Length: 5\r\n\r\n"
                      "hello" +
                      hidden);
  add("HTTP/1.0", "GET /h HTTP/1.01\r\nHost: x\r\n" + mark + "\r\n\r\n");
  add("HTTP/1.0", "GET /h HTTP/1.2\r\nHost: x\r\n" + mark + "\r\n\r\n");
  add("HTTP/1.0", "GET /h http/1.1\r\nHost: x\r\n" + mark + "\r\n\r\n");

  // Expect: 100-continue, with the body at once, and with framing games.
  add("Expect", postHead() + "Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello" + hidden);
  add("Expect", postHead() + "Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n" +
                    chunkedHello() + hidden);
  add("Expect", postHead() + "Expect: 100-continue\r\nContent-Length: 0\r\n\r\n" + hidden);
  add("Expect", postHead() + "Expect: 100-continue, foo\r\nContent-Length: 5\r\n\r\nhello");
  add("Expect", postHead("/t", "1.0") + "Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello");

  // Pipelining: requests after bodies of every framing, and a GET with a body.
  add("pipelined", postHead() + "Content-Length: 5\r\n\r\nhello" + hidden + hidden);
  add("pipelined", postHead() + "Transfer-Encoding: chunked\r\n\r\n" + chunkedHello() + hidden +
                       postHead() + "Content-Length: 2\r\n\r\nhi");
  add("pipelined", "GET /h HTTP/1.1\r\nHost: x\r\n" + mark + "\r\nContent-Length: " +
                       std::to_string(hidden.size()) + "\r\n\r\n" + hidden);
  add("pipelined",
      "GET /h HTTP/1.1\r\nHost: x\r\n" + mark + "\r\n\r\n" + hidden + "GARBAGE\r\n\r\n");
  add("pipelined", postHead() + "Content-Length: 0\r\n\r\n" + hidden);
  add("pipelined",
      "HEAD /h HTTP/1.1\r\nHost: x\r\n" + mark + "\r\nContent-Length: 5\r\n\r\nhello" + hidden);
  return out;
}

/// `n` inputs drawn from the same pieces by `rng`: a start line, Host games, zero to two framing
/// fields (with or without a body that matches), an Expect, a Connection, a field in odd syntax,
/// and maybe a request after it all.
inline std::vector<Case> randomCases(uint64_t seed, int n) {
  std::mt19937_64 rng(seed);
  auto pick = [&](const auto& v) -> const auto& {
    return v[rng() % v.size()];
  };
  auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };
  const auto te_lines = transferEncodingLines();
  const auto cl_values = contentLengthValues();
  const auto chunked_bodies = chunkedBodies();
  const std::vector<std::string> methods = {"GET", "POST", "PUT", "DELETE", "OPTIONS"};
  const std::vector<std::string> targets = {
      "/r", "/r?q=1", "http://x/r", "http://other.example/r", "/r%20s", "/a/../r"};
  const std::vector<std::string> odd_fields = {"X-A : a\r\n",
                                               "X-A: a\r\n b\r\n",
                                               "X-A: a\rb\r\n",
                                               "X-A: a\nX-B: b\r\n",
                                               std::string("X-Nul: a\0b\r\n", 12),
                                               "X-Long: " + std::string(3000, 'l') + "\r\n",
                                               ": empty-name\r\n",
                                               "X-A:\r\n",
                                               "Connection: x-a\r\nX-A: a\r\n",
                                               "Trailer: X-T\r\n",
                                               "TE: trailers\r\n",
                                               "Upgrade: h2c\r\n",
                                               "Keep-Alive: timeout=5\r\n",
                                               "Proxy-Connection: keep-alive\r\n"};
  const std::vector<std::string> bodies = {"", "hello", "hello" + hiddenGet(),
                                           chunkedHello() + hiddenGet()};
  std::vector<Case> out;
  for (int i = 0; i < n; ++i) {
    std::string version = chance(85) ? "1.1" : "1.0";
    std::string s = pick(methods) + " " + pick(targets) + " HTTP/" + version + "\r\n";
    int host = static_cast<int>(rng() % 10);
    if (host < 7) s += "Host: x\r\n";
    if (host == 7) s += "Host: x\r\nHost: other.example\r\n";
    if (host == 8) s += "Host : x\r\n";
    s += "client-id: c" + std::to_string(rng() % 4) + "\r\nx-case: " + std::string(kCaseMark) +
         "\r\n";
    std::string family = "random";
    std::string body;
    int framing = static_cast<int>(rng() % 6);
    if (framing == 1 || framing == 3 || framing == 5) {
      s += "Content-Length: " + pick(cl_values) + "\r\n";
      family += " CL";
    }
    if (framing == 2 || framing == 3 || framing == 4) {
      s += pick(te_lines);
      family += " TE";
    }
    if (framing == 4 || framing == 5) {
      s += chance(50) ? "Content-Length: 5\r\n" : pick(te_lines);
      family += "+";
    }
    body = framing >= 2 && chance(60) ? pick(chunked_bodies) : pick(bodies);
    if (chance(20)) s += "Expect: 100-continue\r\n";
    if (chance(20)) s += chance(50) ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
    if (chance(30)) s += pick(odd_fields);
    s += chance(95) ? "\r\n" : "\n";
    s += body;
    if (chance(30)) s += hiddenGet("/next");
    out.push_back({family, std::move(s)});
  }
  return out;
}

}  // namespace sticky::test::smuggling
