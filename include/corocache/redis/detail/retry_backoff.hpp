#pragma once
// The wait before a call retries (a Cluster TRYAGAIN / CLUSTERDOWN or lost unwritten send,
// a Sentinel discovery round that found no primary), without I/O: exponential backoff
// bounded by the call's deadline.

#include <algorithm>
#include <chrono>
#include <optional>

namespace corocache::detail::redis {

/// The wait before retry number `attempts` + 1: min(first * 2^attempts, most) if that ends
/// before `deadline`; otherwise half the time left, if that is at least `first`, so the last
/// attempts come close to the deadline (at most 2 * first before it) rather than up to
/// `most` early; nullopt when not even that fits (the call times out).
template <class TimePoint>
std::optional<std::chrono::milliseconds> retry_delay(std::chrono::milliseconds first,
                                                     std::chrono::milliseconds most, int attempts,
                                                     TimePoint now, TimePoint deadline) {
  auto delay = first;
  for (int i = 0; i < attempts && delay < most; ++i) delay *= 2;
  delay = std::min(delay, most);
  if (now + delay < deadline) return delay;
  if (now >= deadline) return std::nullopt;
  const auto half_left = std::chrono::floor<std::chrono::milliseconds>(deadline - now) / 2;
  if (half_left < first) return std::nullopt;
  return half_left;
}

}  // namespace corocache::detail::redis
