#pragma once
// The memory backend's state: sharded maps of values, locks, queues and index sets, with
// expiry, capacity and eviction. Every operation here is synchronous; memory_backend.hpp
// wraps them in awaitables and runs the periodic sweep.
//
// Locking (no global mutex on any path that touches one key):
// - A key's shard is chosen from its hash. Each shard has `mu` (its values, locks, queues,
//   policy and counters) and `index_mu` (its index sets).
// - Several `mu` are only ever taken in ascending shard order (commit).
// - `index_mu` is a leaf: taken one at a time, possibly while holding `mu`s, and nothing
//   else is ever locked while holding it. So no lock cycle can form.
// Index sets map each member key to the version of the store that listed it. A member is
// live only if its value is live and still carries that version, which keeps listing
// correct even while a concurrent store moves the key between indices; dead members are
// removed eagerly whenever their value goes (erase, expiry, eviction, last read), and
// pruned on listing.

#include <corocache/backend.hpp>
#include <corocache/detail/deadline.hpp>
#include <corocache/detail/memory/key_map.hpp>
#include <corocache/detail/memory/pop_waiter.hpp>
#include <corocache/detail/memory/s3fifo.hpp>
#include <corocache/detail/memory/shard_mutex.hpp>
#include <corocache/errors.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

namespace corocache::detail::memory {

/// Steady-clock nanoseconds: deadlines are monotonic, immune to wall-clock changes.
using Nanos = std::int64_t;
inline constexpr Nanos never = std::numeric_limits<Nanos>::max();

inline Nanos now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// now + ttl, saturating at `never` instead of overflowing (the shared helper of
/// detail/deadline.hpp, in this file's nanosecond representation).
inline Nanos deadline_after(Nanos now, Duration ttl) noexcept {
  using Clock = Deadline::Clock;
  const Clock::time_point from{std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(now))};
  return std::chrono::duration_cast<std::chrono::nanoseconds>(saturating_after(ttl, from).time_since_epoch())
      .count();
}

/// What a stored value is charged against max_bytes besides its key and value bytes: the
/// hash node (key string, entry, cached hash), the bucket slot and allocator headers.
/// Measured on x86-64 / libstdc++ 12 (see memory_backend.hpp).
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
    while (n > 1 && max_entries != 0 && max_entries < n) n /= 2;
  }
  return n;
}

/// Totals over all shards.
struct Counters {
  std::size_t entries = 0, bytes = 0, evictions = 0, expirations = 0, rejections = 0, hits = 0, misses = 0,
              locks = 0, queues = 0, queued_values = 0, waiting_pops = 0, index_sets = 0;
};

class Store : public std::enable_shared_from_this<Store> {
 public:
  Store(asio::any_io_executor ex, const StoreConfig& config)
      : executor_(std::move(ex)),
        shards_(new Shard[config.shards]),
        shard_count_(config.shards),
        shard_shift_(64 - std::countr_zero(config.shards)),
        reject_(config.reject_when_full) {
    for (std::size_t i = 0; i < shard_count_; ++i) {
      shards_[i].max_entries = share(config.max_entries, i);
      shards_[i].max_bytes = share(config.max_bytes, i);
    }
  }

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// Pending pops fail with errc::shut_down.
  ~Store() {
    const auto error = std::make_exception_ptr(
        boost::system::system_error(make_error_code(errc::shut_down), "corocache: memory backend destroyed"));
    for (std::size_t i = 0; i < shard_count_; ++i) {
      std::lock_guard lock(shards_[i].mu);
      for (auto& [key, q] : shards_[i].queues) {
        for (auto& w : q.waiters) w->complete(error, std::nullopt);
        q.waiters.clear();
      }
    }
  }

  std::size_t shard_count() const noexcept { return shard_count_; }
  const asio::any_io_executor& executor() const noexcept { return executor_; }

  // --- values -----------------------------------------------------------------------------

  /// Takes what it keeps of key, value and params (by rvalue reference: the caller's
  /// coroutine frame already owns them, so nothing is moved on the way here).
  bool set(std::string&& key, std::string&& value, StoreParams&& params) {
    const KeyRef k(key);
    Shard& s = shard_for(k.hash);
    std::lock_guard lock(s.mu);
    return set_locked(s, k, std::move(key), std::move(value), std::move(params), now_ns());
  }

