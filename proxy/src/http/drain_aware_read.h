#pragma once
// drainAwareReadSome: socket.async_read_some without the recv() that would find nothing.
//
// Asio tries every read at once ("speculatively") and waits for the reactor only when that
// recv() says EAGAIN. On a proxy's two request-path sockets that first try nearly always finds
// nothing: the next request on a keep-alive client connection comes only after the response was
// sent, and an upstream's response only after the request. That is one wasted system call per
// request on each side (more than a microsecond each under virtualisation).
//
// This read asks the kernel, with each recvmsg(), how much is left to read (TCP_INQ, set on the
// socket by enableDrainHint; Linux >= 4.18). When nothing is (no bytes and no end of stream: the
// kernel reports a received FIN as 1), it tells Asio's epoll reactor that the socket is drained,
// exactly as Asio itself does at end of stream: the reactor then skips the next speculative try
// on that socket until it sees a readiness event for it. Events are edge-triggered and come for
// every segment received after the read, so none is lost:
//   - data with its event already taken from epoll: the reactor re-enabled the try, and the
//     next read finds the data at once;
//   - data whose event is still pending: the read waits in the reactor's queue and is performed
//     when the event is taken (the next reactor pass; a worker's loop runs one after every round
//     of handlers).
// No epoll_ctl is needed (an async_wait costs one per wait). Without the hint (option refused,
// not a TCP socket) a read never reports the socket drained: Asio's behaviour. Every other read
// on the same socket (plain async_read_some) follows the same rule. Completion, cancellation,
// close and handler executors behave as for async_read_some.
//
// One case the hint cannot see: a reset (RST) that arrived right after the data this read took.
// The kernel reports it at the next recv(); its readiness event was taken with the data's. Such
// a socket is noticed at its next event or at the deadline of the wait (every wait of the
// request path has one), not at once.
//
// Built on the internals of Boost.Asio 1.74's reactive socket service on Linux (the version
// Debian 12 ships). Another Asio, or a platform without the epoll reactor, gets plain
// async_read_some.

#include <cstddef>
#include <type_traits>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/version.hpp>

#if BOOST_VERSION / 100 == 1074 && defined(BOOST_ASIO_HAS_EPOLL) && \
    !defined(BOOST_ASIO_DISABLE_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING)
#define STICKY_DRAIN_AWARE_READ 1
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/memory.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/socket_ops.hpp>
#else
#define STICKY_DRAIN_AWARE_READ 0
#endif

namespace sticky::proxy {

#if STICKY_DRAIN_AWARE_READ
namespace detail {

namespace ad = boost::asio::detail;
using Socket = boost::asio::ip::tcp::socket;

// The socket's service implementation (socket descriptor, state, reactor registration): a
// protected member of basic_socket, reached through a member pointer named in a derived class.
struct SocketAccess : Socket {
  static auto& impl(Socket& socket) { return socket.*(&SocketAccess::impl_); }
};

enum class RecvOutcome {
  WouldBlock,  // nothing to read yet (EAGAIN)
  More,        // read (or failed); more may be waiting
  Drained,     // read, and the kernel said nothing is left: the end of stream was read, or no
               // byte and no FIN is waiting
};
// One recvmsg() on the non-blocking socket `fd` into `buffer` (not empty), reading the TCP_INQ
// hint. As Asio's non_blocking_recv1 on a stream: EINTR retried, 0 bytes is `eof`.
RecvOutcome recvWithHint(int fd, boost::asio::mutable_buffer buffer, boost::system::error_code& ec,
                         std::size_t& bytes);

// Asio's reactive_socket_recv_op for one buffer, with one change: a read after which the kernel
// says nothing is left reports done_and_exhausted (Asio: only at end of stream), which turns the
// reactor's next speculative try off until an event for the socket comes.
template <class Handler, class IoExecutor>
class DrainAwareRecvOp : public ad::reactor_op {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(DrainAwareRecvOp);

  DrainAwareRecvOp(const boost::system::error_code& success_ec, ad::socket_type socket,
                   boost::asio::mutable_buffer buffer, Handler& handler, const IoExecutor& io_ex)
      : ad::reactor_op(success_ec, &DrainAwareRecvOp::doPerform, &DrainAwareRecvOp::doComplete),
        socket_(socket),
        buffer_(buffer),
        handler_(std::move(handler)),
        work_(handler_, io_ex) {}

