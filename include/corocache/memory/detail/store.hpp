#pragma once
// The memory backend's state: sharded tables of values, locks, queues and index sets, with
// expiry, capacity and eviction. Every operation here is synchronous; memory/backend.hpp
// wraps them in awaitables and runs the periodic sweep. Store composes the tables
// (value_table.hpp, index_table.hpp, queue_table.hpp, lock_table.hpp over the shards of
// shard.hpp, whose comment describes the locking) and does what spans several of them:
// listing and erasing an index, erase_prefix, batches, the sweep and the counters.

#include <corocache/backend.hpp>
#include <corocache/detail/context_shutdown.hpp>
#include <corocache/errors.hpp>
#include <corocache/memory/detail/clock.hpp>
#include <corocache/memory/detail/index_table.hpp>
#include <corocache/memory/detail/key_map.hpp>
#include <corocache/memory/detail/lock_table.hpp>
#include <corocache/memory/detail/pop_waiter.hpp>
#include <corocache/memory/detail/queue_table.hpp>
#include <corocache/memory/detail/shard.hpp>
#include <corocache/memory/detail/shard_mutex.hpp>
#include <corocache/memory/detail/value_table.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace corocache::detail::memory {

/// Time comes from `clock` (null: steady_clock). The owner subscribes the store to an
/// injected clock (MemoryClock::subscribe), whose jumps end the parked pops they time out,
/// and to its executor's context (ContextShutdown::watch), whose shutdown ends them all.
class Store final : public std::enable_shared_from_this<Store>,
                    public MemoryClock::Listener,
                    public ContextShutdownListener {
 public:
  Store(asio::any_io_executor ex, const StoreConfig& config, std::shared_ptr<MemoryClock> clock = nullptr)
      : time_(std::move(clock)),
        shards_(config),
        indices_(shards_),
        values_(shards_, time_, indices_, config.reject_when_full),
        queues_(shards_, time_, std::move(ex)),
        locks_(shards_, time_) {}

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// Pending pops fail with errc::shut_down.
  ~Store() { queues_.shut_down("corocache: memory backend destroyed"); }

  void clock_advanced() override { queues_.expire_waits(time_.now()); }

  /// Parked pops fail with errc::shut_down; the context destroys their coroutines.
  void on_context_shutdown() noexcept override {
    queues_.shut_down("corocache: memory backend: its execution context shut down");
  }

  std::size_t shard_count() const noexcept { return shards_.size(); }
  const asio::any_io_executor& executor() const noexcept { return queues_.executor(); }

  // --- values -----------------------------------------------------------------------------

  bool set(std::string&& key, std::string&& value, StoreParams&& params) {
    return values_.set(std::move(key), std::move(value), std::move(params));
  }
  std::optional<std::string> get(std::string_view key) { return values_.get(key); }
  bool erase(std::string_view key) { return values_.erase(key); }
  bool expire(std::string_view key, Duration ttl) { return values_.expire(key, ttl); }

  // --- indices ----------------------------------------------------------------------------

  std::vector<std::string> index_members(std::string_view index_key) {
    IndexTable::Members listed = indices_.snapshot(index_key, false);
    std::vector<std::string> live;
    IndexTable::Members dead;
    const Nanos now = time_.now();
    for (auto& [member, version] : listed) {
      if (values_.is_live(member, version, now)) {
        live.push_back(std::move(member));
      } else {
        dead.emplace_back(std::move(member), version);
      }
    }
    if (!dead.empty()) indices_.prune(index_key, dead);
    return live;
  }

  /// `shards_held`: the caller holds every shard's `mu` (commit).
  std::size_t erase_index(std::string_view index_key, bool shards_held = false) {
    const IndexTable::Members listed = indices_.snapshot(index_key, true);
    std::size_t removed = 0;
    const Nanos now = time_.now();
    for (const auto& [member, version] : listed)
      removed += values_.erase_version(member, version, now, shards_held) ? 1 : 0;
    return removed;
  }

  // --- queues -----------------------------------------------------------------------------

  void push(std::string queue_key, std::string value) {
    queues_.push(std::move(queue_key), std::move(value));
  }
  void return_to_head(std::string queue_key, std::string value) {
    queues_.return_to_head(std::move(queue_key), std::move(value));
  }
  std::optional<std::string> try_pop(std::string_view queue_key) { return queues_.try_pop(queue_key); }
  /// See QueueTable::pop_or_wait; the parked pop holds the store only weakly.
  void pop_or_wait(std::string queue_key, Duration wait, Duration cap,
                   asio::any_completion_handler<PopSignature> handler) {
    const std::shared_ptr<QueueTable> table(shared_from_this(), &queues_);
    queues_.pop_or_wait(table, std::move(queue_key), wait, cap, std::move(handler));
  }

  // --- locks ------------------------------------------------------------------------------

  bool try_lock(std::string lock_key, std::string token, Duration ttl) {
    return locks_.try_lock(std::move(lock_key), std::move(token), ttl);
  }
  bool unlock(std::string_view lock_key, std::string_view token) { return locks_.unlock(lock_key, token); }

  // --- bulk -------------------------------------------------------------------------------

  /// `shards_held`: the caller holds every shard's `mu` (commit).
  std::size_t erase_prefix(std::string_view prefix, bool shards_held = false) {
    std::size_t removed = 0;
    const Nanos now = time_.now();
    const auto matches = [prefix](const std::string& key) { return key.starts_with(prefix); };
    for (std::size_t i = 0; i < shards_.size(); ++i) {
      Shard& s = shards_[i];
      std::unique_lock lock(s.mu, std::defer_lock);
      if (!shards_held) lock.lock();
      removed += values_.erase_matching(s, matches, now);
      removed += locks_.erase_matching(s, matches, now);
      removed += queues_.erase_matching(s, matches);
    }
    // Index sets last: the values above took their memberships with them, so a set still
    // here lists values outside the prefix (or was left empty by nothing: never stored).
    for (std::size_t i = 0; i < shards_.size(); ++i) removed += indices_.erase_matching(shards_[i], matches);
    return removed;
  }

  /// See ValueTable::erase_if.
  std::size_t erase_if(std::string_view prefix, const EntryPredicate& predicate, std::int64_t limit) {
    return values_.erase_if(prefix, predicate, limit);
  }

  /// Applies `ops` in order while holding every involved shard (ascending order), so no
  /// other caller observes a partial batch. A value larger than its shard's share of
  /// max_bytes fails the batch before anything is applied (as on Redis, where a value that
  /// could not be read back is refused before any I/O). A store rejected because a full
  /// cache refuses writes (WhenFull::reject) fails that store only: the other operations are
  /// applied, and the first refusal is thrown at the end (as a failing command inside
  /// MULTI/EXEC, or inside the Redis backend's batch script, fails only itself).
  void commit(std::vector<BatchOp> ops) {
    std::vector<std::size_t> involved;
    involved.reserve(ops.size());
    bool every_shard = false;
    for (const BatchOp& op : ops) {
      every_shard = every_shard || std::holds_alternative<batch_op::EraseIndex>(op) ||
                    std::holds_alternative<batch_op::ErasePrefix>(op);
      std::visit([&](const auto& o) { involved.push_back(shards_.index_of(hash_key(key_of(o)))); }, op);
    }
    if (every_shard) {
      involved.resize(shards_.size());
      for (std::size_t i = 0; i < shards_.size(); ++i) involved[i] = i;
    }
    std::sort(involved.begin(), involved.end());
    involved.erase(std::unique(involved.begin(), involved.end()), involved.end());
    std::vector<std::unique_lock<ShardMutex>> held;
    held.reserve(involved.size());
    for (const std::size_t i : involved) held.emplace_back(shards_[i].mu);
    for (const BatchOp& op : ops) {
      const auto* st = std::get_if<batch_op::Store>(&op);
      if (st == nullptr) continue;
      Shard& s = shards_.for_hash(hash_key(st->key));
      if (s.max_bytes != 0 && charge_of(st->key, st->value) > s.max_bytes) {
        ++s.rejections;
        throw_error(errc::capacity_exceeded,
                    "corocache: value larger than a memory backend shard's share of max_bytes (nothing of "
                    "the batch was applied)");
      }
    }
    const Nanos now = time_.now();
    std::exception_ptr refused;  // the first store a full cache refused
    for (BatchOp& op : ops) {
      if (auto* st = std::get_if<batch_op::Store>(&op)) {
        const KeyRef k(st->key);
        try {
          values_.set_locked(shards_.for_hash(k.hash), k, std::move(st->key), std::move(st->value),
                             std::move(st->params), now);
        } catch (const boost::system::system_error& e) {
          if (e.code() != make_error_code(errc::capacity_exceeded)) throw;
          if (!refused) refused = std::current_exception();
        }
      } else if (auto* er = std::get_if<batch_op::Erase>(&op)) {
        const KeyRef k(er->key);
        values_.erase_locked(shards_.for_hash(k.hash), k, now);
      } else if (auto* ex = std::get_if<batch_op::Expire>(&op)) {
        const KeyRef k(ex->key);
        values_.expire_locked(shards_.for_hash(k.hash), k, ex->ttl, now);
      } else if (auto* pu = std::get_if<batch_op::Push>(&op)) {
        const KeyRef k(pu->queue_key);
        queues_.push_locked(shards_.for_hash(k.hash), k, std::move(pu->queue_key), std::move(pu->value));
      } else if (auto* ei = std::get_if<batch_op::EraseIndex>(&op)) {
        erase_index(ei->index_key, true);
      } else if (auto* ep = std::get_if<batch_op::ErasePrefix>(&op)) {
        erase_prefix(ep->prefix, true);
      }
    }
    if (refused) std::rethrow_exception(refused);
  }

  // --- maintenance ------------------------------------------------------------------------

  /// One round of the periodic sweep over every shard: a slice of its values
  /// (ValueTable::sweep) and of its locks (at least 256 buckets, an eighth of large tables).
  void sweep_tick() {
    for (std::size_t i = 0; i < shards_.size(); ++i) {
      Shard& s = shards_[i];
      std::lock_guard lock(s.mu);
      const Nanos now = time_.now();
      values_.sweep(s, now);
      locks_.sweep(s, now, std::max<std::size_t>(256, s.locks.bucket_count() / 8));
    }
  }

  /// Reclaims every expired value and lock of every shard now (the periodic sweep does
  /// the same in slices).
  void sweep_all() {
    for (std::size_t i = 0; i < shards_.size(); ++i) {
      Shard& s = shards_[i];
      std::lock_guard lock(s.mu);
      const Nanos now = time_.now();
      values_.sweep_all(s, now);
      locks_.sweep(s, now, s.locks.bucket_count());
    }
  }

  Counters counters() const {
    Counters c;
    for (std::size_t i = 0; i < shards_.size(); ++i) {
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

  TimeSource time_;
  ShardArray shards_;
  IndexTable indices_;
  ValueTable values_;
  QueueTable queues_;
  LockTable locks_;
};

}  // namespace corocache::detail::memory
