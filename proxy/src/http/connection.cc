#include "http/connection.h"

#include <utility>
#include <vector>

#include "http/client_connection.h"

namespace sticky::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {
constexpr size_t kMaxFreePieces = 32;
}  // namespace

ForwardingContext::ForwardingContext(asio::io_context& io, RouterHolder& routers,
                                     ServerStats& stats)
    : io_(io), routers_(routers), stats_(stats), sweep_timer_(io) {}

void ForwardingContext::scheduleSweep() {
  sweeping_ = true;
  sweep_timer_.expires_after(kDeadlineTick);
  sweep_timer_.async_wait([this](error_code ec) {
    if (ec) return;  // destroyed: touch nothing
    sweeping_ = false;
    if (connections_.empty()) return;
    auto now = SteadyClock::now();
    for (auto* c : connections_) c->checkDeadline(now);
    scheduleSweep();
  });
}

std::shared_ptr<const Router> ForwardingContext::router() {
  uint64_t generation = routers_.generation();
  if (generation != generation_) {
    generation_ = generation;
    auto shared = routers_.current();
    // A worker-local control block that holds the shared snapshot: per-request copies touch
    // only this worker's count.
    router_ = shared ? std::shared_ptr<const Router>(
                           shared.get(), [keep = shared](const Router*) mutable { keep.reset(); })
                     : nullptr;
  }
  return router_;
}

const Limits& ForwardingContext::limits() {
  auto r = router();
  return r ? r->config().limits : default_limits_;
}

void ForwardingContext::enableAccessLog(AccessLogSink& sink) {
  access_log_ = std::make_unique<AccessLogWriter>(io_, sink);
}

void ForwardingContext::serve(tcp::socket socket) {
  spawnClientConnection(*this, std::move(socket));
}

void ForwardingContext::startDraining() {
  draining_ = true;
  std::vector<ClientConnection*> all(connections_.begin(), connections_.end());
  for (auto* c : all) c->closeIfIdle();
}

void ForwardingContext::closeAll() {
  std::vector<ClientConnection*> all(connections_.begin(), connections_.end());
  for (auto* c : all) c->close();
  pool_.clear();
}

std::unique_ptr<char[]> ForwardingContext::takePiece() {
  if (free_pieces_.empty()) return std::make_unique_for_overwrite<char[]>(kRelayPieceSize);
  auto piece = std::move(free_pieces_.back());
  free_pieces_.pop_back();
  return piece;
}

void ForwardingContext::returnPiece(std::unique_ptr<char[]> piece) {
  if (piece && free_pieces_.size() < kMaxFreePieces) free_pieces_.push_back(std::move(piece));
}

}  // namespace sticky::proxy
