#include "redis/client.h"

#include <algorithm>
#include <charconv>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <type_traits>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/log.h"
#include "redis/connection.h"
#include "redis/sentinel.h"

namespace sticky::proxy::redis {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// ---- Address, ClientOptions -------------------------------------------------------------------

Result<Address> Address::parse(std::string_view text, uint16_t default_port) {
  std::string quoted = "'" + std::string(text) + "'";
  if (text.empty()) return fail("a Redis address is empty; give host:port");
  std::string_view host = text;
  std::optional<std::string_view> port_text;
  if (text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return fail("the Redis address " + quoted + " opens '[' without ']'; write [ipv6]:port");
    }
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return fail("the Redis address " + quoted + " has text after ']' that is not :port");
      }
      port_text = rest.substr(1);
    }
  } else if (size_t colon = text.find(':'); colon != std::string_view::npos) {
    // More than one ':' without brackets: a bare IPv6 address, no port.
    if (text.find(':', colon + 1) == std::string_view::npos) {
      host = text.substr(0, colon);
      port_text = text.substr(colon + 1);
    }
  }
  if (host.empty()) return fail("the Redis address " + quoted + " has no host; give host:port");
  uint16_t port = default_port;
  if (port_text) {
    unsigned value = 0;
    auto [end, ec] =
        std::from_chars(port_text->data(), port_text->data() + port_text->size(), value);
    if (port_text->empty() || ec != std::errc() || end != port_text->data() + port_text->size() ||
        value == 0 || value > 65535) {
      return fail("the port in the Redis address " + quoted + " is not a number from 1 to 65535");
    }
    port = static_cast<uint16_t>(value);
  }
  return Address{std::string(host), port};
}

std::string Address::toString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<Ok> ClientOptions::validate() const {
  std::vector<std::string> problems;
  if (addresses.empty() && sentinels.empty()) {
    problems.push_back("no Redis address is given: set addresses (a primary) or sentinels");
  }
  if (!addresses.empty() && !sentinels.empty()) {
    problems.push_back(
        "both addresses and sentinels are given: use addresses for a primary or sentinels with "
        "a master name, not both");
  }
  if (!sentinels.empty() && master_name.empty()) {
    problems.push_back(
        "sentinel mode needs master_name, the name the sentinels know the "
        "primary by");
  }
  if (sentinels.empty() && !master_name.empty() && !addresses.empty()) {
    problems.push_back("master_name is only used with sentinels: remove it or give sentinels");
  }
  for (const auto& list : {&addresses, &sentinels}) {
    for (const Address& a : *list) {
      if (a.host.empty() || a.port == 0) problems.push_back("a Redis address has no host or port");
    }
  }
  auto positive = [&](std::chrono::milliseconds value, const char* name) {
    if (value.count() <= 0) problems.push_back(std::string(name) + " must be more than 0 ms");
  };
  positive(connect_timeout, "connect_timeout");
  positive(command_timeout, "command_timeout");
  positive(stall_timeout, "stall_timeout");
  positive(reconnect_min, "reconnect_min");
  positive(reconnect_max, "reconnect_max");
  if (reconnect_max < reconnect_min) {
    problems.push_back("reconnect_max must not be less than reconnect_min");
  }
  if (stall_timeout < command_timeout) {
    problems.push_back("stall_timeout must not be less than command_timeout");
  }
  for (const std::string& channel : channels) {
    if (channel.empty()) problems.push_back("a pub/sub channel name is empty");
  }
  if (problems.empty()) return Ok{};
  std::string message;
  for (const std::string& p : problems) message += (message.empty() ? "" : "; ") + p;
  return fail("Redis client options: " + message + ".", "Invalid");
}

// ---- Client::Impl -----------------------------------------------------------------------------

// Both connections as one small machine each (the "link"):
//
//   Idle --start--> Opening --opened--> Up --closed--> Backoff --timer--> Opening ...
//                      \--failed-------------------->/
//   any --stop--> Stopped (no timer, no reopen; handlers that were queued find `stopped_`)
//
// Every handler holds a weak_ptr to Impl (or a shared_ptr only while it must run), so the Client
// may be destroyed after stop() while the io_context still holds handlers.
struct Client::Impl : std::enable_shared_from_this<Client::Impl> {
  struct Link {
    explicit Link(asio::io_context& io, bool p) : timer(io), pubsub(p) {}
    std::shared_ptr<Connection> conn;  // while Up
    asio::steady_timer timer;          // Backoff
    std::chrono::milliseconds backoff{0};
    size_t attempt = 0;
    bool pubsub;
  };

