#pragma once
// MemoryBackend: the embedded default backend. The real thing for one process, and a
// faithful stand-in for Redis in tests: every operation has the semantics documented in
// backend.hpp.
//
// Threads. Safe to use from an io_context run by several threads. Keys are spread over
// shards by hash (MemoryOptions::shards); an operation on one key locks only its shard.
// Operations complete synchronously inside the awaitable (nothing is posted), except a
// pop that has to wait.
//
// Expiry. Deadlines use steady_clock. An expired value is never returned or listed; it is
// reclaimed when touched, when its shard needs room, and by a sweep that runs on the
// executor every MemoryOptions::sweep_interval: in every shard where something may have
// expired it visits the next eighth (at least 1024 buckets) of the table, so a value
// nobody reads again is reclaimed within about 8 intervals of its expiry. Expired locks
// are swept the same way.
//
// Injected clock (tests). With MemoryOptions::clock (e.g. testing::ManualClock) that clock
// decides value expiry, lock ttls, the wait of a parked pop (ended when the clock is
// advanced past it) and what the sweep reclaims; no background sweep runs (sweep_interval
// is ignored): sweep_now() runs it. Still on the real steady_clock: the Deadline argument
// of every operation (Scope deadlines; a pop reads what it leaves when it starts) and
// whatever else the caller times. Details: docs/memory_clock.md.
//
// Capacity. max_entries and max_bytes are split evenly across shards (each shard enforces
// its share, so the totals are never exceeded, but a shard can be full while another has
// room). Only stored values count toward them: their key bytes + value bytes +
// detail::memory::entry_overhead (190) for the bytes limit. Locks, queues and index sets
// are not counted and never evicted (evicting a lock or a queued message would be wrong).
// When a value does not fit: expired values go first (see make_room in value_table.hpp), then
// with WhenFull::evict the shard's S3-FIFO policy (memory/detail/s3fifo.hpp: why S3-FIFO)
// evicts live values; with WhenFull::reject set() throws system_error(errc::
// capacity_exceeded) and evicts nothing. A value larger than a shard's byte share is
// rejected in both modes.
//
// Memory per entry (benchmarks/memory_bench.cpp: 1M values with 16-byte keys and 32-byte
// values, RSS delta / entries, g++ 12 -O2, glibc malloc, x86-64): about 252 bytes, i.e.
// ~204 on top of the 48 payload bytes, against about 204 (~156 overhead) for a bare
// std::unordered_map<std::string, std::string> holding the same data. Where the ~48 extra
// bytes go: the map node is 136 bytes instead of 80 (next pointer, key string, cached hash,
// and a 88-byte ValueEntry: value string, eviction hooks (list pointers, fingerprint,
// counter), deadline, version, read counter, key back-pointer, index pointer), so its
// malloc chunk is 144 bytes instead of 96. Not included: the ghost table (8 bytes per
// slot, only once a bounded shard starts evicting) and index sets.
//
// Lifetime. Moving is cheap (shared state). Destroy the backend before its execution
// context. Waiting pops fail with errc::shut_down when the shared state goes, or when the
// context shuts down first (docs/shutdown.md). An operation's awaitable holds the shared
// state, not the backend object: it may be awaited after a move.

#include <corocache/backend.hpp>
#include <corocache/detail/backend_contract.hpp>
#include <corocache/detail/deadline.hpp>
#include <corocache/errors.hpp>
#include <corocache/memory/detail/clock.hpp>
#include <corocache/memory/detail/store.hpp>
#include <corocache/memory/detail/sweeper.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace corocache {

/// What set() does when a value does not fit in MemoryOptions' limits.
enum class WhenFull {
  evict,   ///< evict other values (expired first, then by the S3-FIFO policy)
  reject,  ///< throw system_error(errc::capacity_exceeded); nothing is evicted
};

