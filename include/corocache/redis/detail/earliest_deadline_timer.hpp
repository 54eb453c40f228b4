#pragma once
// One timer for many deadlines: it waits for the earliest deadline it was given and is
// re-armed from the wake-up for the next one. A later deadline than the one it waits for
// costs nothing, so a connection pays a timer operation only when a request's deadline is
// earlier than every other (docs/redis_connection.md). Confined to one strand.

#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <utility>

namespace corocache::detail::redis {

class EarliestDeadlineTimer {
 public:
  using Clock = std::chrono::steady_clock;

  template <class Executor>
  explicit EarliestDeadlineTimer(const Executor& ex) : timer_(ex) {}

  /// Runs `on_expiry` at `when` unless the timer already waits for an earlier (or the same)
  /// time; a superseded or cancelled wait runs nothing. `on_expiry` must keep this timer's
  /// owner alive (hold a shared_ptr to it): the wait's handler refers to this object.
  /// `time_point::max()` ("forever") arms nothing.
  template <class Fn>
  void arm(Clock::time_point when, Fn on_expiry) {
    if (when == Clock::time_point::max()) return;
    if (armed_ && expiry_ <= when) return;
    armed_ = true;
    expiry_ = when;
    const auto epoch = ++epoch_;
    timer_.expires_at(when);
    timer_.async_wait([this, epoch, on_expiry = std::move(on_expiry)](boost::system::error_code) mutable {
      if (epoch != epoch_) return;
      armed_ = false;
      on_expiry();
    });
  }

  /// Forgets the pending wait: its handler runs nothing.
  void cancel() {
    ++epoch_;
    armed_ = false;
    timer_.cancel();
  }

 private:
  boost::asio::steady_timer timer_;
  bool armed_ = false;
  Clock::time_point expiry_{};
  std::uint64_t epoch_ = 0;
};

}  // namespace corocache::detail::redis
