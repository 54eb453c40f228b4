#pragma once
// The wait before a Cluster request retries (TRYAGAIN, CLUSTERDOWN, an unassigned slot, a
// send lost before it was written), without I/O: exponential backoff bounded by the
// caller's deadline. Sentinel discovery does not use it: a discovery that runs out of time
// only ends one connect attempt, and the link tries again.

#include <algorithm>
#include <chrono>
#include <optional>

namespace corocache::detail::redis {

/// The wait before retry number `attempts` + 1: min(first * 2^attempts, most) if that
/// still leaves at least `first` before `deadline` for the attempt itself; otherwise half
/// the time left, if that is at least `first`, so the last attempts come close to the
/// deadline (under 2 * first before it) rather than up to `most` early; nullopt when not
/// even that fits (the call times out).
template <class TimePoint>
std::optional<std::chrono::milliseconds> retry_delay(std::chrono::milliseconds first,
                                                     std::chrono::milliseconds most, int attempts,
                                                     TimePoint now, TimePoint deadline) {
  auto delay = first;
  for (int i = 0; i < attempts && delay < most; ++i) delay *= 2;
  delay = std::min(delay, most);
  if (now >= deadline) return std::nullopt;
  if (deadline - now >= delay + first) return delay;
  const auto half_left = std::chrono::floor<std::chrono::milliseconds>(deadline - now) / 2;
  if (half_left < first) return std::nullopt;
  return half_left;
}

}  // namespace corocache::detail::redis