  std::optional<std::string> get(std::string_view key) {
    const KeyRef k(key);
    Shard& s = shard_for(k.hash);
    std::lock_guard lock(s.mu);
    const auto it = s.values.find(k);
    if (it == s.values.end()) {
      ++s.misses;
      return std::nullopt;
    }
    ValueEntry& e = it->second;
    if (e.deadline <= now_ns()) {
      drop(s, it, Removal::expired);
      ++s.misses;
      return std::nullopt;
    }
    ++s.hits;
    if (e.reads_left != 0 && --e.reads_left == 0) {
      std::string last;
      drop(s, it, Removal::consumed, &last);
      return last;
    }
    s.policy.touch(e);
    return e.value;
  }

  bool erase(std::string_view key) {
    const KeyRef k(key);
    Shard& s = shard_for(k.hash);
    std::lock_guard lock(s.mu);
    return erase_locked(s, k, now_ns());
  }

  bool expire(std::string_view key, Duration ttl) {
    const KeyRef k(key);
    Shard& s = shard_for(k.hash);
    std::lock_guard lock(s.mu);
    return expire_locked(s, k, ttl, now_ns());
  }

  // --- indices ----------------------------------------------------------------------------

  std::vector<std::string> index_members(std::string_view index_key) {
    std::vector<std::pair<std::string, std::uint32_t>> listed = snapshot_index(index_key, false);
    std::vector<std::string> live;
    std::vector<std::pair<std::string, std::uint32_t>> dead;
    const Nanos now = now_ns();
    for (auto& [member, version] : listed) {
      const KeyRef k(member);
      Shard& s = shard_for(k.hash);
      std::unique_lock lock(s.mu);
      const auto it = s.values.find(k);
      if (it != s.values.end() && it->second.version == version && it->second.deadline > now) {
        lock.unlock();
        live.push_back(std::move(member));
      } else {
        lock.unlock();
        dead.emplace_back(std::move(member), version);
      }
    }
    if (!dead.empty()) {
      const KeyRef ik(index_key);
      Shard& is = shard_for(ik.hash);
      std::lock_guard lock(is.index_mu);
      if (const auto set = is.indices.find(ik); set != is.indices.end()) {
        for (const auto& [member, version] : dead) {
          const auto m = set->second.find(KeyRef(member));
          if (m != set->second.end() && m->second == version) set->second.erase(m);
        }
        if (set->second.empty()) is.indices.erase(set);
      }
    }
    return live;
  }

  /// `shards_held`: the caller holds every shard's `mu` (commit).
  std::size_t erase_index(std::string_view index_key, bool shards_held = false) {
    std::vector<std::pair<std::string, std::uint32_t>> listed = snapshot_index(index_key, true);
    std::size_t removed = 0;
    const Nanos now = now_ns();
    for (const auto& [member, version] : listed) {
      const KeyRef k(member);
      Shard& s = shard_for(k.hash);
      std::unique_lock lock(s.mu, std::defer_lock);
      if (!shards_held) lock.lock();
      const auto it = s.values.find(k);
      if (it == s.values.end() || it->second.version != version) continue;
      const bool live = it->second.deadline > now;
      drop(s, it, live ? Removal::erased : Removal::expired);
      removed += live ? 1 : 0;
    }
    return removed;
  }

  // --- queues -----------------------------------------------------------------------------

  void push(std::string queue_key, std::string value) {
    const KeyRef k(queue_key);
    Shard& s = shard_for(k.hash);
    std::lock_guard lock(s.mu);
    push_locked(s, k, std::move(queue_key), std::move(value));
  }

  /// Gives back a value popped for a caller that is gone (cancelled after the value was
  /// handed to it): it becomes the oldest element again (or goes to a waiting pop).
  void return_to_head(std::string queue_key, std::string value) {
    const KeyRef k(queue_key);
    Shard& s = shard_for(k.hash);
    std::lock_guard lock(s.mu);
    push_locked(s, k, std::move(queue_key), std::move(value), true);
  }

