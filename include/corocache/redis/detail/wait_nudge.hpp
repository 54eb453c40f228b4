#pragma once
// Ends a blocking command's server-side wait on time. Redis checks the timeouts of blocked
// clients when its event loop wakes, and an idle server wakes only every 1000/hz ms (100 ms
// at the default hz 10): a BLMOVE with a 200 ms timeout is answered after 200-300 ms. Any
// command from any client wakes it, and the expired wait is answered in that same loop. So
// while a waiting pop is blocked, a WaitNudge sends a PING to the pop's node (on its shared
// connection) just after the wait ends, and again while the pop is still blocked (the
// server may have started its wait after the client did: a reconnect, a busy server).
// docs/redis_queues.md, "Ending the wait on time".
//
// Threads: done() may run on any thread. The timer is touched only under the mutex (the
// wait is started under it, as in blocking_pool.hpp), so it is never used concurrently.

#include <corocache/backend.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>

namespace corocache::detail::redis {

class WaitNudge {
 public:
  using Clock = std::chrono::steady_clock;
  /// Sends one command that wakes the server (failures are the sender's to swallow).
  using Send = std::function<asio::awaitable<void>()>;

  /// After the wait ends: nudges at these offsets, then every `nudge_every` until done().
  static constexpr std::array<std::chrono::milliseconds, 3> nudge_after{
      std::chrono::milliseconds(2), std::chrono::milliseconds(10), std::chrono::milliseconds(40)};
  static constexpr std::chrono::milliseconds nudge_every{100};

  /// Starts nudging the server `wait` from now (a command sent just before). Call done()
  /// once the command is answered or abandoned, whatever happened.
  static std::shared_ptr<WaitNudge> start(const asio::any_io_executor& ex, Duration wait, Send send) {
    auto nudge = std::make_shared<WaitNudge>(ex, std::move(send));
    const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(wait);
    asio::co_spawn(ex, run(nudge, end), asio::detached);
    return nudge;
  }

  WaitNudge(const asio::any_io_executor& ex, Send send) : timer_(ex), send_(std::move(send)) {}

  /// The command was answered (or failed, or was abandoned): no more nudges.
  void done() noexcept {
    std::lock_guard lock(mutex_);
    done_ = true;
    timer_.cancel();
  }

  /// Calls done() when the blocking call's scope ends, however it ends.
  class Guard {
   public:
    explicit Guard(std::shared_ptr<WaitNudge> nudge) noexcept : nudge_(std::move(nudge)) {}
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() {
      if (nudge_) nudge_->done();
    }

   private:
    std::shared_ptr<WaitNudge> nudge_;
  };

 private:
  static asio::awaitable<void> run(std::shared_ptr<WaitNudge> self, Clock::time_point end) {
    for (std::size_t i = 0;; ++i) {
      Clock::time_point when = end + nudge_after.back();
      if (i < nudge_after.size())
        when = end + nudge_after[i];
      else
        when += static_cast<int>(i - nudge_after.size() + 1) * nudge_every;
      const bool due = co_await self->sleep_until(when);
      if (!due) co_return;
      try {
        co_await self->send_();
      } catch (...) {
        co_return;  // the link is down or closed: the call's own deadline takes over
      }
    }
  }

  /// False once done() was called, before or during the sleep.
  asio::awaitable<bool> sleep_until(Clock::time_point when) {
    auto token = asio::as_tuple(asio::use_awaitable);
    auto start_wait = [this, when](auto handler) {
      std::lock_guard lock(mutex_);
      if (done_) {
        timer_.expires_at(Clock::time_point::min());  // completes at once
      } else {
        timer_.expires_at(when);
      }
      timer_.async_wait(std::move(handler));
    };
    const auto woken =
        co_await asio::async_initiate<decltype(token), void(boost::system::error_code)>(start_wait, token);
    static_cast<void>(woken);
    std::lock_guard lock(mutex_);
    co_return !done_;
  }

  std::mutex mutex_;  // guards timer_ and done_
  asio::steady_timer timer_;
  bool done_ = false;
  Send send_;
};

}  // namespace corocache::detail::redis
