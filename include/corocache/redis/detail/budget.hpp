#pragma once
// Time budgets of RedisBackend calls, without I/O: how long one round trip may take within a
// call's Deadline, how a waiting pop splits its time between the server's wait and the trip,
// and how durations too large for Redis saturate to "effectively forever".

#include <corocache/backend.hpp>
#include <corocache/errors.hpp>

#include <algorithm>
#include <chrono>
#include <string>

namespace corocache::detail::redis {

/// Longer than any process lives (a century), short enough that adding it to any clock's
/// now cannot overflow, and accepted by Redis as a PX / PEXPIRE argument.
inline constexpr Duration forever = std::chrono::hours(24 * 365 * 100);

/// A ttl as Redis milliseconds: `ttl` > 0, saturated at `forever` (Duration::max() and
/// anything Redis would reject as an invalid expire time mean "effectively forever").
constexpr long long px(Duration ttl) noexcept { return std::min(ttl, forever).count(); }

/// The timeout of one round trip that must end by `deadline` (in `timeout`): zero (the
/// connection's own request_timeout) for the default deadline. False once the deadline has
/// passed.
inline bool round_trip_left(Deadline deadline, Duration& timeout) noexcept {
  timeout = Duration::zero();
  if (deadline.is_default()) return true;
  const Duration left = deadline.remaining(Duration::zero());
  if (left <= Duration::zero()) return false;
  timeout = std::min(left, forever);
  return true;
}

/// round_trip_left() that throws errc::timeout, before any I/O, once the deadline has passed.
inline Duration round_trip_timeout(Deadline deadline) {
  Duration timeout;
  if (!round_trip_left(deadline, timeout))
    throw_error(errc::timeout, "corocache: the call's deadline passed");
  return timeout;
}

/// How a blocking pop spends what is left of its call.
struct BlockingBudget {
  Duration server_wait;  ///< how long the server may block (> 0)
  Duration trip;         ///< the request's own timeout: the server's wait plus the trip
  bool unbounded;        ///< block without a server-side limit (timeout argument 0)
};

/// `wait` (> 0): what is left of the pop's own wait. Default deadline: the trip gets
/// `request_timeout` on top of the wait. Otherwise the server waits at most what the
/// deadline leaves. Throws errc::timeout once the deadline has passed.
inline BlockingBudget blocking_budget(Duration wait, Deadline deadline, Duration request_timeout) {
  const Duration trip =
      deadline.is_default() ? std::min(wait, forever) + request_timeout : round_trip_timeout(deadline);
  const Duration server_wait = std::max(std::min(wait, trip), Duration(1));
  // A timeout argument of 0 blocks for ever: what a wait of a year or more means in practice.
  return {server_wait, trip, server_wait >= std::chrono::hours(24 * 365)};
}

/// A blocking command's timeout argument: `ms` milliseconds as decimal seconds ("1.5",
/// "0.001"), which Redis >= 6 accepts. `ms` > 0.
inline std::string block_seconds(long long ms) {
  std::string out = std::to_string(ms / 1000);
  const long long frac = ms % 1000;
  if (frac != 0) {
    out.push_back('.');
    out.push_back(static_cast<char>('0' + frac / 100));
    out.push_back(static_cast<char>('0' + frac / 10 % 10));
    out.push_back(static_cast<char>('0' + frac % 10));
  }
  return out;
}

}  // namespace corocache::detail::redis