  /// The oldest element, or nullopt when the queue is empty (no waiting).
  std::optional<std::string> try_pop(std::string_view queue_key) {
    const KeyRef k(queue_key);
    Shard& s = shard_for(k.hash);
    std::lock_guard lock(s.mu);
    return pop_locked(s, k);
  }

  /// Completes `handler` (posted, never inline) with the oldest element, or parks it until
  /// a push, `wait` passing (nullopt), a cancellation signal on the handler's slot (any
  /// type: a parked pop has no side effects to undo; completes with operation_aborted) or
  /// the store's destruction (errc::shut_down).
  void pop_or_wait(std::string queue_key, Duration wait, asio::any_completion_handler<PopSignature> handler) {
    const KeyRef k(queue_key);
    Shard& s = shard_for(k.hash);
    std::lock_guard lock(s.mu);
    asio::cancellation_slot slot = handler.get_cancellation_slot();
    auto w = std::make_shared<PopWaiter>(executor_, std::move(handler));
    if (auto v = pop_locked(s, k)) {
      w->complete(nullptr, std::move(v));
      return;
    }
    auto it = s.queues.find(k);
    if (it == s.queues.end()) it = s.queues.try_emplace(std::move(queue_key)).first;
    it->second.waiters.push_back(w);
    expire_after(w->timer, wait);
    w->timer.async_wait([w, weak = weak_from_this(), key = it->first](const boost::system::error_code&) {
      if (auto self = weak.lock()) self->abandon_pop(key, w, nullptr);
    });
    if (slot.is_connected()) {
      // Holds only weak references and checks `done` under the shard mutex, so it is
      // harmless if the signal comes after the pop completed (the slot is not cleared).
      slot.assign([weak = weak_from_this(), weak_waiter = std::weak_ptr<PopWaiter>(w),
                   key = it->first](asio::cancellation_type) {
        const auto self = weak.lock();
        const auto waiter = weak_waiter.lock();
        if (self && waiter) {
          self->abandon_pop(
              key, waiter,
              std::make_exception_ptr(boost::system::system_error(asio::error::operation_aborted)));
        }
      });
    }
  }

  // --- locks ------------------------------------------------------------------------------

  bool try_lock(std::string lock_key, std::string token, Duration ttl) {
    const KeyRef k(lock_key);
    Shard& s = shard_for(k.hash);
    std::lock_guard lock(s.mu);
    const Nanos now = now_ns();
    const auto it = s.locks.find(k);
    if (it == s.locks.end()) {
      s.locks.try_emplace(std::move(lock_key), LockEntry{std::move(token), deadline_after(now, ttl)});
      return true;
    }
    if (it->second.deadline > now) return false;
    it->second = LockEntry{std::move(token), deadline_after(now, ttl)};
    return true;
  }

  bool unlock(std::string_view lock_key, std::string_view token) {
    const KeyRef k(lock_key);
    Shard& s = shard_for(k.hash);
    std::lock_guard lock(s.mu);
    const auto it = s.locks.find(k);
    if (it == s.locks.end()) return false;
    if (it->second.deadline <= now_ns()) {
      s.locks.erase(it);
      return false;
    }
    if (it->second.token != token) return false;
    s.locks.erase(it);
    return true;
  }

  // --- bulk -------------------------------------------------------------------------------

  /// `shards_held`: the caller holds every shard's `mu` (commit).
  std::size_t erase_prefix(std::string_view prefix, bool shards_held = false) {
    std::size_t removed = 0;
    const Nanos now = now_ns();
    const auto matches = [prefix](const std::string& key) { return key.starts_with(prefix); };
    for (std::size_t i = 0; i < shard_count_; ++i) {
      Shard& s = shards_[i];
      std::unique_lock lock(s.mu, std::defer_lock);
      if (!shards_held) lock.lock();
      for (auto it = s.values.begin(); it != s.values.end();) {
        if (!matches(it->first)) {
          ++it;
          continue;
        }
        const bool live = it->second.deadline > now;
        removed += live ? 1 : 0;
        it = drop(s, it, live ? Removal::erased : Removal::expired);
      }
      for (auto it = s.locks.begin(); it != s.locks.end();) {
        if (!matches(it->first)) {
          ++it;
          continue;
        }
        removed += it->second.deadline > now ? 1 : 0;
        it = s.locks.erase(it);
      }
      for (auto it = s.queues.begin(); it != s.queues.end();) {
        if (!matches(it->first) || it->second.items.empty()) {
          ++it;
          continue;
        }
        ++removed;
        it->second.items.clear();
        it = it->second.waiters.empty() ? s.queues.erase(it) : std::next(it);
      }
    }
    // Index sets last: the values above took their memberships with them, so a set still
    // here lists values outside the prefix (or was left empty by nothing: never stored).
    for (std::size_t i = 0; i < shard_count_; ++i) {
      Shard& s = shards_[i];
      std::lock_guard lock(s.index_mu);
      for (auto it = s.indices.begin(); it != s.indices.end();) {
        if (!matches(it->first)) {
          ++it;
          continue;
        }
        removed += it->second.empty() ? 0 : 1;
        it = s.indices.erase(it);
      }
    }
    return removed;
  }