  Impl(asio::io_context& i, ClientOptions o, std::shared_ptr<RedisStats> s)
      : io(i),
        options(std::move(o)),
        stats(std::move(s)),
        command(i, false),
        pubsub(i, true),
        keepalive(i) {
    if (!stats) stats = std::make_shared<RedisStats>();
    command.backoff = pubsub.backoff = options.reconnect_min;
  }

  asio::io_context& io;
  const ClientOptions options;
  std::shared_ptr<RedisStats> stats;
  Link command;
  Link pubsub;
  // The pub/sub connection waits for nothing, so a hung server would go unnoticed: it is sent a
  // PING every stall_timeout / 4 and closed when nothing came for stall_timeout.
  asio::steady_timer keepalive;
  Clock::time_point pubsub_seen;

  // Set before start(), read on the io thread only while `callbacks_mutex` is held, so that once
  // stop() returns none of them runs again.
  std::function<void(uint64_t)> on_connected;
  std::function<void()> on_disconnected;
  MessageFn on_message;
  std::function<void()> on_subscribed;
  std::recursive_mutex callbacks_mutex;

  std::atomic<bool> started{false};
  std::atomic<bool> stopped{false};
  std::atomic<bool> ran_on_io{false};  // a handler of ours ran: somebody runs the io_context
  std::atomic<bool> up{false};         // the command connection is connected
  std::atomic<uint64_t> epoch{0};
  mutable std::mutex primary_mutex;
  std::string primary;
  std::set<std::string> awaiting_subscribe;

  template <class Fn>
  void callback(Fn&& fn) {
    std::lock_guard lock(callbacks_mutex);
    if (!stopped) fn();
  }

  void open(Link& link) {
    if (stopped) return;
    size_t attempt = link.attempt++;
    std::string name = options.client_name;
    if (link.pubsub && !name.empty()) name += ":events";
    openPrimary(io, options, attempt, std::move(name),
                [weak = weak_from_this(),
                 pubsub = link.pubsub](Result<std::shared_ptr<Connection>> opened) {
                  auto self = weak.lock();
                  if (!self) {
                    if (opened) (*opened)->close(Error{"the client is gone", "Disconnected"});
                    return;
                  }
                  self->opened(pubsub ? self->pubsub : self->command, std::move(opened));
                });
  }

  void opened(Link& link, Result<std::shared_ptr<Connection>> result) {
    if (stopped) {
      if (result) (*result)->close(Error{"the Redis client stopped", "Disconnected"});
      return;
    }
    if (!result) {
      stats->connect_failures++;
      const Error& e = result.error();
      std::string_view what = e.code == "AuthFailed" ? "redis auth failed" : "redis connect failed";
      logWarn(what, {{"connection", link.pubsub ? "pubsub" : "command"},
                     {"client", options.client_name},
                     {"error", e.message},
                     {"code", e.code},
                     {"retry_ms", link.backoff.count()}});
      retryLater(link);
      return;
    }
    link.conn = std::move(*result);
    link.conn->setTimeouts({options.command_timeout, options.stall_timeout});
    link.conn->onClosed([weak = weak_from_this(), pubsub = link.pubsub](const Error& e) {
      if (auto self = weak.lock()) self->closed(pubsub ? self->pubsub : self->command, e);
    });
    link.backoff = options.reconnect_min;
    link.pubsub ? subscribe(link) : commandUp(link);
  }

  void commandUp(Link& link) {
    std::string address = link.conn->address().toString();
    {
      std::lock_guard lock(primary_mutex);
      primary = address;
    }
    uint64_t e = ++epoch;
    stats->connects++;
    up = true;
    logInfo("redis connected",
            {{"primary", address}, {"epoch", e}, {"client", options.client_name}});
    callback([&] {
      if (on_connected) on_connected(e);
    });
  }

