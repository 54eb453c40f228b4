#pragma once
// ConnectionImpl's supervisor (connection_impl.hpp has the class): the coroutine that
// connects (Sentinel: to the primary it names), runs the handshake, serves the link until it
// drops, backs off as the link state machine says (link_fsm.hpp), and repeats until the
// connection is closed. docs/redis_connection.md, "The link state machine".

#include <corocache/redis/detail/connection_impl.hpp>
#include <corocache/redis/detail/link_fsm.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace corocache::detail::redis {

inline void ConnectionImpl::start_supervisor() {
  link_ = Link::connecting;
  if (options_.sentinel && !listener_)
    listener_ = options_.sentinel->add_listener([weak = weak_from_this()](const sentinel::SwitchMaster& m) {
      if (auto self = weak.lock()) asio::post(self->strand_, [self, m] { self->on_switch_master(m); });
    });
  asio::co_spawn(strand_, supervise(shared_from_this()), asio::detached);
}

inline asio::awaitable<void> ConnectionImpl::supervise(std::shared_ptr<ConnectionImpl> self) {
  BackoffState backoff = initial_backoff(self->options_);
  while (self->link_ != Link::closed) {
    self->link_ = Link::connecting;
    ConnectionCounters::bump(self->counters_.connect_attempts);
    auto failure = co_await self->connect_once();
    if (self->link_ == Link::closed) break;
    LinkEnd end{LinkEnd::Kind::connect_failed};
    if (!failure) {
      self->serve_link();
      const auto up_at = Clock::now();
      while (self->link_ == Link::up) {
        self->wake_timer_.expires_at(Clock::time_point::max());
        co_await self->wake_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      if (self->link_ == Link::closed) break;
      end = {LinkEnd::Kind::dropped, std::chrono::duration_cast<Duration>(Clock::now() - up_at)};
    } else {
      self->link_ = Link::down;
      boost::system::error_code ignored;
      self->socket_.close(ignored);
      self->last_error_ = failure->message;
      if (is_rejection(failure->code) || std::exchange(self->sentinel_rejected_, false)) {
        // Rejected credentials, database or certificate: fail waiting requests now with a
        // clear error, and retry only at the slowest pace (no reconnect storm).
        self->rejected_ = true;
        self->rejected_code_ = failure->code;
        self->auth_error_ = "corocache redis: " + self->endpoint_text() + ": " + failure->message;
        self->mux_.fail_queued(make_error_code(failure->code),
                               [&](PendingOp* op) { self->finish(op, true); });
        end = {LinkEnd::Kind::auth_failed};
      }
    }
    auto decision = next_backoff(self->options_, backoff, end);
    backoff = decision.state;
    if (std::exchange(self->retry_now_, false)) decision.delay = self->options_.reconnect_min;
    if (self->link_ != Link::closed) {
      self->wake_timer_.expires_at(saturating_add(Clock::now(), decision.delay));
      co_await self->wake_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
}

inline void ConnectionImpl::serve_link() {
  link_ = Link::up;
  rejected_ = false;
  last_error_.clear();
  ConnectionCounters::bump(counters_.connects);
  // Non-blocking, so start_write() and busy polling can try the socket directly.
  boost::system::error_code ignored;
  if (!tls_) socket_.non_blocking(true, ignored);
  mux_.on_link_up();
  timing_.reset();
  idle_read_ = poll_after_cancel_ = false;
  start_read();
  start_write();
  start_check_timer();
}

// One attempt: resolve (bounded by connect_timeout), then every address with its own
// connect_timeout, then the handshake with one more. Empty on success.
inline asio::awaitable<std::optional<LinkFailure>> ConnectionImpl::connect_once() {
  ++generation_;
  boost::system::error_code ignored;
  socket_.close(ignored);
  reader_.reset();
  tls_.reset();  // a read or write still completing on the old stream holds its own reference
  target_ = {options_.host, options_.port};
  if (options_.sentinel) {
    auto found = co_await options_.sentinel->discover(saturating_add(Clock::now(), options_.connect_timeout));
    if (!found.primary) {
      sentinel_rejected_ = found.rejection;
      co_return std::move(found.failure);
    }
    target_ = std::move(*found.primary);
  }
  auto addresses =
      co_await link_io::endpoints_for(strand_, options_.unix_socket, target_.host, target_.port,
                                      saturating_add(Clock::now(), options_.connect_timeout), resolver_);
  if (std::holds_alternative<LinkFailure>(addresses)) co_return std::get<LinkFailure>(std::move(addresses));
  const auto& endpoints = std::get<link_io::Endpoints>(addresses);
  auto failure = co_await link_io::connect_any(socket_, endpoints, options_.connect_timeout, closed_);
  if (failure) co_return failure;
  auto rejected = co_await link_io::open_link(socket_, tls_context_.get(), tls_, reader_, read_buf_, options_,
                                              target_.host, options_.sentinel != nullptr);
  co_return rejected;
}

}  // namespace corocache::detail::redis
