#include "http/drain_aware_read.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace sticky::proxy {

void enableDrainHint(boost::asio::ip::tcp::socket& socket) {
#if STICKY_DRAIN_AWARE_READ
  int on = 1;
  // Best effort: without the hint, reads behave as Asio's.
  (void)::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_INQ, &on, sizeof on);
#else
  (void)socket;
#endif
}

#if STICKY_DRAIN_AWARE_READ
namespace {
// The context and reactor of the DrainAwareReadScope on this thread (null: none).
thread_local boost::asio::execution_context* tl_context = nullptr;
thread_local detail::ad::reactor* tl_reactor = nullptr;
}  // namespace

DrainAwareReadScope::DrainAwareReadScope(boost::asio::io_context& io) {
  tl_context = &io;
  tl_reactor = &boost::asio::use_service<detail::ad::reactor>(io);
}

DrainAwareReadScope::~DrainAwareReadScope() {
  tl_context = nullptr;
  tl_reactor = nullptr;
}
#else
DrainAwareReadScope::DrainAwareReadScope(boost::asio::io_context&) {}
DrainAwareReadScope::~DrainAwareReadScope() = default;
#endif

#if STICKY_DRAIN_AWARE_READ
namespace detail {

RecvOutcome recvWithHint(int fd, boost::asio::mutable_buffer buffer, boost::system::error_code& ec,
                         std::size_t& bytes) {
  iovec iov{buffer.data(), buffer.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  for (;;) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd, &msg, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return RecvOutcome::WouldBlock;
      ec = boost::system::error_code(errno, boost::asio::error::get_system_category());
      bytes = 0;
      return RecvOutcome::More;
    }
    bytes = static_cast<std::size_t>(n);
    if (n == 0) {
      ec = boost::asio::error::eof;
      return RecvOutcome::Drained;  // as Asio: nothing follows the end of stream
    }
    ec = {};
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != IPPROTO_TCP || c->cmsg_type != TCP_CM_INQ) continue;
      int left = 0;
      std::memcpy(&left, CMSG_DATA(c), sizeof left);
      return left == 0 ? RecvOutcome::Drained : RecvOutcome::More;
    }
    return RecvOutcome::More;  // no hint on this socket
  }
}

ad::reactor& reactorOf(boost::asio::execution_context& context) {
  // The scope's context is alive while the scope is, so its address names it. Without a scope
  // (tests, other threads), the lookup the socket service itself made: a cache keyed by address
  // could outlive its context, and a new one may reuse the address.
  if (tl_context == &context) return *tl_reactor;
  return boost::asio::use_service<ad::reactor>(context);
}

}  // namespace detail
#endif

}  // namespace sticky::proxy
