#include "redis/sentinel.h"

#include <algorithm>
#include <charconv>

#include "common/log.h"

namespace sticky::proxy::redis {

namespace {

using ConnectionPtr = std::shared_ptr<Connection>;

// Handshake commands get the connect timeout (or the command timeout, if longer): a freshly
// started server or a busy sentinel may take longer than a stick-table lookup should.
Connection::Timeouts handshakeTimeouts(const ClientOptions& options) {
  auto t = std::max(options.connect_timeout, options.command_timeout);
  return {t, 2 * t};
}

Command authCommand(const std::string& username, const std::string& password) {
  if (username.empty()) return {"AUTH", password};
  return {"AUTH", username, password};
}

// What a server without a password answers to AUTH: Redis 5 "ERR Client sent AUTH, but no
// password is set", Redis 6+ "ERR AUTH <password> called without any password configured...".
bool noPasswordSet(const RespValue& reply) {
  if (!reply.isError()) return false;
  return reply.text.find("no password is set") != std::string::npos ||
         reply.text.rfind("ERR AUTH", 0) == 0;
}

struct Credentials {
  std::string username;
  std::string password;
  bool lenient = false;  // go on when the server has no password (sentinels)
};

// Connects and, with a password, authenticates. The connection is closed on failure.
void connectAndAuth(boost::asio::io_context& io, const Address& address,
                    const ClientOptions& options, Credentials creds, Opened done) {
  auto conn = Connection::create(io, handshakeTimeouts(options), options.tls);
  conn->connect(address, options.connect_timeout,
                [conn, creds = std::move(creds), done = std::move(done)](Result<Ok> connected) {
                  if (!connected) {
                    done(unexpected(connected.error()));
                    return;
                  }
                  if (creds.password.empty()) {
                    done(conn);
                    return;
                  }
                  conn->send(authCommand(creds.username, creds.password),
                             [conn, lenient = creds.lenient, done](Result<RespValue> reply) {
                               if (!reply) {
                                 conn->close(reply.error());
                                 done(unexpected(reply.error()));
                                 return;
                               }
                               if (reply->isError() && !(lenient && noPasswordSet(*reply))) {
                                 Error error{"AUTH failed at " + conn->address().toString() + ": " +
                                                 reply->text,
                                             "AuthFailed"};
                                 conn->close(error);
                                 done(unexpected(std::move(error)));
                                 return;
                               }
                               done(conn);
                             });
                });
}

// Connects to `address`, authenticates, names the connection, and checks ROLE says master.
void openAt(boost::asio::io_context& io, const ClientOptions& options, const Address& address,
            std::string client_name, Opened done) {
  Credentials creds{options.username, options.password, false};
  connectAndAuth(io, address, options, creds,
                 [done, client_name = std::move(client_name)](Result<ConnectionPtr> opened) {
                   if (!opened) {
                     done(std::move(opened));
                     return;
                   }
                   ConnectionPtr conn = *opened;
                   // Pipelined ahead of ROLE; an error (a user not allowed CLIENT) changes nothing.
                   if (!client_name.empty())
                     conn->send({"CLIENT", "SETNAME", client_name}, [](auto) {});
                   conn->send({"ROLE"}, [conn, done](Result<RespValue> reply) {
                     Result<Ok> role =
                         reply ? checkRole(*reply, conn->address()) : unexpected(reply.error());
                     if (!role) {
                       conn->close(role.error());
                       done(unexpected(role.error()));
                       return;
                     }
                     done(conn);
                   });
                 });
}

// One sentinel after another until one names the primary.
struct SentinelQuery : std::enable_shared_from_this<SentinelQuery> {
  boost::asio::io_context& io;
  ClientOptions options;
  std::function<void(Result<Address>)> done;
  size_t next = 0;
  std::string last_error = "no sentinel was asked";

  SentinelQuery(boost::asio::io_context& i, ClientOptions o, std::function<void(Result<Address>)> d)
      : io(i), options(std::move(o)), done(std::move(d)) {}

