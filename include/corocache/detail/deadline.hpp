#pragma once
// Saturating time arithmetic, shared by the facade, the memory backend and the null
// backend: every "now + duration" goes through here (or through Deadline::after, which it
// wraps), so Duration::max() as an expiry, ttl, wait or sweep interval means "never"
// instead of a signed overflow. A steady_timer is never given a Duration directly
// (expires_after converts milliseconds to nanoseconds, which overflows for large values):
// it gets the saturated instant.

#include <corocache/backend.hpp>

#include <boost/asio/steady_timer.hpp>

#include <chrono>

namespace corocache::detail {

/// `from + d`, at most Clock::time_point::max() (d < 0 counts as 0).
inline Deadline::Clock::time_point saturating_after(
    Duration d, Deadline::Clock::time_point from = Deadline::Clock::now()) noexcept {
  return Deadline::after(d, from).at();
}

/// Arms `timer` to expire `d` from now, saturating (Duration::max(): effectively never).
inline void expire_after(boost::asio::steady_timer& timer, Duration d) {
  timer.expires_at(saturating_after(d));
}

}  // namespace corocache::detail
