#pragma once
// How a connection waits for the replies of requests it has written: by polling the socket
// (non-blocking reads from posted handlers, up to RedisOptions::busy_poll) or by sleeping
// in the reactor. I/O-free: the connection asks at the start of each wait and reports how
// long the wait took and how many replies it brought. docs/redis_connection.md, "Waiting
// for replies", has the measurements behind it.
//
// Which is faster depends on the machine, not on the code: polling saves the wake-up of a
// sleeping thread (tens of microseconds on some VMs), but a spinning thread can also take
// a core the server needs, and polling is wasted when replies take longer than the budget.
// So the policy measures both: it runs epochs of waits in its current mode, and now and
// then a short epoch in the other mode, and keeps the mode with the lower wait time per
// reply (per reply, so that many short polled waits compare fairly with fewer, fuller
// sleeps). Ties go to sleeping, which costs no CPU. Explorations that lose are spaced out
// exponentially, so a mode that does not pay costs almost nothing.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace corocache::detail::redis {

class ReplyWaitPolicy {
 public:
  using Nanos = std::chrono::nanoseconds;

  enum class Mode : std::uint8_t { poll, sleep };

  /// Waits in the current mode between two explorations of the other: starts at
  /// min_exploit, doubles after each exploration that lost, back to min_exploit on a switch.
  static constexpr std::uint32_t min_exploit = 32;
  static constexpr std::uint32_t max_exploit = 4096;
  /// Waits in one exploration of the other mode.
  static constexpr std::uint32_t explore_waits = 8;

  /// `cap`: the longest poll of one wait; zero or less: never poll (every wait sleeps).
  explicit ReplyWaitPolicy(Nanos cap) noexcept
      : cap_(std::max(cap, Nanos::zero())), best_(enabled() ? Mode::poll : Mode::sleep) {}

  bool enabled() const noexcept { return cap_ > Nanos::zero(); }
  /// The mode the current wait runs in, and the mode that measured better so far.
  Mode current() const noexcept { return exploring_ && enabled() ? other(best_) : best_; }
  Mode best() const noexcept { return best_; }

  /// A wait for replies begins: how long to poll before sleeping (zero: sleep now).
  Nanos begin() noexcept {
    if (!enabled()) return Nanos::zero();
    return current() == Mode::poll ? cap_ : Nanos::zero();
  }

  /// The wait begun last ended after `waited` (including a poll that ran out and the
  /// sleep after it) and brought `replies` complete replies.
  void end(Nanos waited, std::size_t replies) noexcept {
    if (!enabled()) return;
    epoch_wait_ += std::max(waited, Nanos::zero());
    epoch_replies_ += replies;
    if (++epoch_done_ < epoch_length()) return;
    finish_epoch();
  }

  /// Mean wait per reply of the last epoch in `m` (nanoseconds; negative: not measured).
  double estimate(Mode m) const noexcept { return estimate_[index(m)]; }

 private:
  static constexpr std::size_t index(Mode m) noexcept { return m == Mode::poll ? 0 : 1; }
  static constexpr Mode other(Mode m) noexcept { return m == Mode::poll ? Mode::sleep : Mode::poll; }
  // A mode replaces the current one only when clearly better; polling must win by more,
  // since it costs CPU and sleeping does not.
  static constexpr double poll_margin = 0.9;
  static constexpr double sleep_margin = 1.05;

  std::uint32_t epoch_length() const noexcept { return exploring_ ? explore_waits : exploit_; }

  static bool better(Mode candidate, double candidate_ns, double current_ns) noexcept {
    if (candidate_ns < 0) return false;
    if (current_ns < 0) return true;
    return candidate == Mode::poll ? candidate_ns < current_ns * poll_margin
                                   : candidate_ns <= current_ns * sleep_margin;
  }

  void finish_epoch() noexcept {
    const Mode ran = current();
    const double per_reply = static_cast<double>(epoch_wait_.count()) /
                             static_cast<double>(std::max<std::uint64_t>(epoch_replies_, 1));
    // The newest epoch only: the other mode's last one is as old as the run since, and
    // conditions (the machine's load) may have changed meanwhile.
    estimate_[index(ran)] = per_reply;
    epoch_wait_ = Nanos::zero();
    epoch_replies_ = 0;
    epoch_done_ = 0;
    if (!exploring_) {  // after every run in the current mode, a short one in the other
      exploring_ = true;
      return;
    }
    exploring_ = false;
    const Mode rival = other(best_);
    if (better(rival, estimate(rival), estimate(best_))) {
      best_ = rival;
      exploit_ = min_exploit;
    } else {
      exploit_ = std::min(exploit_ * 2, max_exploit);
    }
  }

  Nanos cap_;
  Mode best_;
  bool exploring_ = false;
  std::uint32_t exploit_ = min_exploit;
  std::uint32_t epoch_done_ = 0;
  Nanos epoch_wait_{};
  std::uint64_t epoch_replies_ = 0;
  double estimate_[2] = {-1.0, -1.0};
};

}  // namespace corocache::detail::redis