  void subscribe(Link& link) {
    awaiting_subscribe = {options.channels.begin(), options.channels.end()};
    link.conn->onPush([weak = weak_from_this()](RespValue value) {
      if (auto self = weak.lock()) self->pushed(std::move(value));
    });
    Command command{"SUBSCRIBE"};
    command.insert(command.end(), options.channels.begin(), options.channels.end());
    link.conn->sendUnanswered(command);
    pubsub_seen = Clock::now();
    keepAlive();
    logInfo("redis pubsub connected",
            {{"primary", link.conn->address().toString()}, {"channels", options.channels.size()}});
  }

  void keepAlive() {
    keepalive.expires_after(std::max(options.stall_timeout / 4, std::chrono::milliseconds(1)));
    keepalive.async_wait([weak = weak_from_this(),
                          conn = std::weak_ptr(pubsub.conn)](boost::system::error_code ec) {
      auto self = weak.lock();
      auto c = conn.lock();
      if (ec || !self || self->stopped || !c || c != self->pubsub.conn) return;
      if (Clock::now() - self->pubsub_seen > self->options.stall_timeout) {
        Error error{"Redis at " + c->address().toString() + " answered nothing on the pub/sub " +
                        "connection for " + std::to_string(self->options.stall_timeout.count()) +
                        " ms; taken for dead",
                    "Disconnected"};
        c->close(error);
        self->closed(self->pubsub, error);
        return;
      }
      c->sendUnanswered({"PING"});
      self->keepAlive();
    });
  }

  // A pub/sub push: ["subscribe", channel, count], ["message", channel, payload], ["pong", ""].
  void pushed(RespValue value) {
    pubsub_seen = Clock::now();
    if (!value.isList() || value.elements.empty() || !value.elements[0].isString()) return;
    const std::string& kind = value.elements[0].text;
    if (kind == "message" && value.elements.size() == 3) {
      stats->messages++;
      callback([&] {
        if (on_message) on_message(value.elements[1].text, value.elements[2].text);
      });
    } else if (kind == "subscribe" && value.elements.size() >= 2) {
      if (awaiting_subscribe.erase(value.elements[1].text) == 1 && awaiting_subscribe.empty()) {
        callback([&] {
          if (on_subscribed) on_subscribed();
        });
      }
    }
  }

  void closed(Link& link, const Error& error) {
    link.conn.reset();
    logWarn("redis connection lost", {{"connection", link.pubsub ? "pubsub" : "command"},
                                      {"client", options.client_name},
                                      {"error", error.message},
                                      {"retry_ms", link.backoff.count()}});
    if (!link.pubsub) {
      up = false;
      callback([&] {
        if (on_disconnected) on_disconnected();
      });
    }
    retryLater(link);
  }

  void retryLater(Link& link) {
    if (stopped) return;
    link.timer.expires_after(link.backoff);
    link.backoff = std::min(link.backoff * 2, options.reconnect_max);
    link.timer.async_wait(
        [weak = weak_from_this(), pubsub = link.pubsub](boost::system::error_code ec) {
          auto self = weak.lock();
          if (ec || !self) return;
          self->open(pubsub ? self->pubsub : self->command);
        });
  }

  // ---- commands (io thread) ----

  void reject(const Done& done) {
    stats->rejected++;
    stats->errors++;
    done(fail("Redis is not connected", "Disconnected"));
  }

  // `cmd`: a Command, or one already encoded (std::string_view).
  template <class Cmd>
  void send(const Cmd& cmd, Done done) {
    if (stopped || !command.conn) {
      reject(done);
      return;
    }
    stats->commands++;
    auto observed = [weak = weak_from_this(), conn = std::weak_ptr(command.conn),
                     queued = Clock::now(), done = std::move(done)](CommandResult result) {
      auto self = weak.lock();
      bool demoted = false;
      if (self) {
        RedisStats& s = *self->stats;
        if (result) {
          auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - queued);
          s.latency_count++;
          s.latency_sum_us += static_cast<uint64_t>(us.count());
          demoted = result->isError() && result->text.rfind("READONLY", 0) == 0;
        } else {
          s.errors++;
          if (result.error().code == "Timeout") s.timeouts++;
        }
      }
      done(std::move(result));
      if (demoted) {
        if (auto c = conn.lock(); c && c->isOpen()) {
          logWarn("redis primary was demoted (READONLY); reconnecting",
                  {{"primary", c->address().toString()}});
          // The link reconnects; the next connection asks for the primary again.
          self->demote(c);
        }
      }
    };
    if constexpr (std::is_same_v<Cmd, std::string_view>) {
      command.conn->sendEncoded(cmd, std::move(observed));
    } else {
      command.conn->send(cmd, std::move(observed));
    }
  }

  void demote(const std::shared_ptr<Connection>& conn) {
    if (command.conn != conn) return;
    Error error{"the Redis primary was demoted (READONLY)", "Disconnected"};
    command.conn.reset();
    conn->close(error);
    closed(command, error);
  }

  void stopNow() {
    ran_on_io = true;
    command.timer.cancel();
    pubsub.timer.cancel();
    keepalive.cancel();
    Error error{"the Redis client stopped", "Disconnected"};
    for (Link* link : {&command, &pubsub}) {
      if (auto conn = std::move(link->conn)) conn->close(error);
    }
    up = false;
  }
};