  /// The predicate runs without any lock held (it is user code); a value stored again
  /// between the predicate seeing it and the removal is left alone.
  std::size_t erase_if(std::string_view prefix, const EntryPredicate& predicate, std::int64_t limit) {
    std::size_t removed = 0;
    const auto budget_left = [&] { return limit < 0 || removed < static_cast<std::size_t>(limit); };
    struct Candidate {
      std::string key, value;
      std::uint32_t version;
    };
    std::vector<Candidate> candidates;
    std::vector<std::size_t> chosen;
    for (std::size_t i = 0; i < shard_count_ && budget_left(); ++i) {
      Shard& s = shards_[i];
      candidates.clear();
      chosen.clear();
      {
        std::lock_guard lock(s.mu);
        const Nanos now = now_ns();
        for (const auto& [key, e] : s.values) {
          if (e.deadline > now && key.starts_with(prefix)) candidates.push_back({key, e.value, e.version});
        }
      }
      for (std::size_t c = 0; c < candidates.size() && removed + chosen.size() < max_removals(limit); ++c) {
        if (predicate(candidates[c].key, candidates[c].value)) chosen.push_back(c);
      }
      if (chosen.empty()) continue;
      std::lock_guard lock(s.mu);
      const Nanos now = now_ns();
      for (const std::size_t c : chosen) {
        if (!budget_left()) break;
        const auto it = s.values.find(KeyRef(candidates[c].key));
        if (it == s.values.end() || it->second.version != candidates[c].version || it->second.deadline <= now)
          continue;
        drop(s, it, Removal::erased);
        ++removed;
      }
    }
    return removed;
  }

  /// Applies `ops` in order while holding every involved shard (ascending order), so no
  /// other caller observes a partial batch; an EraseIndex or ErasePrefix involves every
  /// shard. A store rejected for capacity throws after the operations before it were
  /// applied (like a failing command inside MULTI/EXEC).
  void commit(std::vector<BatchOp> ops) {
    std::vector<std::size_t> involved;
    involved.reserve(ops.size());
    bool every_shard = false;
    for (const BatchOp& op : ops) {
      every_shard = every_shard || std::holds_alternative<batch_op::EraseIndex>(op) ||
                    std::holds_alternative<batch_op::ErasePrefix>(op);
      std::visit([&](const auto& o) { involved.push_back(shard_index(hash_key(key_of(o)))); }, op);
    }
    if (every_shard) {
      involved.resize(shard_count_);
      for (std::size_t i = 0; i < shard_count_; ++i) involved[i] = i;
    }
    std::sort(involved.begin(), involved.end());
    involved.erase(std::unique(involved.begin(), involved.end()), involved.end());
    std::vector<std::unique_lock<ShardMutex>> held;
    held.reserve(involved.size());
    for (const std::size_t i : involved) held.emplace_back(shards_[i].mu);
    const Nanos now = now_ns();
    for (BatchOp& op : ops) {
      if (auto* st = std::get_if<batch_op::Store>(&op)) {
        const KeyRef k(st->key);
        set_locked(shard_for(k.hash), k, std::move(st->key), std::move(st->value), std::move(st->params),
                   now);
      } else if (auto* er = std::get_if<batch_op::Erase>(&op)) {
        const KeyRef k(er->key);
        erase_locked(shard_for(k.hash), k, now);
      } else if (auto* ex = std::get_if<batch_op::Expire>(&op)) {
        const KeyRef k(ex->key);
        expire_locked(shard_for(k.hash), k, ex->ttl, now);
      } else if (auto* pu = std::get_if<batch_op::Push>(&op)) {
        const KeyRef k(pu->queue_key);
        push_locked(shard_for(k.hash), k, std::move(pu->queue_key), std::move(pu->value));
      } else if (auto* ei = std::get_if<batch_op::EraseIndex>(&op)) {
        erase_index(ei->index_key, true);
      } else if (auto* ep = std::get_if<batch_op::ErasePrefix>(&op)) {
        erase_prefix(ep->prefix, true);
      }
    }
  }

