#pragma once
// The clock side of a connection's two measured choices: how to wait for replies (poll or
// sleep, reply_wait.hpp) and how a reply loop writes (in chunks or once, mode_chooser.hpp).
// It keeps when the current wait and reply loop began and what the last loop handed out,
// and turns them into rounds for the two policies. I/O-free: the I/O layer passes in the
// times it read (docs/redis_connection.md, "Adaptive choices").

#include <corocache/redis/detail/mode_chooser.hpp>
#include <corocache/redis/detail/reply_wait.hpp>

#include <chrono>
#include <cstddef>
#include <utility>

namespace corocache::detail::redis {

class LoopTiming {
 public:
  using Clock = std::chrono::steady_clock;

  /// `busy_poll_cap`: RedisOptions::busy_poll (zero: never poll).
  explicit LoopTiming(std::chrono::nanoseconds busy_poll_cap) noexcept : wait_(busy_poll_cap) {}

  bool polls() const noexcept { return wait_.enabled(); }
  bool waiting() const noexcept { return waiting_; }
  Clock::time_point poll_until() const noexcept { return poll_until_; }

  /// A wait for written requests' replies begins at `now`: true to poll until
  /// poll_until(), false to sleep in the reactor.
  bool begin_wait(Clock::time_point now) noexcept {
    waiting_ = true;
    wait_started_ = now;
    const auto budget = wait_.begin();
    poll_until_ = now + budget;
    return budget > Clock::duration::zero();
  }

  /// Bytes arrived at `arrived` and a reply loop begins; the previous loop of a pipeline
  /// ends here (its cost: the time since it began). True if this loop writes in chunks.
  bool begin_loop(Clock::time_point arrived) noexcept {
    if (std::exchange(loop_timed_, false)) writes_.record(arrived - loop_started_, loop_replies_);
    loop_started_ = arrived;
    return writes_.current() == ModeChooser::Choice::first;
  }

  /// The loop handed out `replies` and wrote what its callers sent; `in_flight`: requests
  /// still await replies, so the next loop continues this pipeline (idle time between
  /// bursts is never measured). Reads the clock (`now()`) only to end a timed wait.
  template <class NowFn>
  void end_loop(std::size_t replies, bool in_flight, NowFn&& now) {
    loop_replies_ = replies;
    loop_timed_ = in_flight;
    if (std::exchange(waiting_, false))
      wait_.end(loop_started_ - wait_started_, replies, now() - loop_started_);
  }

  /// A new link: nothing under way is measured.
  void reset() noexcept { waiting_ = loop_timed_ = false; }

 private:
  ReplyWaitPolicy wait_;
  // first: chunked loops. Whole loops must be 5% cheaper to take over, and a tie stays
  // chunked: measured in turns, the two look alike where chunks win (docs/redis_connection.md,
  // "Adaptive choices"); where they lose, it is mostly by far more than 5%.
  ModeChooser writes_{ModeChooser::Config{.first_margin = 1.0, .second_margin = 0.95}};
  bool waiting_ = false;     // a timed wait is under way, since wait_started_
  bool loop_timed_ = false;  // the last loop left requests in flight
  Clock::time_point wait_started_{};
  Clock::time_point poll_until_{};
  Clock::time_point loop_started_{};
  std::size_t loop_replies_ = 0;
};

}  // namespace corocache::detail::redis