struct MemoryOptions {
  /// Most values stored at once; 0 = unbounded. Split evenly across shards.
  std::size_t max_entries = 0;
  /// Most bytes of values (key + value + 190 per entry); 0 = unbounded. Split evenly
  /// across shards.
  std::size_t max_bytes = 0;
  /// What a store that does not fit does.
  WhenFull when_full = WhenFull::evict;
  /// How often the sweep reclaims expired values nobody reads; <= 0 disables it (expired
  /// values are then reclaimed only when touched or when room is needed).
  Duration sweep_interval = std::chrono::seconds(1);
  /// Where time comes from; null (the default) = steady_clock. Meant for tests:
  /// testing::ManualClock converts to it. See the file comment, "Injected clock".
  std::shared_ptr<MemoryClock> clock = nullptr;
  /// Number of shards (at most 1024), rounded up to a power of two; 0 = automatic (32 per hardware thread,
  /// at most 64, fewer when the limits are small: a shard holds at least 64 entries'
  /// share of max_entries and 256 KiB of max_bytes).
  std::size_t shards = 0;
};

/// A snapshot of the backend's counters (each shard read under its lock, shards one
/// after another).
struct MemoryStats {
  std::size_t entries = 0;        ///< stored values (live or expired but not yet reclaimed)
  std::size_t bytes = 0;          ///< what those values count against max_bytes
  std::size_t evictions = 0;      ///< live values evicted for room
  std::size_t expirations = 0;    ///< expired values reclaimed (on access, sweep or pressure)
  std::size_t rejections = 0;     ///< stores refused for capacity
  std::size_t hits = 0;           ///< gets that found a live value
  std::size_t misses = 0;         ///< gets that did not
  std::size_t locks = 0;          ///< lock records (held, or expired and not yet reclaimed)
  std::size_t queues = 0;         ///< non-empty queues
  std::size_t queued_values = 0;  ///< values waiting in queues
  std::size_t waiting_pops = 0;   ///< pops parked on an empty queue
  std::size_t index_sets = 0;     ///< index sets with at least one member
  std::size_t shards = 0;
};

class MemoryBackend {
 public:
  /// Starts the sweep on a strand of `ex` (if options.sweep_interval > 0 and no clock is
  /// injected).
  explicit MemoryBackend(asio::any_io_executor ex, MemoryOptions options = {}) {
    const std::size_t shards = detail::memory::choose_shard_count(
        options.shards, options.max_entries, options.max_bytes, std::thread::hardware_concurrency());
    store_ = std::make_shared<detail::memory::Store>(
        ex,
        detail::memory::StoreConfig{shards, options.max_entries, options.max_bytes,
                                    options.when_full == WhenFull::reject},
        options.clock);
    if (options.clock) options.clock->subscribe(store_);
    if (options.sweep_interval > Duration::zero() && !options.clock) {
      auto control = std::make_shared<detail::memory::SweepControl>(asio::make_strand(ex));
      sweep_control_ = control;
      sweep_executor_ = control->timer.get_executor();
      asio::co_spawn(sweep_executor_,
                     detail::memory::sweep_loop(store_, std::move(control), options.sweep_interval),
                     asio::detached);
    }
    // After the sweep's strand: Asio shuts the newest service down first (docs/shutdown.md).
    detail::ContextShutdown::watch(ex, store_);
  }

  MemoryBackend(MemoryBackend&&) noexcept = default;
  MemoryBackend& operator=(MemoryBackend&& other) noexcept {
    if (this != &other) {
      stop_sweep();
      store_ = std::move(other.store_);
      sweep_control_ = std::move(other.sweep_control_);
      sweep_executor_ = std::move(other.sweep_executor_);
    }
    return *this;
  }
  MemoryBackend(const MemoryBackend&) = delete;
  MemoryBackend& operator=(const MemoryBackend&) = delete;
  ~MemoryBackend() { stop_sweep(); }

