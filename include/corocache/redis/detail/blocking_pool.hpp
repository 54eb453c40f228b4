#pragma once
// The bounded pool of connections for blocking commands (a waiting pop's BLMOVE holds its
// connection until the server answers, so it never runs on the shared one).
//
// At most `max_blocking_connections` are open (busy + idle); up to 4 idle ones are kept for
// reuse. Past the bound, acquire() waits in FIFO order for a connection until a time the
// caller gives (the end of its pop's wait), then returns nullptr. A connection whose command
// failed or was abandoned may still have it pending on the server: it is closed, never reused,
// and its slot goes to the next waiter on a fresh connection.
//
// Threads: any thread. A waiter sleeps on a timer of its own; everything that touches that
// timer from another thread (a grant, close()) does so under the pool's mutex, and so does the
// waiter when it starts waiting and when it wakes, so the timer is never used concurrently.

#include <corocache/errors.hpp>
#include <corocache/redis/detail/connection.hpp>
#include <corocache/redis/options.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

namespace corocache::detail::redis {

class BlockingPool {
 public:
  using ConnectionPtr = std::shared_ptr<Connection>;
  using Clock = std::chrono::steady_clock;

  struct Stats {
    std::size_t open = 0;     ///< connections open (busy + idle)
    std::size_t idle = 0;     ///< of which idle
    std::size_t waiting = 0;  ///< callers waiting for a connection
    std::size_t peak = 0;     ///< most connections ever open at once
  };

  BlockingPool(asio::any_io_executor ex, RedisOptions options)
      : executor_(std::move(ex)), options_(std::move(options)) {
    options_.busy_poll = {};  // a blocking command waits by design: polling would only spin
  }

  /// A connection for one blocking command, listed as busy until release(); nullptr when
  /// none came free before `until`. Throws errc::shut_down once closed, and
  /// operation_aborted when the caller is cancelled while waiting.
  asio::awaitable<ConnectionPtr> acquire(Clock::time_point until) {
    auto waiter_executor = co_await asio::this_coro::executor;
    std::shared_ptr<Waiter> waiter;
    {
      std::lock_guard lock(mutex_);
      if (closed_) throw_closed();
      if (!idle_.empty()) {
        ConnectionPtr conn = std::move(idle_.back());
        idle_.pop_back();
        busy_.push_back(conn);
        co_return conn;
      }
      if (open_ < options_.max_blocking_connections) co_return open_locked();
      if (until <= Clock::now()) co_return nullptr;
      waiter = std::make_shared<Waiter>(waiter_executor);
      waiter->timer.expires_at(until);
      waiters_.push_back(waiter);
    }
    // The wait starts under the mutex, so a grant (which moves the expiry under it) either
    // comes before (the wait then ends at once) or cancels it; never in between.
    // Named, not a temporary in the co_await expression (g++ 12 miscompiles those).
    auto token = asio::as_tuple(asio::use_awaitable);
    auto start_wait = [this, waiter](auto handler) {
      std::lock_guard lock(mutex_);
      waiter->timer.async_wait(std::move(handler));
    };
    const auto woken =
        co_await asio::async_initiate<decltype(token), void(boost::system::error_code)>(start_wait, token);
    const boost::system::error_code ec = std::get<0>(woken);
    ConnectionPtr granted;
    bool closed = false;
    {
      std::lock_guard lock(mutex_);
      granted = std::move(waiter->granted);
      closed = waiter->closed;
      if (!granted && !closed) std::erase(waiters_, waiter);
    }
    auto state = co_await asio::this_coro::cancellation_state;
    const bool cancelled = state.cancelled() != asio::cancellation_type::none;
    if (granted && !cancelled) co_return granted;
    if (granted) release(granted, /*reusable=*/true);
    if (closed) throw_closed();
    if (cancelled || ec == asio::error::operation_aborted)
      throw boost::system::system_error(asio::error::operation_aborted, "corocache: cancelled");
    co_return nullptr;  // `until` passed
  }

  /// Gives a connection back: kept (or handed to the next waiter) when `reusable` (its
  /// command was answered, nothing is pending on it), else closed.
  void release(const ConnectionPtr& conn, bool reusable) noexcept {
    ConnectionPtr to_close;
    {
      std::lock_guard lock(mutex_);
      std::erase(busy_, conn);
      ConnectionPtr keep = conn;
      if (!reusable || closed_ || (retired_ && waiters_.empty())) {
        to_close = std::move(keep);
        --open_;
      }
      if (!closed_ && !waiters_.empty() && (keep || open_ < options_.max_blocking_connections)) {
        if (!keep) keep = open_locked_unlisted();
        std::shared_ptr<Waiter> waiter = std::move(waiters_.front());
        waiters_.pop_front();
        busy_.push_back(keep);
        waiter->granted = std::move(keep);
        waiter->timer.expires_at(Clock::time_point::min());  // wakes it (or its wait ends at once)
      } else if (keep) {
        if (idle_.size() < max_idle) {
          idle_.push_back(std::move(keep));
        } else {
          to_close = std::move(keep);
          --open_;
        }
      }
    }
    if (to_close) to_close->close();
  }

  /// The pool's node left the cluster's map (failed over, resharded empty and turned
  /// replica): its idle connections close now, and each busy one when its command is
  /// answered, unless a waiter takes it; nothing is kept idle. Pops under way finish as
  /// before (a redirect reply sends them to the new owner). Idempotent.
  void retire() noexcept {
    std::vector<ConnectionPtr> idle;
    {
      std::lock_guard lock(mutex_);
      retired_ = true;
      idle.swap(idle_);
      open_ -= idle.size();
    }
    for (auto& c : idle) c->close();
  }

  /// Closes every connection (pending commands fail with errc::shut_down) and wakes the
  /// waiters (they throw shut_down). Idempotent.
  void close() noexcept {
    std::vector<ConnectionPtr> all;
    {
      std::lock_guard lock(mutex_);
      if (closed_) return;
      closed_ = true;
      all.swap(idle_);
      all.insert(all.end(), busy_.begin(), busy_.end());
      for (auto& waiter : waiters_) {
        waiter->closed = true;
        waiter->timer.expires_at(Clock::time_point::min());
      }
      waiters_.clear();
    }
    for (auto& c : all) c->close();
  }

  Stats stats() const {
    std::lock_guard lock(mutex_);
    return {open_, idle_.size(), waiters_.size(), peak_};
  }

 private:
  static constexpr std::size_t max_idle = 4;

  struct Waiter {
    explicit Waiter(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    ConnectionPtr granted;  // set under the mutex by release()
    bool closed = false;    // set under the mutex by close()
  };

  [[noreturn]] static void throw_closed() { throw_error(errc::shut_down, "corocache: redis backend closed"); }

  // A new connection, counted as open (caller holds the mutex).
  ConnectionPtr open_locked_unlisted() {
    auto conn = std::make_shared<Connection>(executor_, options_);
    ++open_;
    peak_ = std::max(peak_, open_);
    return conn;
  }
  ConnectionPtr open_locked() {
    auto conn = open_locked_unlisted();
    busy_.push_back(conn);
    return conn;
  }

  asio::any_io_executor executor_;
  RedisOptions options_;
  mutable std::mutex mutex_;  // guards everything below
  bool closed_ = false;
  bool retired_ = false;
  std::size_t open_ = 0;
  std::size_t peak_ = 0;
  std::vector<ConnectionPtr> idle_;
  std::vector<ConnectionPtr> busy_;
  std::deque<std::shared_ptr<Waiter>> waiters_;
};

}  // namespace corocache::detail::redis
