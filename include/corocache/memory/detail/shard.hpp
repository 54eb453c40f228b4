#pragma once
// The memory backend's shards: what one shard holds (its value, lock and queue tables under
// `mu`, its index sets under `index_mu`), how many shards there are, and which one a key
// belongs to. The tables' operations live in value_table.hpp, index_table.hpp,
// queue_table.hpp and lock_table.hpp; store.hpp composes them.
//
// Locking (no global mutex on any path that touches one key):
// - A key's shard is chosen from its hash. Each shard has `mu` (its values, locks, queues,
//   policy and counters) and `index_mu` (its index sets).
// - Several `mu` are only ever taken in ascending shard order (Store::commit).
// - `index_mu` is a leaf: taken one at a time, possibly while holding `mu`s, and nothing
//   else is ever locked while holding it. So no lock cycle can form.

#include <corocache/backend.hpp>
#include <corocache/memory/detail/clock.hpp>
#include <corocache/memory/detail/key_map.hpp>
#include <corocache/memory/detail/pop_waiter.hpp>
#include <corocache/memory/detail/s3fifo.hpp>
#include <corocache/memory/detail/shard_mutex.hpp>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace corocache::detail::memory {

/// What a stored value is charged against max_bytes besides its key and value bytes: the
/// hash node (key string, entry, cached hash), the bucket slot and allocator headers.
/// Measured on x86-64 / libstdc++ 12 (see memory/backend.hpp).
inline constexpr std::size_t entry_overhead = 190;

inline std::size_t charge_of(std::string_view key, std::string_view value) noexcept {
  return key.size() + value.size() + entry_overhead;
}

struct ValueEntry : PolicyHook {
  std::string value;
  Nanos deadline = never;
  /// The key this entry is stored under (the map node's key: nodes never move).
  const std::string* key = nullptr;
  /// Index keys listing this value (its latest store's), or null: most values have none.
  std::unique_ptr<std::vector<std::string>> indices;
  /// Distinguishes successive stores of one key (index membership, erase_if re-checks).
  std::uint32_t version = 0;
  /// Reads left before the value is removed; 0 = unlimited.
  std::uint32_t reads_left = 0;
};

struct LockEntry {
  std::string token;
  Nanos deadline = never;
};

struct QueueEntry {
  std::deque<std::string> items;
  /// Pending pops, oldest first (all unclaimed: a claimed waiter leaves this list).
  std::deque<std::shared_ptr<PopWaiter>> waiters;
};

/// member value key -> version of the store that listed it.
using IndexSet = KeyMap<std::uint32_t>;

enum class Removal { erased, expired, evicted, consumed };

/// One shard; aligned to a cache line so two shards' mutexes never share one.
struct alignas(64) Shard {
  // A get touches only the first cache line of its shard: the lock, its hit or miss counter
  // and the part of the value table a lookup reads (bucket array, bucket count, first node,
  // size), so a shard used by two threads in turn moves one line between cores per get.
  ShardMutex mu;  // see shard_mutex.hpp for why not std::mutex
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  KeyMap<ValueEntry> values;
  KeyMap<LockEntry> locks;
  KeyMap<QueueEntry> queues;
  S3Fifo policy;
  std::size_t max_entries = 0;  // this shard's share; 0 = unbounded
  std::size_t max_bytes = 0;
  std::size_t bytes = 0;
  std::uint64_t evictions = 0;
  std::uint64_t expirations = 0;
  std::uint64_t rejections = 0;
  std::uint32_t next_version = 0;
  /// Lower bound of every value's deadline: while now < this, nothing here has expired.
  Nanos earliest_deadline = never;
  /// Sweep pass state: bucket cursor, the table size it started with, and the smallest
  /// deadline seen so far (becomes earliest_deadline when a pass completes).
  std::size_t value_cursor = 0;
  std::size_t pass_buckets = 0;
  Nanos pass_earliest = never;
  std::size_t lock_cursor = 0;
  /// Stores since the last full expiry scan (amortizes scans under capacity pressure).
  std::size_t stores_since_full_scan = std::numeric_limits<std::size_t>::max() / 2;
  std::vector<const std::string*> scratch;  // keys to drop, reused by scans