  static status doPerform(ad::reactor_op* base) {
    auto* o = static_cast<DrainAwareRecvOp*>(base);
    switch (recvWithHint(o->socket_, o->buffer_, o->ec_, o->bytes_transferred_)) {
      case RecvOutcome::WouldBlock:
        return not_done;
      case RecvOutcome::Drained:
        return done_and_exhausted;
      case RecvOutcome::More:
        break;
    }
    return done;
  }

  static void doComplete(void* owner, ad::operation* base, const boost::system::error_code&,
                         std::size_t) {
    // As reactive_socket_recv_op::do_complete: take the handler and its work, free the
    // operation, then call the handler (unless the io_context is being destroyed).
    auto* o = static_cast<DrainAwareRecvOp*>(base);
    ptr p = {ad::addressof(o->handler_), o, o};
    ad::handler_work<Handler, IoExecutor> w(std::move(o->work_));
    ad::binder2<Handler, boost::system::error_code, std::size_t> handler(o->handler_, o->ec_,
                                                                         o->bytes_transferred_);
    p.h = ad::addressof(handler.handler_);
    p.reset();
    if (owner) {
      ad::fenced_block b(ad::fenced_block::half);
      w.complete(handler, handler.handler_);
    }
  }

 private:
  ad::socket_type socket_;
  boost::asio::mutable_buffer buffer_;
  Handler handler_;
  ad::handler_work<Handler, IoExecutor> work_;
};

// The reactor of the socket's execution context (one per io_context): the thread's
// DrainAwareReadScope's, else looked up.
ad::reactor& reactorOf(boost::asio::execution_context& context);

struct InitiateDrainAwareRead {
  template <class Handler>
  void operator()(Handler&& handler, Socket* socket, boost::asio::mutable_buffer buffer) const {
    using H = std::decay_t<Handler>;
    using IoExecutor = Socket::executor_type;
    using Op = DrainAwareRecvOp<H, IoExecutor>;
    auto& io_object = SocketAccess::impl(*socket);
    auto& impl = io_object.get_implementation();
    bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(handler);
    H& h = handler;
    typename Op::ptr p = {ad::addressof(h), Op::ptr::allocate(h), nullptr};
    p.p = new (p.v)
        Op(boost::system::error_code(), impl.socket_, buffer, h, io_object.get_executor());
    ad::reactor& reactor = reactorOf(io_object.get_service().context());
    // As reactive_socket_service_base::start_op: an empty read completes at once; the socket
    // is made non-blocking on first use.
    if (buffer.size() != 0 &&
        ((impl.state_ & ad::socket_ops::non_blocking) != 0 ||
         ad::socket_ops::set_internal_non_blocking(impl.socket_, impl.state_, true, p.p->ec_))) {
      reactor.start_op(ad::reactor::read_op, impl.socket_, impl.reactor_data_, p.p, is_continuation,
                       true);
    } else {
      reactor.post_immediate_completion(p.p, is_continuation);
    }
    p.v = p.p = nullptr;
  }
};

}  // namespace detail
#endif

/// While alive, drainAwareReadSome on this thread finds `io`'s reactor without a lookup (a
/// mutex and a list walk in Asio's service registry, twice per request otherwise). Hold one
/// around the io_context's run() on the thread that runs it; `io` must outlive it. Not nestable.
class DrainAwareReadScope {
 public:
  explicit DrainAwareReadScope(boost::asio::io_context& io);
  ~DrainAwareReadScope();
  DrainAwareReadScope(const DrainAwareReadScope&) = delete;
  DrainAwareReadScope& operator=(const DrainAwareReadScope&) = delete;
};

/// Asks the kernel to report, with every read, what is left to read (TCP_INQ), which lets
/// drainAwareReadSome skip the read that would find nothing. Call once per socket, when it is
/// connected or accepted; an error (an old kernel) only leaves the reads as Asio's.
void enableDrainHint(boost::asio::ip::tcp::socket& socket);

/// socket.async_read_some(buffer, token), without the recv() that would find nothing after a
/// read that drained the socket (see the top of this file). Completes with (error_code, bytes).
template <class CompletionToken>
auto drainAwareReadSome(boost::asio::ip::tcp::socket& socket, boost::asio::mutable_buffer buffer,
                        CompletionToken&& token) {
#if STICKY_DRAIN_AWARE_READ
  return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code, size_t)>(
      detail::InitiateDrainAwareRead{}, token, &socket, buffer);
#else
  return socket.async_read_some(buffer, std::forward<CompletionToken>(token));
#endif
}

}  // namespace sticky::proxy
