#pragma once
// One multiplexed, automatically pipelined connection to a Redis server: the public handle.
// The I/O layer is ConnectionImpl (connection_impl.hpp) on the I/O-free core
// (multiplexer.hpp, link_fsm.hpp); docs/redis_connection.md has the design.

#include <corocache/backend.hpp>
#include <corocache/errors.hpp>
#include <corocache/redis/detail/budget.hpp>
#include <corocache/redis/detail/connection_impl.hpp>
#include <corocache/redis/detail/exec_op.hpp>
#include <corocache/redis/detail/reply.hpp>
#include <corocache/redis/detail/request.hpp>
#include <corocache/redis/options.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <memory>
#include <stdexcept>
#include <utility>

namespace corocache::detail::redis {

/// A handle to one pipelined Redis connection. Movable, not copyable; destroying it (or
/// calling close()) fails pending requests with errc::shut_down and stops its background
/// work. Destroy it before the io_context it runs on. Calls still in flight when that
/// io_context is shut down (or destroyed) fail with shut_down, and the context destroys their
/// coroutines as it does any handler it holds (context_shutdown.hpp).
class Connection {
 public:
  /// Validates `options` (std::invalid_argument) and prepares the connection; nothing is
  /// connected until the first exec().
  Connection(asio::any_io_executor ex, RedisOptions options) {
    options.validate();
    impl_ = std::make_shared<ConnectionImpl>(ex, std::move(options));
    detail::ContextShutdown::watch(ex, impl_);
  }
  Connection(Connection&&) noexcept = default;
  Connection& operator=(Connection&& other) noexcept {
    if (this != &other) {
      close();
      impl_ = std::move(other.impl_);
    }
    return *this;
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { close(); }

  /// Sends `request` on the shared, automatically pipelined connection and returns its
  /// reply; for a request of several commands, the first error reply among them, else the
  /// last reply (e.g. EXEC's array). Error replies come back as Reply{ReplyType::error}.
  ///
  /// Completion: the caller resumes on its own executor. Throws std::invalid_argument for
  /// an empty request or negative timeout (before any I/O), else system_error:
  /// errc::timeout (deadline = `timeout`, or options().request_timeout when zero; the
  /// request may still run; Duration::max() means no deadline), errc::connection_lost
  /// (written, then the link dropped or stalled: may have run), errc::not_connected (never
  /// written before the deadline, or before the end of request.send_within while no link was
  /// up: did not run), errc::overloaded (max_pending reached:
  /// nothing sent), errc::reply_too_large (this reply exceeded max_reply_bytes or
  /// max_reply_elements; the link stays), errc::protocol_error (invalid or unsolicited
  /// reply; the link is reset), errc::auth_failed (AUTH/SELECT rejected; the message names
  /// the user, never the password), errc::tls_failed (TLS: the server certificate did not
  /// verify or the server refused the handshake; the message names host:port and the
  /// reason; like auth_failed, retried only every reconnect_max), errc::shut_down (closed).
  /// Cancellation: asio per-operation cancellation completes at once with
  /// asio::error::operation_aborted: terminal or partial for any request (a written one's
  /// late reply is discarded), total only for a request not yet written (a written one
  /// may have run: total cancellation is then ignored).
  /// Lifetime: the Connection must be alive when exec() is called (co_awaited); the
  /// request's bytes are owned by the operation; the returned awaitable holds the shared
  /// state, so it may be awaited after the Connection is gone (then: shut_down).
  /// Thread-safe: any thread, any executor.
  asio::awaitable<Reply> exec(Request request, Duration timeout = Duration::zero()) {
    return start(std::move(request), timeout, nullptr);
  }

  /// As exec(), but a failure of the call (timeout, overloaded, connection_lost, ...) is
  /// reported in `ec` (and an empty Reply returned) instead of thrown: no exception is built
  /// when a call fails, e.g. on the overload path. `ec` is written before the caller resumes
  /// and must live until then. Invalid input still throws std::invalid_argument.
  asio::awaitable<Reply> exec(Request request, Duration timeout, boost::system::error_code& ec) {
    ec = {};
    return start(std::move(request), timeout, &ec);
  }

  /// As exec(), but the caller gets `finish`'s result instead of the Reply (exec_op.hpp,
  /// ExecOpFor: `finish` runs on the caller's side and calls the awaitable's handler, of
  /// signature `void(std::exception_ptr, Finish::Result)`, or hands it to follow-up work),
  /// and the call ends by `deadline` (the default: options().request_timeout), checked when
  /// the call is awaited: one that has passed by then fails with errc::timeout before any
  /// I/O. Saves the caller a coroutine frame of its own on its hot path (a GET's value).
  template <class Finish>
  asio::awaitable<typename Finish::Result> exec_as(Request request, Deadline deadline, Finish finish) {
    return start(std::move(request), Duration::zero(), nullptr, std::move(finish), deadline);
  }

  /// Fails pending requests with errc::shut_down and stops reconnecting. Idempotent.
  void close() {
    if (impl_) impl_->close();
  }

  /// Not on a moved-from Connection.
  const RedisOptions& options() const { return impl_->options(); }
  ConnectionStats stats() const { return impl_ ? impl_->stats() : ConnectionStats{}; }

 private:
  template <class Finish = ReplyAsIs>
  asio::awaitable<typename Finish::Result> start(Request request, Duration timeout,
                                                 boost::system::error_code* ec_out, Finish finish = {},
                                                 Deadline deadline = {}) {
    using Result = typename Finish::Result;
    using Op = ExecOpFor<Finish>;
    // No coroutine frame of its own: the awaitable is Asio's initiation, whose arguments
    // (the shared state and the op) live until the caller has resumed.
    if (request.replies == 0 || request.bytes.empty())
      return fail<Result>(
          std::make_exception_ptr(std::invalid_argument("corocache redis: an empty request")));
    if (timeout < Duration::zero())
      return fail<Result>(
          std::make_exception_ptr(std::invalid_argument("corocache redis: a negative request timeout")));
    if (request.replies > 0xffffffffu)
      return fail<Result>(std::make_exception_ptr(
          std::invalid_argument("corocache redis: too many commands in one request")));
    if (!impl_)
      return fail<Result>(std::make_exception_ptr(boost::system::system_error(
          make_error_code(errc::shut_down), "corocache redis: a moved-from connection")));
    ExecRef op = ExecRef::adopt(Op::create(std::move(finish)));
    op->bytes = std::move(request.bytes);
    op->replies = static_cast<std::uint32_t>(request.replies);
    op->timeout = timeout;  // zero: the deadline's, or request_timeout (set when awaited)
    op->server_wait = request.server_wait;
    op->send_within = request.send_within;
    op->control = request.control;
    op->owner = impl_.get();
    op->ec_out = ec_out;
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, Result)>(
        [](typename Op::Handler handler, const std::shared_ptr<ConnectionImpl>& impl, const ExecRef& p,
           Deadline deadline) {
          auto* op = static_cast<Op*>(p.get());
          if (!deadline.is_default() && !round_trip_left(deadline, op->timeout))
            return impl->refuse(op, std::move(handler), make_error_code(errc::timeout),
                                "corocache: the call's deadline passed");
          if (op->timeout == Duration::zero()) op->timeout = impl->options().request_timeout;
          impl->submit(op, std::move(handler));
        },
        asio::use_awaitable, impl_, std::move(op), deadline);
  }

  template <class Result>
  static asio::awaitable<Result> fail(std::exception_ptr error) {
    std::rethrow_exception(error);
    co_return Result{};
  }

  std::shared_ptr<ConnectionImpl> impl_;
};

}  // namespace corocache::detail::redis