  /// Stops the background sweep, so that an io_context with nothing else to do returns
  /// from run() while the backend lives. The backend stays usable: expired values are then
  /// reclaimed when touched or when room is needed. Waiting pops still end at their wait.
  /// Idempotent; call it from any thread.
  void close() noexcept { stop_sweep(); }

  /// Reclaims every expired value and lock now (what the background sweep does over about
  /// 8 intervals), by the backend's clock: how tests on an injected clock run the sweep.
  void sweep_now() { store_->sweep_all(); }

  /// Counters for tests, users and benchmarks. Locks each shard briefly.
  MemoryStats stats() const {
    const detail::memory::Counters c = store_->counters();
    return MemoryStats{c.entries,
                       c.bytes,
                       c.evictions,
                       c.expirations,
                       c.rejections,
                       c.hits,
                       c.misses,
                       c.locks,
                       c.queues,
                       c.queued_values,
                       c.waiting_pops,
                       c.index_sets,
                       store_->shard_count()};
  }

  // Every operation below completes synchronously when awaited (no suspension, so nothing
  // to cancel; pop with a wait is the exception, see there) and keeps nothing of its
  // arguments after completion. Semantics: backend.hpp. Capacity errors:
  // system_error(errc::capacity_exceeded). The awaitable holds the backend's shared state,
  // not the backend: it may be awaited after the backend was moved, or destroyed (pop:
  // throws errc::shut_down then).

  asio::awaitable<bool> set(std::string key, std::string value, StoreParams params, Deadline = {}) {
    return do_set(store_, std::move(key), std::move(value), std::move(params));
  }
  asio::awaitable<std::optional<std::string>> get(std::string key, Deadline = {}) {
    return do_get(store_, std::move(key));
  }
  /// The same as get(), answered synchronously: func_cache's hit path uses it (when a
  /// backend has it) to look up without a coroutine frame of the backend's own.
  std::optional<std::string> get_now(std::string_view key) { return store_->get(key); }
  asio::awaitable<bool> erase(std::string key, Deadline = {}) { return do_erase(store_, std::move(key)); }
  asio::awaitable<bool> expire(std::string key, Duration ttl, Deadline = {}) {
    return do_expire(store_, std::move(key), ttl);
  }
  asio::awaitable<std::vector<std::string>> index_members(std::string index_key, Deadline = {}) {
    return do_index_members(store_, std::move(index_key));
  }
  asio::awaitable<std::size_t> erase_index(std::string index_key, Deadline = {}) {
    return do_erase_index(store_, std::move(index_key));
  }
  asio::awaitable<void> push(std::string queue_key, std::string value, Deadline = {}) {
    return do_push(store_, std::move(queue_key), std::move(value));
  }

  /// Completes with the oldest element at once if there is one; otherwise, with wait > 0,
  /// suspends until a push hands it a value (each pushed value goes to exactly one
  /// waiter, oldest waiter first) or `wait` passes (nullopt). Resumes on the awaiting
  /// coroutine's executor. Cancellable (any cancellation type, e.g. a timer through
  /// awaitable operators or parallel_group): a parked pop then leaves the queue and throws
  /// system_error(asio::error::operation_aborted). A value is never lost to a cancelled
  /// pop: if cancellation reaches the coroutine after a push handed it a value (before it
  /// resumed), the value goes back to the head of the queue and the pop throws
  /// operation_aborted, so a `pop || timer` that the timer won leaves the value queued.
  /// Throws system_error(errc::shut_down) if the backend is destroyed meanwhile (or before
  /// the pop is awaited: the awaitable holds the backend's state weakly).
  /// The wait is min(wait, what the deadline leaves); errc::timeout when the deadline, not
  /// the wait, ended an empty wait. A value handed over is returned even if the deadline
  /// passed in the same instant (the hand-over and the timer are decided under one lock).
  asio::awaitable<std::optional<std::string>> pop(std::string queue_key, Duration wait,
                                                  Deadline deadline = {}) {
    return do_pop(store_, std::move(queue_key), wait, deadline);
  }

