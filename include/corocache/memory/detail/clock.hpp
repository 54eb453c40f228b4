#pragma once
// Where the memory backend reads the time: steady_clock, or a clock injected through
// MemoryOptions::clock (corocache::testing::ManualClock) so that tests drive expiry, lock
// ttls, parked pops and the sweep without sleeping. Times are nanoseconds since the clock's
// epoch (steady_clock's for the real clock).

#include <corocache/backend.hpp>
#include <corocache/detail/deadline.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <utility>

namespace corocache {

/// A time source for MemoryBackend (MemoryOptions::clock). now() never goes backwards. A
/// clock that moves by itself in jumps (a test's manual clock) tells its subscribers after
/// each jump, so that waits measured on it (parked pops) end without a real timer.
class MemoryClock {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  /// Told after the clock moved forward: called on the thread that moved it, with no lock
  /// of the clock held.
  class Listener {
   public:
    virtual void clock_advanced() = 0;

   protected:
    ~Listener() = default;
  };

  virtual ~MemoryClock() = default;
  virtual time_point now() const noexcept = 0;
  /// Calls listener->clock_advanced() after every forward move, for as long as the
  /// listener lives.
  virtual void subscribe(std::weak_ptr<Listener> listener) = 0;
};

}  // namespace corocache

namespace corocache::detail::memory {

/// Clock nanoseconds: deadlines are monotonic, immune to wall-clock changes.
using Nanos = std::int64_t;
inline constexpr Nanos never = std::numeric_limits<Nanos>::max();

inline Nanos to_nanos(std::chrono::steady_clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

inline Nanos now_ns() noexcept { return to_nanos(std::chrono::steady_clock::now()); }

/// now + ttl, saturating at `never` instead of overflowing (the shared helper of
/// detail/deadline.hpp, in this file's nanosecond representation).
inline Nanos deadline_after(Nanos now, Duration ttl) noexcept {
  using Clock = Deadline::Clock;
  const Clock::time_point from{std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(now))};
  return std::chrono::duration_cast<std::chrono::nanoseconds>(saturating_after(ttl, from).time_since_epoch())
      .count();
}

/// The store's view of time: steady_clock unless a clock was injected. The real clock
/// costs one null check on top of steady_clock::now() (no call through the interface).
class TimeSource {
 public:
  explicit TimeSource(std::shared_ptr<MemoryClock> clock = nullptr) noexcept : clock_(std::move(clock)) {}

  Nanos now() const noexcept { return clock_ == nullptr ? now_ns() : to_nanos(clock_->now()); }
  /// An injected clock: timers on the real clock must not decide anything.
  bool injected() const noexcept { return clock_ != nullptr; }
  MemoryClock* clock() const noexcept { return clock_.get(); }

 private:
  std::shared_ptr<MemoryClock> clock_;
};

}  // namespace corocache::detail::memory