  // --- maintenance ------------------------------------------------------------------------

  /// One round of the periodic sweep: in every shard whose earliest deadline has passed,
  /// visits the next slice of the value table (at least 1024 buckets, an eighth of it for
  /// large tables; more rounds while over a quarter of what it visits is dead) and drops
  /// what has expired; likewise for locks. A full pass over a table takes at most 8 ticks.
  void sweep_tick() {
    for (std::size_t i = 0; i < shard_count_; ++i) {
      Shard& s = shards_[i];
      std::lock_guard lock(s.mu);
      const Nanos now = now_ns();
      if (now >= s.earliest_deadline) {
        for (int round = 0; round < 4; ++round) {
          const std::size_t budget = std::max<std::size_t>(1024, s.values.bucket_count() / 8);
          const auto [visited, dropped] = sweep_values(s, now, budget);
          if (dropped * 4 <= visited) break;
        }
      }
      sweep_locks(s, now, std::max<std::size_t>(256, s.locks.bucket_count() / 8));
    }
  }

  Counters counters() const {
    Counters c;
    for (std::size_t i = 0; i < shard_count_; ++i) {
      Shard& s = shards_[i];
      {
        std::lock_guard lock(s.mu);
        c.entries += s.values.size();
        c.bytes += s.bytes;
        c.evictions += s.evictions;
        c.expirations += s.expirations;
        c.rejections += s.rejections;
        c.hits += s.hits;
        c.misses += s.misses;
        c.locks += s.locks.size();
        for (const auto& [key, q] : s.queues) {
          c.queues += q.items.empty() ? 0 : 1;
          c.queued_values += q.items.size();
          c.waiting_pops += q.waiters.size();
        }
      }
      std::lock_guard lock(s.index_mu);
      c.index_sets += s.indices.size();
    }
    return c;
  }

 private:
  static std::string_view key_of(const batch_op::Store& o) noexcept { return o.key; }
  static std::string_view key_of(const batch_op::Erase& o) noexcept { return o.key; }
  static std::string_view key_of(const batch_op::Expire& o) noexcept { return o.key; }
  static std::string_view key_of(const batch_op::Push& o) noexcept { return o.queue_key; }
  static std::string_view key_of(const batch_op::EraseIndex& o) noexcept { return o.index_key; }
  static std::string_view key_of(const batch_op::ErasePrefix& o) noexcept { return o.prefix; }

  static std::size_t max_removals(std::int64_t limit) noexcept {
    return limit < 0 ? std::numeric_limits<std::size_t>::max() : static_cast<std::size_t>(limit);
  }

  std::size_t share(std::size_t total, std::size_t shard) const noexcept {
    return total / shard_count_ + (shard < total % shard_count_ ? 1 : 0);
  }

  std::size_t shard_index(std::size_t hash) const noexcept {
    // Fibonacci hashing of the full hash: the map's buckets use hash % prime, the shard
    // uses the top bits of a multiplicative mix, so the two stay independent.
    if (shard_count_ == 1) return 0;
    return static_cast<std::size_t>((static_cast<std::uint64_t>(hash) * 0x9E3779B97F4A7C15ull) >>
                                    shard_shift_);
  }
  Shard& shard_for(std::size_t hash) const noexcept { return shards_[shard_index(hash)]; }

  [[noreturn]] static void throw_full() {
    throw_error(errc::capacity_exceeded,
                "corocache: memory backend is full (MemoryOptions::when_full = reject)");
  }