  std::mutex index_mu;  // leaf lock, see the file comment
  KeyMap<IndexSet> indices;

  void note_deadline(Nanos d) noexcept {
    earliest_deadline = std::min(earliest_deadline, d);
    pass_earliest = std::min(pass_earliest, d);
  }
};

struct StoreConfig {
  std::size_t shards = 1;  // power of two
  std::size_t max_entries = 0;
  std::size_t max_bytes = 0;
  bool reject_when_full = false;
};

/// Shard count: `requested` (at most 1024, rounded up to a power of two) or, when 0, 32 per
/// hardware thread (at most 64); then halved while a shard's share of a limit would be too
/// small to be useful (64 entries, 256 KiB), down to 1.
/// Why so many: a get or set holds its shard's mutex for most of its run (the table lookup
/// and the value copy are cache misses), so with few shards two threads often want the same
/// one, and a contended lock sleeps in the kernel (futex wait + wake, microseconds).
/// memory_bench get-hit 100k on 2 cores (measured with std::mutex, before ShardMutex): 8 shards
/// scale 1.0-1.3x with CPU per op +30-40%, 64 shards scale 1.76x with CPU per op +4%.
inline std::size_t choose_shard_count(std::size_t requested, std::size_t max_entries, std::size_t max_bytes,
                                      unsigned hardware_threads) {
  std::size_t n = requested != 0
                      ? std::bit_ceil(std::min<std::size_t>(requested, 1024))
                      : std::clamp<std::size_t>(std::bit_ceil(std::size_t{hardware_threads} * 32), 1, 64);
  if (requested == 0) {
    while (n > 1 && max_entries != 0 && max_entries / n < 64) n /= 2;
    while (n > 1 && max_bytes != 0 && max_bytes / n < (256u << 10)) n /= 2;
  } else {
    // Every shard gets at least one entry and one byte of a limit: a share of 0 would mean
    // "unbounded" for that shard.
    while (n > 1 && max_entries != 0 && max_entries < n) n /= 2;
    while (n > 1 && max_bytes != 0 && max_bytes < n) n /= 2;
  }
  return n;
}

/// Totals over all shards.
struct Counters {
  std::size_t entries = 0, bytes = 0, evictions = 0, expirations = 0, rejections = 0, hits = 0, misses = 0,
              locks = 0, queues = 0, queued_values = 0, waiting_pops = 0, index_sets = 0;
};

/// The shards, and which one holds a key. Shared (by reference) by every table.
class ShardArray {
 public:
  explicit ShardArray(const StoreConfig& config)
      : shards_(new Shard[config.shards]),
        count_(config.shards),
        shift_(64 - std::countr_zero(config.shards)) {
    for (std::size_t i = 0; i < count_; ++i) {
      shards_[i].max_entries = share(config.max_entries, i);
      shards_[i].max_bytes = share(config.max_bytes, i);
    }
  }

  std::size_t size() const noexcept { return count_; }
  Shard& operator[](std::size_t i) const noexcept { return shards_[i]; }

  std::size_t index_of(std::size_t hash) const noexcept {
    // Fibonacci hashing of the full hash: the map's buckets use hash % prime, the shard
    // uses the top bits of a multiplicative mix, so the two stay independent.
    if (count_ == 1) return 0;
    return static_cast<std::size_t>((static_cast<std::uint64_t>(hash) * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  Shard& for_hash(std::size_t hash) const noexcept { return shards_[index_of(hash)]; }

 private:
  std::size_t share(std::size_t total, std::size_t shard) const noexcept {
    return total / count_ + (shard < total % count_ ? 1 : 0);
  }

  std::unique_ptr<Shard[]> shards_;
  std::size_t count_;
  int shift_;
};

}  // namespace corocache::detail::memory
