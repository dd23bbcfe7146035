// One connection against servers that misbehave in ways a real redis-server will not: bytes that
// are not RESP, a reply nobody asked for. (The well-behaved paths are in client_test.cc.)
#include "redis/connection.h"

#include <doctest/doctest.h>

#include <boost/asio.hpp>

#include "proxy/redis/client_fixture.h"
#include "support/process.h"

namespace sticky::proxy::redis {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace testing;
using sticky::test::waitFor;

// Answers ROLE as a primary and every other command with what `answer` returns for its name,
// sent raw: it need not be RESP.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::function<std::string(const std::string& command)> answer)
      : answer_(std::move(answer)), acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~ScriptedServer() {
    io_.stop();
    thread_.join();
  }
  std::string address() const {
    return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  int connections() const { return connections_; }

 private:
  struct Session {
    explicit Session(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    std::string in;
    char buf[4096];
  };

  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) return;
      connections_++;
      read(std::make_shared<Session>(std::move(socket)));
      accept();
    });
  }

  void read(std::shared_ptr<Session> s) {
    s->socket.async_read_some(
        asio::buffer(s->buf), [this, s](boost::system::error_code ec, size_t n) {
          if (ec) return;
          s->in.append(s->buf, n);
          std::string out;
          while (true) {
            RespParse p = parseResp(s->in);
            if (p.status != RespParse::Status::Done) break;
            s->in.erase(0, p.consumed);
            const std::string& name = p.value.elements.at(0).text;
            out += name == "ROLE" ? "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n" : answer_(name);
          }
          boost::system::error_code ignored;
          asio::write(s->socket, asio::buffer(out), ignored);
          read(s);
        });
  }

  std::function<std::string(const std::string&)> answer_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::atomic<int> connections_{0};
};

}  // namespace

TEST_CASE(
    "redis connection: bytes that are not RESP close it (Protocol) and the client reconnects") {
  ScriptedServer server([](const std::string&) { return std::string("?garbage\r\n"); });
  IoThread io;
  auto stats = std::make_shared<RedisStats>();
  Client client(io.io(), directOptions(server.address()), stats);
  client.start();
  REQUIRE(waitFor([&] { return client.connected(); }, 10s));
  CHECK(text(run(client, {"PING"})) == "failed: Protocol");
  CHECK(waitFor([&] { return client.epoch() >= 2; }, 10s));
  CHECK(server.connections() >= 2);
  CHECK(stats->errors.load() >= 1);
}

TEST_CASE("redis connection: an extra reply loses the order - pending commands fail, it closes") {
  // Two replies to one PING: the second would be matched to the next command.
  ScriptedServer server([](const std::string&) { return std::string("+PONG\r\n+PONG\r\n"); });
  IoThread io;
  auto conn = Connection::create(io.io(), {3000ms, 6000ms});
  std::promise<Error> closed;
  std::promise<CommandResult> first;
  asio::post(io.io(), [&] {
    conn->onClosed([&](const Error& e) { closed.set_value(e); });
    conn->connect(Address::parse(server.address()).value(), 2000ms, [&](Result<Ok> r) {
      if (!r) {
        first.set_value(unexpected(r.error()));
        return;
      }
      conn->send({"PING"}, [&](CommandResult r) { first.set_value(std::move(r)); });
    });
  });
  auto first_future = first.get_future();
  REQUIRE(first_future.wait_for(10s) == std::future_status::ready);
  CHECK(text(first_future.get()) == "PONG");
  auto closed_future = closed.get_future();
  REQUIRE(closed_future.wait_for(10s) == std::future_status::ready);
  Error error = closed_future.get();
  CHECK(error.code == "Protocol");
  CHECK(error.message.find("a reply nobody asked for") != std::string::npos);
  asio::post(io.io(), [conn] { conn->close(Error{"test over", "Disconnected"}); });
}

TEST_CASE("redis connection: connecting to a closed port fails with Unreachable") {
  IoThread io;
  auto conn = Connection::create(io.io(), {});
  std::promise<Result<Ok>> done;
  uint16_t port = static_cast<uint16_t>(sticky::test::freePort());
  asio::post(io.io(), [&] {
    conn->connect(Address{"127.0.0.1", port}, 2000ms, [&](Result<Ok> r) { done.set_value(r); });
  });
  auto future = done.get_future();
  REQUIRE(future.wait_for(10s) == std::future_status::ready);
  Result<Ok> r = future.get();
  REQUIRE(!r.ok());
  CHECK(r.error().code == "Unreachable");
  CHECK(r.error().message.find("cannot connect to 127.0.0.1:" + std::to_string(port)) == 0);
}

}  // namespace sticky::proxy::redis