  bool set_locked(Shard& s, const KeyRef& k, std::string&& key, std::string&& value, StoreParams&& params,
                  Nanos now) {
    auto it = s.values.find(k);
    if (it != s.values.end() && it->second.deadline <= now) {
      drop(s, it, Removal::expired);
      it = s.values.end();
    }
    if (it != s.values.end() && params.nx) return false;
    const std::size_t charge = charge_of(k.key, value);
    if (s.max_bytes != 0 && charge > s.max_bytes) {
      ++s.rejections;
      throw_error(errc::capacity_exceeded,
                  "corocache: value larger than a memory backend shard's share of max_bytes");
    }
    const Nanos deadline = deadline_after(now, params.ttl);
    std::unique_ptr<std::vector<std::string>> indices;
    if (!params.index_keys.empty()) [[unlikely]]
      indices = std::make_unique<std::vector<std::string>>(std::move(params.index_keys));

    if (it != s.values.end()) {
      // Overwrite: counts as an access; the entry leaves the policy while room is made so
      // it can never evict itself, then re-enters with its hit recorded.
      ValueEntry& e = it->second;
      const std::size_t old_charge = charge_of(k.key, e.value);
      s.policy.remove(e);
      const std::size_t growth = charge > old_charge ? charge - old_charge : 0;
      if (over_limit(s, growth, 0) && !make_room(s, growth, 0, now)) {
        s.policy.insert(e);
        s.policy.touch(e);
        ++s.rejections;
        throw_full();
      }
      s.bytes = s.bytes - old_charge + charge;
      e.value = std::move(value);
      e.deadline = deadline;
      e.reads_left = params.max_reads;
      const std::uint32_t old_version = e.version;
      e.version = ++s.next_version;
      auto old_indices = std::exchange(e.indices, std::move(indices));
      s.policy.insert(e);
      s.policy.touch(e);
      // List first, then unlist: an index in both sets never loses the key, not even
      // to a concurrent listing.
      if (e.indices) list(*e.key, e.version, *e.indices);
      if (old_indices) unlist(*e.key, old_version, *old_indices);
    } else {
      if (over_limit(s, charge, 1) && !make_room(s, charge, 1, now)) {
        ++s.rejections;
        throw_full();
      }
      it = s.values.try_emplace(std::move(key)).first;
      ValueEntry& e = it->second;
      e.key = &it->first;
      e.fingerprint =
          static_cast<std::uint32_t>((static_cast<std::uint64_t>(k.hash) * 0xD6E8FEB86659FD93ull) >> 32);
      e.value = std::move(value);
      e.deadline = deadline;
      e.reads_left = params.max_reads;
      e.version = ++s.next_version;
      e.indices = std::move(indices);
      s.bytes += charge;
      s.policy.insert(e);
      if (e.indices) list(*e.key, e.version, *e.indices);
    }
    s.note_deadline(deadline);
    ++s.stores_since_full_scan;
    return true;
  }

  bool erase_locked(Shard& s, const KeyRef& k, Nanos now) {
    const auto it = s.values.find(k);
    if (it == s.values.end()) return false;
    const bool live = it->second.deadline > now;
    drop(s, it, live ? Removal::erased : Removal::expired);
    return live;
  }

  bool expire_locked(Shard& s, const KeyRef& k, Duration ttl, Nanos now) {
    const auto it = s.values.find(k);
    if (it == s.values.end()) return false;
    if (it->second.deadline <= now) {
      drop(s, it, Removal::expired);
      return false;
    }
    it->second.deadline = deadline_after(now, ttl);
    s.note_deadline(it->second.deadline);
    return true;
  }

  /// Hands `value` to the oldest unclaimed waiter, else queues it at the back (a push) or
  /// at the head (`to_head`: a popped value given back because its caller is gone).
  void push_locked(Shard& s, const KeyRef& k, std::string&& queue_key, std::string&& value,
                   bool to_head = false) {
    auto it = s.queues.find(k);
    if (it == s.queues.end()) it = s.queues.try_emplace(std::move(queue_key)).first;
    QueueEntry& q = it->second;
    while (!q.waiters.empty()) {
      std::shared_ptr<PopWaiter> w = std::move(q.waiters.front());
      q.waiters.pop_front();
      if (!w->done) {
        w->complete(nullptr, std::move(value));
        if (q.items.empty() && q.waiters.empty()) s.queues.erase(it);
        return;
      }
    }
    if (to_head) {
      q.items.push_front(std::move(value));
    } else {
      q.items.push_back(std::move(value));
    }
  }