  asio::awaitable<bool> try_lock(std::string lock_key, std::string token, Duration ttl, Deadline = {}) {
    return do_try_lock(store_, std::move(lock_key), std::move(token), ttl);
  }
  asio::awaitable<bool> unlock(std::string lock_key, std::string token, Deadline = {}) {
    return do_unlock(store_, std::move(lock_key), std::move(token));
  }
  asio::awaitable<std::size_t> erase_prefix(std::string prefix, Deadline = {}) {
    return do_erase_prefix(store_, std::move(prefix));
  }

  /// The predicate runs on the calling thread without any backend lock held (it may even
  /// use the backend); a value re-stored after the predicate saw it is left alone.
  asio::awaitable<std::size_t> erase_if(std::string prefix, EntryPredicate predicate, std::int64_t limit,
                                        Deadline = {}) {
    return do_erase_if(store_, std::move(prefix), std::move(predicate), limit);
  }
  asio::awaitable<void> commit(std::vector<BatchOp> ops, Deadline = {}) {
    return do_commit(store_, std::move(ops));
  }

 private:
  using Store = detail::memory::Store;
  using StorePtr = std::shared_ptr<Store>;

  // The coroutines behind the operations: static, so that their frames hold the state
  // (StorePtr), never `this`.

  static asio::awaitable<bool> do_set(StorePtr store, std::string key, std::string value,
                                      StoreParams params) {
    detail::contract::check_set(key, params);
    co_return store->set(std::move(key), std::move(value), std::move(params));
  }
  static asio::awaitable<std::optional<std::string>> do_get(StorePtr store, std::string key) {
    detail::contract::check_get(key);
    const Lookup lookup{store.get(), key};
    co_return lookup;
  }
  static asio::awaitable<bool> do_erase(StorePtr store, std::string key) {
    detail::contract::check_erase(key);
    co_return store->erase(key);
  }
  static asio::awaitable<bool> do_expire(StorePtr store, std::string key, Duration ttl) {
    detail::contract::check_expire(key, ttl);
    co_return store->expire(key, ttl);
  }
  static asio::awaitable<std::vector<std::string>> do_index_members(StorePtr store, std::string index_key) {
    detail::contract::check_index_members(index_key);
    co_return store->index_members(index_key);
  }
  static asio::awaitable<std::size_t> do_erase_index(StorePtr store, std::string index_key) {
    detail::contract::check_erase_index(index_key);
    co_return store->erase_index(index_key);
  }
  static asio::awaitable<void> do_push(StorePtr store, std::string queue_key, std::string value) {
    detail::contract::check_push(queue_key);
    store->push(std::move(queue_key), std::move(value));
    co_return;
  }
  static asio::awaitable<bool> do_try_lock(StorePtr store, std::string lock_key, std::string token,
                                           Duration ttl) {
    detail::contract::check_try_lock(lock_key, token, ttl);
    co_return store->try_lock(std::move(lock_key), std::move(token), ttl);
  }
  static asio::awaitable<bool> do_unlock(StorePtr store, std::string lock_key, std::string token) {
    detail::contract::check_unlock(lock_key, token);
    co_return store->unlock(lock_key, token);
  }
  static asio::awaitable<std::size_t> do_erase_prefix(StorePtr store, std::string prefix) {
    detail::contract::check_erase_prefix(prefix);
    co_return store->erase_prefix(prefix);
  }
  static asio::awaitable<std::size_t> do_erase_if(StorePtr store, std::string prefix,
                                                  EntryPredicate predicate, std::int64_t limit) {
    detail::contract::check_erase_if(prefix, predicate);
    co_return store->erase_if(prefix, predicate, limit);
  }
  static asio::awaitable<void> do_commit(StorePtr store, std::vector<BatchOp> ops) {
    detail::contract::check_commit(ops);
    store->commit(std::move(ops));
    co_return;
  }

