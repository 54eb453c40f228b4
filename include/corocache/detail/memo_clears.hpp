#pragma once
// Keeps a memoized function's computation that overlaps a cache_clear from caching what it
// computed before the clear (docs/func_cache_keys.md, "Clears and computations in flight").
//
// In this process: every clear of (scope, function) bumps a generation. A computation
// records the generation when it starts and stores its result only if it is unchanged;
// a caller that comes after a clear does not join a computation that started before it.
// Across processes: a clear also writes a fresh token under the function's epoch key. A
// computation reads the token before it runs the function and again after it stored the
// result, and erases the result if the token changed in between.

#include <corocache/backend.hpp>
#include <corocache/detail/keys.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace corocache::detail {

/// How long a clear's token lives: longer than any computation it must fence.
inline constexpr Duration memo_epoch_ttl = std::chrono::hours(24);

/// `<scope_base>fe:<function name>`: the token the last cache_clear of the function in that
/// scope wrote.
inline std::string memo_epoch_key(std::string_view scope, std::string_view function_name) {
  return make_key(scope, Kind::memo_epoch, function_name);
}

/// Generations of clears in this process, one per (scope, function) hashed into a fixed set
/// of counters: memory stays bounded however many tenants are cleared, and two pairs that
/// share a counter only cost an extra computation, never a stale result.
class MemoClears {
 public:
  using Generation = std::uint64_t;

  /// The counter of (scope, function).
  std::size_t slot(std::string_view scope, std::string_view function_name) const noexcept {
    const std::size_t h =
        std::hash<std::string_view>{}(scope)*31 + std::hash<std::string_view>{}(function_name);
    return h % counters_.size();
  }
  Generation current(std::size_t slot) const noexcept {
    return counters_[slot].load(std::memory_order_acquire);
  }
  /// Called when a clear starts, before any of its I/O.
  void bump(std::size_t slot) noexcept { counters_[slot].fetch_add(1, std::memory_order_acq_rel); }

 private:
  std::array<std::atomic<Generation>, 256> counters_{};
};

}  // namespace corocache::detail
