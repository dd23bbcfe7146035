#pragma once
// Finding and opening the primary, the step before every (re)connection of either of the
// Client's connections:
//
//   direct:   addresses[attempt % n] ──┐
//   sentinel: each sentinel in turn ───┴─> connect ─> AUTH (if a password) ─> ROLE == master
//             SENTINEL get-master-addr-by-name <master>                        ─> open
//
// Through Sentinel the primary is asked for on every attempt, so a reconnection after a
// failover finds the promoted replica. A server whose ROLE is not master (a demoted primary, a
// sentinel that has not caught up yet) is refused like an unreachable one: the Client backs off
// and asks again.
//
// Sentinels often run without a password while the data servers have one: when a sentinel
// answers AUTH with "no password is set" (or "ERR AUTH ... called without any password"), the
// query goes on without it.
//
// Error codes: "Unreachable" (connect failed), "AuthFailed", "NotPrimary", "NoPrimary" (no
// sentinel named a primary), "Timeout"/"Disconnected"/"Protocol" (a handshake command failed).

#include <functional>
#include <memory>

#include <boost/asio/io_context.hpp>

#include "common/result.h"
#include "redis/client.h"
#include "redis/connection.h"

namespace sticky::proxy::redis {

using Opened = std::function<void(Result<std::shared_ptr<Connection>>)>;

/// Opens an authenticated connection to the primary (see above), named `client_name` (CLIENT
/// SETNAME, its reply ignored; empty: not named). `attempt` picks the address in direct mode.
/// `done` runs once on the io_context's thread.
void openPrimary(boost::asio::io_context& io, const ClientOptions& options, size_t attempt,
                 std::string client_name, Opened done);

/// Asks the sentinels in turn for the address of the primary named options.master_name.
void askSentinels(boost::asio::io_context& io, const ClientOptions& options,
                  std::function<void(Result<Address>)> done);

/// Parses a ROLE reply: Ok when it names a master, else an error coded "NotPrimary".
Result<Ok> checkRole(const RespValue& reply, const Address& address);

/// Parses a SENTINEL get-master-addr-by-name reply ([host, port] or nil).
Result<Address> parseMasterAddr(const RespValue& reply, std::string_view master_name);

}  // namespace sticky::proxy::redis
