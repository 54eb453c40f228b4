#pragma once
// How a connection waits for the replies of requests it has written: by polling the socket
// (non-blocking reads from posted handlers, up to RedisOptions::busy_poll) or by sleeping
// in the reactor. I/O-free: the connection asks at the start of each wait and reports how
// long the wait took and how many replies it brought.
//
// Polling saves the wake-up of a sleeping thread (tens of microseconds on some VMs), but a
// spinning thread can take a core the server needs, and a poll is wasted when replies take
// longer than its budget. So both are measured (mode_chooser.hpp) by the time per reply of
// a wait and the handling of what it brought (per reply, so that many short polled waits
// compare fairly with fewer, fuller sleeps).
// Polling must win by 10%; a tie goes to sleeping, which costs no CPU; polls that mostly
// run out never win.

#include <corocache/redis/detail/mode_chooser.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace corocache::detail::redis {

class ReplyWaitPolicy {
 public:
  using Nanos = std::chrono::nanoseconds;
  enum class Mode : std::uint8_t { poll, sleep };

  static constexpr ModeChooser::Config config{.first_margin = 0.9, .second_margin = 1.05};
  /// Waits in the current mode between two explorations of the other (at most), and waits
  /// in one exploration.
  static constexpr std::uint32_t max_exploit = config.max_run;
  static constexpr std::uint32_t explore_waits = config.explore;

  /// `cap`: the longest poll of one wait; zero or less: never poll (every wait sleeps).
  explicit ReplyWaitPolicy(Nanos cap) noexcept
      : cap_(std::max(cap, Nanos::zero())),
        chooser_(config, enabled() ? ModeChooser::Choice::first : ModeChooser::Choice::second) {}

  bool enabled() const noexcept { return cap_ > Nanos::zero(); }
  /// The mode of the current wait, and the mode that measured better so far.
  Mode current() const noexcept { return enabled() ? mode(chooser_.current()) : Mode::sleep; }
  Mode best() const noexcept { return enabled() ? mode(chooser_.best()) : Mode::sleep; }

  /// A wait for replies begins: how long to poll before sleeping (zero: sleep now).
  Nanos begin() const noexcept { return current() == Mode::poll ? cap_ : Nanos::zero(); }

  /// The wait begun last ended after `waited` (including a poll that ran out and the
  /// sleep after it) and brought `replies` complete replies, which then took `handling` to
  /// hand out (resumed callers, their next writes). The cost compared is the whole cycle
  /// per reply: a mode that splits replies into more, smaller batches pays each batch's
  /// fixed costs (a read, a write, a loop) more often, which its shorter waits alone hide.
  /// A poll that ran out costs no more time than a sleep (the reply comes when it comes)
  /// but burns its whole budget: an epoch of mostly such polls never wins, e.g. against a
  /// server farther than the cap.
  void end(Nanos waited, std::size_t replies, Nanos handling = Nanos::zero()) noexcept {
    if (enabled()) chooser_.record(waited + handling, replies, current() == Mode::poll && waited >= cap_);
  }

  /// Mean cycle (wait and handling) per reply of the newest epoch in `m` (nanoseconds;
  /// negative: not measured; infinite: its polls mostly ran out).
  double estimate(Mode m) const noexcept {
    return chooser_.estimate(m == Mode::poll ? ModeChooser::Choice::first : ModeChooser::Choice::second);
  }

 private:
  static Mode mode(ModeChooser::Choice c) noexcept {
    return c == ModeChooser::Choice::first ? Mode::poll : Mode::sleep;
  }

  Nanos cap_;
  ModeChooser chooser_;
};

}  // namespace corocache::detail::redis