  /// Weak: the backend may be destroyed before or while the pop is parked, and a strong
  /// reference in the frame would keep its store (and waiters) alive until the wait ran out.
  static asio::awaitable<std::optional<std::string>> do_pop(std::weak_ptr<Store> weak_store,
                                                            std::string queue_key, Duration wait,
                                                            Deadline deadline) {
    detail::contract::check_pop(queue_key, wait);
    // One co_return at the end, no co_await inside a condition and no temporary aggregate
    // in a co_await expression: g++ 12 miscompiles all three.
    std::optional<std::string> value;
    {
      const StorePtr store = weak_store.lock();
      if (!store) throw_shut_down();
      value = store->try_pop(queue_key);
    }
    // The wait is on the store's clock (an injected one in tests), the deadline on the real one.
    const Duration limit = deadline.remaining(wait);
    if (!value && std::min(wait, limit) > Duration::zero()) {
      const Duration cap = deadline.is_default() ? Duration::max() : limit;
      const PopInitiation initiation{weak_store, &queue_key, wait, cap};
      value = co_await asio::async_initiate<const asio::use_awaitable_t<>&, detail::memory::PopSignature>(
          initiation, asio::use_awaitable);
      const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
      if (value && state.cancelled() != asio::cancellation_type::none) {
        if (const auto store = weak_store.lock())
          store->return_to_head(std::move(queue_key), std::move(*value));
        throw boost::system::system_error(asio::error::operation_aborted);
      }
    }
    if (!value && limit < wait && deadline.remaining(wait) == Duration::zero())
      throw_error(errc::timeout, "corocache: the call's deadline passed");
    co_return value;
  }

  [[noreturn]] static void throw_shut_down() {
    throw_error(errc::shut_down, "corocache: memory backend destroyed");
  }

  /// Converts to the result of a get by running it. `co_return lookup` lets the promise
  /// build its result straight from Store::get's return value (asio's return_value does
  /// `new (&result_) T(std::forward<U>(u))`, which a conversion function returning a
  /// prvalue initializes in place), where `co_return store->get(key)` would move the
  /// optional<string> once more: about 30 instructions per hit (memory_bench get-hit).
  struct Lookup {
    Store* store;
    std::string_view key;
    operator std::optional<std::string>() const { return store->get(key); }
  };

  /// Parks the pop in the store, which it holds weakly (see do_pop). If the store is gone
  /// by then (destroyed on another thread since the pop's first look), the pop completes
  /// with errc::shut_down, posted like every completion.
  struct PopInitiation {
    std::weak_ptr<Store> weak_store;
    std::string* queue_key;
    Duration wait;
    Duration cap;  // real time (the call's deadline); Duration::max(): none
    template <class Handler>
    void operator()(Handler&& handler) const {
      if (const StorePtr store = weak_store.lock()) {
        store->pop_or_wait(*queue_key, wait, cap, std::forward<Handler>(handler));
        return;
      }
      const auto ex = asio::get_associated_executor(handler, asio::system_executor());
      asio::post(ex, [h = std::forward<Handler>(handler)]() mutable {
        std::exception_ptr error;
        try {
          throw_shut_down();
        } catch (...) {
          error = std::current_exception();
        }
        std::move(h)(error, std::optional<std::string>());
      });
    }
  };

  void stop_sweep() noexcept {
    if (auto control = sweep_control_.lock()) {
      // The timer belongs to the sweep's strand: stop it there, never from this thread.
      asio::post(sweep_executor_, [control] { control->stop(); });
    }
    sweep_control_.reset();
  }

  std::shared_ptr<detail::memory::Store> store_;
  std::weak_ptr<detail::memory::SweepControl> sweep_control_;
  asio::any_io_executor sweep_executor_;
};

static_assert(Backend<MemoryBackend>);

}  // namespace corocache