  std::optional<std::string> pop_locked(Shard& s, const KeyRef& k) {
    const auto it = s.queues.find(k);
    if (it == s.queues.end() || it->second.items.empty()) return std::nullopt;
    std::optional<std::string> v(std::move(it->second.items.front()));
    it->second.items.pop_front();
    if (it->second.items.empty() && it->second.waiters.empty()) s.queues.erase(it);
    return v;
  }

  /// A parked pop's wait ran out (error: null -> nullopt) or it was cancelled.
  void abandon_pop(const std::string& queue_key, const std::shared_ptr<PopWaiter>& w,
                   std::exception_ptr error) {
    const KeyRef k(queue_key);
    Shard& s = shard_for(k.hash);
    std::lock_guard lock(s.mu);
    if (w->done) return;
    if (const auto it = s.queues.find(k); it != s.queues.end()) {
      auto& waiters = it->second.waiters;
      waiters.erase(std::remove(waiters.begin(), waiters.end(), w), waiters.end());
      if (waiters.empty() && it->second.items.empty()) s.queues.erase(it);
    }
    w->complete(std::move(error), std::nullopt);
  }

  /// Copies (or, with `take`, removes) an index set's members.
  std::vector<std::pair<std::string, std::uint32_t>> snapshot_index(std::string_view index_key, bool take) {
    const KeyRef ik(index_key);
    Shard& is = shard_for(ik.hash);
    std::vector<std::pair<std::string, std::uint32_t>> out;
    std::lock_guard lock(is.index_mu);
    const auto set = is.indices.find(ik);
    if (set == is.indices.end()) return out;
    out.reserve(set->second.size());
    for (const auto& [member, version] : set->second) out.emplace_back(member, version);
    if (take) is.indices.erase(set);
    return out;
  }

  void list(const std::string& key, std::uint32_t version, const std::vector<std::string>& index_keys) {
    for (const std::string& index_key : index_keys) {
      const KeyRef ik(index_key);
      Shard& is = shard_for(ik.hash);
      std::lock_guard lock(is.index_mu);
      auto set = is.indices.find(ik);
      if (set == is.indices.end()) set = is.indices.try_emplace(index_key).first;
      const auto m = set->second.find(KeyRef(key));
      if (m == set->second.end()) {
        set->second.try_emplace(key, version);
      } else {
        m->second = version;
      }
    }
  }

  void unlist(const std::string& key, std::uint32_t version, const std::vector<std::string>& index_keys) {
    const KeyRef mk(key);
    for (const std::string& index_key : index_keys) {
      const KeyRef ik(index_key);
      Shard& is = shard_for(ik.hash);
      std::lock_guard lock(is.index_mu);
      const auto set = is.indices.find(ik);
      if (set == is.indices.end()) continue;
      const auto m = set->second.find(mk);
      if (m != set->second.end() && m->second == version) set->second.erase(m);
      if (set->second.empty()) is.indices.erase(set);
    }
  }

  /// Removes a value: policy, byte count, counters, index memberships. With `take`, the
  /// value is moved there. Returns the next iterator.
  KeyMap<ValueEntry>::iterator drop(Shard& s, KeyMap<ValueEntry>::iterator it, Removal why,
                                    std::string* take = nullptr) {
    ValueEntry& e = it->second;
    s.policy.remove(e);
    s.bytes -= charge_of(it->first, e.value);
    if (why == Removal::expired) ++s.expirations;
    if (why == Removal::evicted) ++s.evictions;
    if (e.indices) unlist(it->first, e.version, *e.indices);
    if (take != nullptr) *take = std::move(e.value);
    return s.values.erase(it);
  }

  bool over_limit(const Shard& s, std::size_t add_bytes, std::size_t add_entries) const noexcept {
    return (s.max_entries != 0 && s.values.size() + add_entries > s.max_entries) ||
           (s.max_bytes != 0 && s.bytes + add_bytes > s.max_bytes);
  }

