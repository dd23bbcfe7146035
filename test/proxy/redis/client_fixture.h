#pragma once
// What the Redis client tests share: an io_context on a thread of its own (as the proxy gives
// the client), a synchronous execute() for test code, and options with test-friendly timeouts.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"
#include "redis/client.h"

namespace sticky::proxy::redis::testing {

using namespace std::chrono_literals;

class IoThread {
 public:
  IoThread() : guard_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~IoThread() {
    guard_.reset();
    io_.stop();
    thread_.join();
  }
  boost::asio::io_context& io() { return io_; }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
};

/// Generous timeouts: the tests wait for outcomes, they do not measure speed.
inline ClientOptions directOptions(const std::string& address) {
  ClientOptions options;
  options.addresses = {Address::parse(address).value()};
  options.connect_timeout = 2000ms;
  options.command_timeout = 3000ms;
  options.stall_timeout = 6000ms;
  options.reconnect_min = 50ms;
  options.reconnect_max = 200ms;
  return options;
}

/// execute() and wait for its result (up to 20 s: a hang fails the test, not the suite).
inline CommandResult run(Client& client, Command command) {
  auto promise = std::make_shared<std::promise<CommandResult>>();
  auto future = promise->get_future();
  client.execute(std::move(command),
                 [promise](CommandResult r) { promise->set_value(std::move(r)); });
  if (future.wait_for(20s) != std::future_status::ready) {
    return fail("the test waited 20 s for a completion", "TestHang");
  }
  return future.get();
}

/// The reply text, "(error) ..." for an error reply, or "failed: <code>".
inline std::string text(const CommandResult& r) {
  if (!r) return "failed: " + r.error().code;
  return r->isString() ? r->text : describe(*r);
}

/// Lines logged while alive (the process-wide sink).
class LogCapture {
 public:
  LogCapture() {
    setLogSink([this](const std::string& line) {
      std::lock_guard lock(mutex_);
      lines_.push_back(line);
    });
  }
  ~LogCapture() { setLogSink({}); }
  bool contains(const std::string& text) {
    std::lock_guard lock(mutex_);
    for (const auto& line : lines_) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

}  // namespace sticky::proxy::redis::testing