// ---- Client -----------------------------------------------------------------------------------

Client::Client(asio::io_context& io, ClientOptions options, std::shared_ptr<RedisStats> stats)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(stats))) {}

Client::~Client() {
  stop();
}

void Client::onConnected(std::function<void(uint64_t)> fn) {
  impl_->on_connected = std::move(fn);
}
void Client::onDisconnected(std::function<void()> fn) {
  impl_->on_disconnected = std::move(fn);
}
void Client::onMessage(MessageFn fn) {
  impl_->on_message = std::move(fn);
}
void Client::onSubscribed(std::function<void()> fn) {
  impl_->on_subscribed = std::move(fn);
}

void Client::start() {
  if (impl_->started.exchange(true)) return;
  asio::post(impl_->io, [self = impl_] {
    self->ran_on_io = true;
    self->open(self->command);
    if (!self->options.channels.empty()) self->open(self->pubsub);
  });
}

void Client::stop() {
  Impl& impl = *impl_;
  {
    // Once this returns no user callback runs again (one running now is waited for).
    std::lock_guard lock(impl.callbacks_mutex);
    if (impl.stopped.exchange(true)) return;
  }
  if (impl.io.get_executor().running_in_this_thread()) {
    impl.stopNow();
    return;
  }
  auto closed = std::make_shared<std::promise<void>>();
  std::future<void> done = closed->get_future();
  asio::post(impl.io, [self = impl_, closed] {
    self->stopNow();
    closed->set_value();
  });
  // Wait for the close only when somebody runs the io_context; otherwise it runs the close
  // when it is run (the header's contract).
  if (!impl.ran_on_io) return;
  while (done.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
    if (impl.io.stopped()) return;
  }
}

bool Client::connected() const {
  return impl_->up.load();
}

uint64_t Client::epoch() const {
  return impl_->epoch.load();
}

std::string Client::primary() const {
  std::lock_guard lock(impl_->primary_mutex);
  return impl_->primary;
}

void Client::execute(Command command, Done done) {
  asio::post(impl_->io,
             [self = impl_, command = std::move(command), done = std::move(done)]() mutable {
               self->send(command, std::move(done));
             });
}

void Client::executeHere(std::string_view encoded, Done done) {
  impl_->send(encoded, std::move(done));
}

void Client::executeBatch(std::vector<Command> commands, BatchDone done) {
  asio::post(impl_->io,
             [self = impl_, commands = std::move(commands), done = std::move(done)]() mutable {
               if (commands.empty()) {
                 done({});
                 return;
               }
               struct Batch {
                 std::vector<std::optional<CommandResult>> results;
                 size_t remaining;
                 BatchDone done;
               };
               auto batch = std::make_shared<Batch>();
               batch->results.resize(commands.size());
               batch->remaining = commands.size();
               batch->done = std::move(done);
               for (size_t i = 0; i < commands.size(); ++i) {
                 self->send(commands[i], [batch, i](CommandResult r) {
                   batch->results[i] = std::move(r);
                   if (--batch->remaining > 0) return;
                   std::vector<CommandResult> out;
                   out.reserve(batch->results.size());
                   for (auto& r : batch->results) out.push_back(std::move(*r));
                   batch->done(std::move(out));
                 });
               }
             });
}

}  // namespace sticky::proxy::redis