  void askNext() {
    if (next >= options.sentinels.size()) {
      done(fail("no sentinel named a primary for '" + options.master_name +
                    "' (last: " + last_error + ")",
                "NoPrimary"));
      return;
    }
    const Address& sentinel = options.sentinels[next++];
    Credentials creds =
        options.sentinel_password.empty()
            ? Credentials{options.username, options.password, true}
            : Credentials{options.sentinel_username, options.sentinel_password, true};
    connectAndAuth(io, sentinel, options, creds,
                   [self = shared_from_this()](Result<ConnectionPtr> opened) {
                     if (!opened) {
                       self->failed(opened.error());
                       return;
                     }
                     self->query(*opened);
                   });
  }

  void query(const ConnectionPtr& conn) {
    Command command{"SENTINEL", "get-master-addr-by-name", options.master_name};
    conn->send(command, [self = shared_from_this(), conn](Result<RespValue> reply) {
      conn->close(Error{"the sentinel query is over", "Disconnected"});
      Result<Address> primary =
          reply ? parseMasterAddr(*reply, self->options.master_name) : unexpected(reply.error());
      if (!primary) {
        self->failed(
            Error{"sentinel " + conn->address().toString() + ": " + primary.error().message,
                  primary.error().code});
        return;
      }
      self->done(std::move(primary));
    });
  }

  void failed(const Error& error) {
    logDebug("redis sentinel gave no primary", {{"error", error.message}});
    last_error = error.message;
    askNext();
  }
};

}  // namespace

Result<Ok> checkRole(const RespValue& reply, const Address& address) {
  if (reply.isError()) {
    return fail("ROLE failed at " + address.toString() + ": " + reply.text, "NotPrimary");
  }
  if (!reply.isList() || reply.elements.empty() || !reply.elements[0].isString()) {
    return fail("ROLE at " + address.toString() + " gave an unexpected reply: " + describe(reply),
                "NotPrimary");
  }
  const std::string& role = reply.elements[0].text;
  if (role != "master") {
    return fail(address.toString() + " is a " + role + ", not the primary", "NotPrimary");
  }
  return Ok{};
}

Result<Address> parseMasterAddr(const RespValue& reply, std::string_view master_name) {
  if (reply.isNull()) {
    return fail("it monitors no primary named '" + std::string(master_name) + "'", "NoPrimary");
  }
  if (reply.isError()) return fail(reply.text, "NoPrimary");
  if (!reply.isList() || reply.elements.size() != 2 || !reply.elements[0].isString() ||
      !reply.elements[1].isString()) {
    return fail("unexpected reply to get-master-addr-by-name: " + describe(reply), "Protocol");
  }
  const std::string& port_text = reply.elements[1].text;
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return fail("the primary's port '" + port_text + "' is not a port number", "Protocol");
  }
  return Address{reply.elements[0].text, static_cast<uint16_t>(port)};
}

void askSentinels(boost::asio::io_context& io, const ClientOptions& options,
                  std::function<void(Result<Address>)> done) {
  auto query = std::make_shared<SentinelQuery>(io, options, std::move(done));
  query->askNext();
}

void openPrimary(boost::asio::io_context& io, const ClientOptions& options, size_t attempt,
                 std::string client_name, Opened done) {
  if (options.sentinels.empty()) {
    if (options.addresses.empty()) {
      done(fail("no Redis address is configured", "Unreachable"));
      return;
    }
    openAt(io, options, options.addresses[attempt % options.addresses.size()],
           std::move(client_name), std::move(done));
    return;
  }
  askSentinels(io, options,
               [&io, options, client_name = std::move(client_name),
                done = std::move(done)](Result<Address> primary) mutable {
                 if (!primary) {
                   done(unexpected(primary.error()));
                   return;
                 }
                 openAt(io, options, *primary, std::move(client_name), std::move(done));
               });
}

}  // namespace sticky::proxy::redis