  /// Frees room for `add_bytes` / `add_entries` more. Expired values always go first: when
  /// something may have expired, all of the shard is scanned (at most once per size/8
  /// stores; in between, a bounded slice); live values are evicted by the policy only
  /// after that, and never in reject mode. False when the room cannot be made.
  bool make_room(Shard& s, std::size_t add_bytes, std::size_t add_entries, Nanos now) {
    if (!over_limit(s, add_bytes, add_entries)) return true;
    if (now >= s.earliest_deadline) {
      if (s.stores_since_full_scan >= s.values.size() / 8) {
        full_expiry_scan(s, now);
      } else {
        sweep_values(s, now, 64);
      }
      if (!over_limit(s, add_bytes, add_entries)) return true;
    }
    if (reject_) return false;
    const auto is_dead = [now](const PolicyHook& h) {
      return static_cast<const ValueEntry&>(h).deadline <= now;
    };
    while (over_limit(s, add_bytes, add_entries)) {
      PolicyHook* victim = s.policy.evict(is_dead);
      if (victim == nullptr) return false;
      auto& e = static_cast<ValueEntry&>(*victim);
      drop(s, s.values.find(KeyRef(*e.key)), e.deadline <= now ? Removal::expired : Removal::evicted);
    }
    return true;
  }

  void full_expiry_scan(Shard& s, Nanos now) {
    Nanos earliest = never;
    for (auto it = s.values.begin(); it != s.values.end();) {
      if (it->second.deadline <= now) {
        it = drop(s, it, Removal::expired);
      } else {
        earliest = std::min(earliest, it->second.deadline);
        ++it;
      }
    }
    s.earliest_deadline = earliest;
    s.stores_since_full_scan = 0;
  }

  /// Visits up to `budget` buckets of the value table from the sweep cursor; returns
  /// (values visited, values dropped).
  std::pair<std::size_t, std::size_t> sweep_values(Shard& s, Nanos now, std::size_t budget) {
    const std::size_t buckets = s.values.bucket_count();
    if (buckets != s.pass_buckets) {
      // The table was rehashed: entries moved between buckets, so restart the pass (its
      // running minimum would miss entries that moved behind the cursor).
      s.pass_buckets = buckets;
      s.value_cursor = 0;
      s.pass_earliest = never;
    }
    std::size_t visited = 0;
    s.scratch.clear();
    for (std::size_t n = 0; n < budget; ++n) {
      if (s.value_cursor >= buckets) {
        // Pass complete: every value present now was seen or stored since the pass began.
        s.earliest_deadline = s.pass_earliest;
        s.pass_earliest = never;
        s.value_cursor = 0;
        break;
      }
      for (auto it = s.values.begin(s.value_cursor); it != s.values.end(s.value_cursor); ++it) {
        ++visited;
        if (it->second.deadline <= now) {
          s.scratch.push_back(&it->first);
        } else {
          s.pass_earliest = std::min(s.pass_earliest, it->second.deadline);
        }
      }
      ++s.value_cursor;
    }
    // Dropping one node leaves every other node (and so every other scratch key) in place.
    for (const std::string* key : s.scratch) drop(s, s.values.find(KeyRef(*key)), Removal::expired);
    const std::size_t dropped = s.scratch.size();
    s.scratch.clear();
    return {visited, dropped};
  }

  void sweep_locks(Shard& s, Nanos now, std::size_t budget) {
    const std::size_t buckets = s.locks.bucket_count();
    s.scratch.clear();
    for (std::size_t n = 0; n < budget && n < buckets; ++n) {
      if (s.lock_cursor >= buckets) s.lock_cursor = 0;
      for (auto it = s.locks.begin(s.lock_cursor); it != s.locks.end(s.lock_cursor); ++it) {
        if (it->second.deadline <= now) s.scratch.push_back(&it->first);
      }
      ++s.lock_cursor;
    }
    for (const std::string* key : s.scratch) s.locks.erase(s.locks.find(KeyRef(*key)));
    s.scratch.clear();
  }

  asio::any_io_executor executor_;
  std::unique_ptr<Shard[]> shards_;
  std::size_t shard_count_;
  int shard_shift_;
  bool reject_;
};

}  // namespace corocache::detail::memory
