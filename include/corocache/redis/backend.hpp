#pragma once
// RedisBackend: the Backend concept over a Redis server (data model in README, "Redis data
// model"; scripts in redis/detail/scripts.hpp; queues in docs/redis_queues.md).
//
// - A plain value (no indices, no read limit) is a Redis string: SET key value PX ttl [NX],
//   read with a plain GET. This is the fast path: one command, no script.
// - A value with indices and/or max_reads is a hash {v, r, i} written and read by scripts,
//   atomically; index keys are sets of value keys, pruned of stale members when listed.
// - Queues are lists. A pop moves the element into a ledger of its own (a script, or BLMOVE
//   for a waiting pop on a pooled blocking connection) and deletes the ledger once its caller
//   has the element; when the caller is gone, a background job puts it back (never lost):
//   redis/detail/queue_pop.hpp.
// - Locks are strings holding their owner's token; an abandoned attempt is released.
// - Prefix removal: SCAN MATCH (glob characters escaped), UNLINK in batches; never KEYS or FLUSHDB.
//
// Threads: any operation from any thread, concurrently. All commands share one pipelined
// Connection; only waiting pops use a bounded pool of others.
// Redis Cluster (RedisClusterOptions): one such connection (and pool) per primary; every
// request goes to its key's slot owner, following MOVED/ASK (redis/detail/topology.hpp).
//
// Errors: an argument the backend contract rejects (docs/backend_contract.md: ttl <= 0,
// negative wait, empty prefix or key, ...) or a Redis limit (a value too large to read back,
// a queue or lock key without the facade's layout) throws invalid_backend_argument when
// awaited, before any I/O; an error reply throws boost::system::system_error(errc::
// server_error) whose what() holds the server's message; transport failures (timeout,
// connection_lost, not_connected, overloaded, ...) propagate from the Connection as
// system_error with their corocache::errc code.

#include <corocache/backend.hpp>
#include <corocache/detail/backend_contract.hpp>
#include <corocache/errors.hpp>
#include <corocache/redis/detail/backend_state.hpp>
#include <corocache/redis/detail/budget.hpp>
#include <corocache/redis/detail/bulk.hpp>
#include <corocache/redis/detail/cluster_keys.hpp>
#include <corocache/redis/detail/commands.hpp>
#include <corocache/redis/detail/connection.hpp>
#include <corocache/redis/detail/peek.hpp>
#include <corocache/redis/detail/pending_keys.hpp>
#include <corocache/redis/detail/queue_pop.hpp>
#include <corocache/redis/detail/reply.hpp>
#include <corocache/redis/detail/request.hpp>
#include <corocache/redis/detail/scan.hpp>
#include <corocache/redis/detail/script_runner.hpp>
#include <corocache/redis/detail/scripts.hpp>
#include <corocache/redis/detail/settle.hpp>
#include <corocache/redis/detail/topology.hpp>
#include <corocache/redis/detail/value_ops.hpp>
#include <corocache/redis/detail/value_results.hpp>
#include <corocache/redis/options.hpp>
#include <corocache/redis/topology_options.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace corocache {

/// Counters of a RedisBackend (for tests and monitoring).
struct RedisBackendStats {
  detail::redis::ConnectionStats connection;  ///< the shared connection (cluster: summed over nodes)
  detail::redis::ClusterStats cluster;        ///< redirects, retries, map refreshes (cluster only)
  std::size_t blocking_open = 0;              ///< blocking connections open (busy + idle)
  std::size_t blocking_peak = 0;              ///< most blocking connections ever open at once
  std::size_t blocking_waiting = 0;           ///< waiting pops queued for a blocking connection
  std::uint64_t settle_started = 0;           ///< background settling jobs started
  std::uint64_t settle_done = 0;              ///< ... that succeeded
  std::uint64_t settle_failed = 0;            ///< ... that gave up (element left in its ledger)
  std::uint64_t returned = 0;                 ///< popped elements put back into their queue
  /// Jobs still running: 0 once every abandoned pop and lock attempt is settled.
  std::uint64_t settle_pending() const noexcept { return settle_started - settle_done - settle_failed; }
};

/// The Redis backend. Move-only; moving is cheap (one shared pointer).
///
/// Lifetime: an operation's awaitable keeps the backend's connections alive by itself, so
/// it may be awaited after the RedisBackend object was moved. Destroying (or move-assigning
/// over) a RedisBackend closes its connections: requests still pending then fail with
/// errc::shut_down, and settling jobs still pending stop (their elements stay in ledgers).
///
/// Cancellation: every operation supports Asio per-operation cancellation (e.g. through
/// awaitable_operators `||` or a Scope timeout); a cancelled operation completes with
/// asio::error::operation_aborted and its late reply is discarded (a popped element goes
/// back to its queue, a lock taken is released). A cancelled multi-step operation
/// (erase_prefix, erase_if) may have done part of its work.
class RedisBackend {
 public:
  /// Creates the backend; connects lazily in the background (the first requests wait for
  /// the connection up to their deadline). Throws std::invalid_argument for bad options.
  explicit RedisBackend(asio::any_io_executor ex, RedisOptions options = {}) {
    options.validate();
    state_ = std::make_shared<State>(std::move(ex), std::move(options));
  }
  /// Through Redis Sentinel: every connection (the shared one and the blocking pool's) asks
  /// the sentinels for the primary, checks ROLE, and follows failovers (a failover looks
  /// like a reconnect; docs/redis_topology.md, Sentinel). Throws std::invalid_argument for
  /// bad options.
  RedisBackend(asio::any_io_executor ex, RedisSentinelOptions options)
      : RedisBackend(ex, detail::redis::sentinel_connection_options(ex, std::move(options))) {}
  /// A Redis Cluster backend: discovers the slot map from the seeds (lazily, like the
  /// connection), keeps one connection per primary and routes every request by the slot of
  /// its key (docs/redis_topology.md). Throws std::invalid_argument for bad options.
  RedisBackend(asio::any_io_executor ex, RedisClusterOptions options) {
    options.validate();
    state_ = std::make_shared<State>(std::move(ex), std::move(options));
  }

  RedisBackend(RedisBackend&&) noexcept = default;
  RedisBackend& operator=(RedisBackend&& other) noexcept {
    if (this != &other) {
      close();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  RedisBackend(const RedisBackend&) = delete;
  RedisBackend& operator=(const RedisBackend&) = delete;
  ~RedisBackend() { close(); }

  /// Fails pending requests with errc::shut_down and stops reconnecting. Idempotent; the
  /// destructor calls it.
  void close() noexcept {
    if (state_) state_->close();
  }

  /// The options this backend connects with (cluster: each node's, with the first seed's
  /// address).
  const RedisOptions& options() const { return state_->options; }

  /// Zeros for a moved-from backend.
  RedisBackendStats stats() const {
    if (!state_) return {};
    const State& st = *state_;
    const auto pool = st.topo.pool_stats();
    RedisBackendStats s;
    s.connection = st.topo.connection_stats();
    if (const auto* cluster = st.topo.cluster()) s.cluster = cluster->stats();
    s.blocking_open = pool.open;
    s.blocking_peak = pool.peak;
    s.blocking_waiting = pool.waiting;
    // Read `done`/`failed` before `started`, so pending never looks negative.
    s.settle_done = st.settle.done.load(std::memory_order_acquire);
    s.settle_failed = st.settle.failed.load(std::memory_order_acquire);
    s.returned = st.settle.returned.load(std::memory_order_acquire);
    s.settle_started = st.settle.started.load(std::memory_order_acquire);
    return s;
  }

  // --- Backend concept (semantics: backend.hpp) ------------------------------------------

  /// Plain values: one SET (PX, and NX for nx). Indexed or read-limited: the store script.
  /// A ttl beyond a century is stored as a century. A value larger than max_reply_bytes
  /// minus 1 KiB (no read could return it) throws invalid_backend_argument.
  asio::awaitable<bool> set(std::string key, std::string value, StoreParams params, Deadline deadline = {}) {
    // The hot case goes straight to the connection, without a coroutine frame; anything
    // else (including input do_set rejects) takes do_set.
    auto* conn = state_ ? state_->topo.direct() : nullptr;
    if (conn != nullptr && !key.empty() && params.ttl > Duration::zero() &&
        detail::redis::is_plain_store(params) &&
        value.size() <= detail::redis::max_readable_value(state_->options.max_reply_bytes)) {
      Request request;
      detail::redis::add_plain_store(request, key, value, params);
      return conn->exec_as(std::move(request), deadline, detail::redis::PlainStoreResult{});
    }
    return do_set(state_, std::move(key), std::move(value), std::move(params), deadline);
  }
  /// One GET; a hashed value (WRONGTYPE) is then read by the read script.
  asio::awaitable<std::optional<std::string>> get(std::string key, Deadline deadline = {}) {
    auto* conn = state_ ? state_->topo.direct() : nullptr;  // as in set()
    if (conn != nullptr && !key.empty()) {
      Request request;
      request.add("GET", key);
      detail::redis::GetResult<ReadHashed> finish{ReadHashed{state_, std::move(key), deadline}};
      return conn->exec_as(std::move(request), deadline, std::move(finish));
    }
    return do_get(state_, std::move(key), deadline);
  }
  asio::awaitable<bool> erase(std::string key, Deadline deadline = {}) {
    return do_erase(state_, std::move(key), deadline);
  }
  asio::awaitable<bool> expire(std::string key, Duration ttl, Deadline deadline = {}) {
    return do_expire(state_, std::move(key), ttl, deadline);
  }
  asio::awaitable<std::vector<std::string>> index_members(std::string index_key, Deadline deadline = {}) {
    return do_index_members(state_, std::move(index_key), deadline);
  }
  asio::awaitable<std::size_t> erase_index(std::string index_key, Deadline deadline = {}) {
    return do_erase_index(state_, std::move(index_key), deadline);
  }
  asio::awaitable<void> push(std::string queue_key, std::string value, Deadline deadline = {}) {
    return do_push(state_, std::move(queue_key), std::move(value), deadline);
  }
  /// A pop through a ledger (docs/redis_queues.md): the pop script; with wait > 0, BLMOVE on
  /// a pooled blocking connection (default deadline: wait + request_timeout). Queue keys
  /// must have the facade's layout `<prefix>:{<tenant>:<ns>}:<kind>:<name>`.
  asio::awaitable<std::optional<std::string>> pop(std::string queue_key, Duration wait,
                                                  Deadline deadline = {}) {
    return detail::redis::queue::pop(state_, std::move(queue_key), wait, deadline);
  }
  /// SET NX PX through the lock attempt script; an attempt whose caller is gone (timeout,
  /// cancellation, lost link) is released in the background.
  asio::awaitable<bool> try_lock(std::string lock_key, std::string token, Duration ttl,
                                 Deadline deadline = {}) {
    return do_try_lock(state_, std::move(lock_key), std::move(token), ttl, deadline);
  }
  asio::awaitable<bool> unlock(std::string lock_key, std::string token, Deadline deadline = {}) {
    return do_unlock(state_, std::move(lock_key), std::move(token), deadline);
  }
  /// SCAN MATCH <escaped prefix>* COUNT 1000 + UNLINK per batch. An empty prefix (the
  /// whole database) is rejected by the backend contract.
  asio::awaitable<std::size_t> erase_prefix(std::string prefix, Deadline deadline = {}) {
    return do_erase_prefix(state_, std::move(prefix), deadline);
  }
  /// SCAN as erase_prefix; values are read without consuming reads (peek script, in replies
  /// within max_reply_bytes) and the accepted ones deleted only if still unchanged
  /// (erase_if_same script).
  asio::awaitable<std::size_t> erase_if(std::string prefix, EntryPredicate predicate, std::int64_t limit,
                                        Deadline deadline = {}) {
    return do_erase_if(state_, std::move(prefix), std::move(predicate), limit, deadline);
  }
  /// One batch script, atomic (a second run when it must learn the indices of values it
  /// changes). Throws server_error if any operation failed (the others still applied, as in
  /// MULTI/EXEC: Redis does not roll back).
  asio::awaitable<void> commit(std::vector<BatchOp> ops, Deadline deadline = {}) {
    return do_commit(state_, std::move(ops), deadline);
  }

 private:
  using Reply = detail::redis::Reply;
  using Request = detail::redis::Request;
  using SettleJob = detail::redis::SettleJob;
  using Decimal = detail::redis::Decimal;

  using State = detail::redis::BackendState;
  using StatePtr = detail::redis::BackendStatePtr;
  using CancelState = detail::redis::CancelState;
  static State& live(const StatePtr& st) { return detail::redis::live(st); }

  /// Sends one request (all its keys in `key`'s slot); an error reply throws server_error.
  static asio::awaitable<Reply> exec(State& st, std::string_view key, Request request, Deadline deadline) {
    Reply reply = co_await st.topo.exec(key, std::move(request), detail::redis::round_trip_timeout(deadline));
    detail::redis::throw_if_error(reply);
    co_return reply;
  }

  static void settle(const StatePtr& sp, SettleJob job) { detail::redis::start_settle(sp, std::move(job)); }

  static asio::awaitable<bool> do_set(StatePtr sp, std::string key, std::string value, StoreParams params,
                                      Deadline deadline) {
    detail::contract::check_set(key, params);
    State& st = live(sp);
    detail::redis::require_readable(value.size(), st.options.max_reply_bytes);
    if (detail::redis::is_plain_store(params)) {
      Request request;
      detail::redis::add_plain_store(request, key, value, params);
      // A Cluster's (one server's goes from set() straight to the connection).
      const Reply reply =
          co_await st.topo.exec(key, std::move(request), detail::redis::round_trip_timeout(deadline));
      detail::redis::throw_if_error(reply);
      co_return detail::redis::plain_stored(reply);
    }
    if (st.topo.clustered()) detail::redis::cluster::require_one_slot(key, params);
    detail::redis::Routed target{st.topo, key};
    co_return co_await detail::redis::store_hashed(target, detail::redis::scripts::store_hash, key, value,
                                                   params, deadline, st.topo.clustered());
  }

  static asio::awaitable<std::optional<std::string>> do_get(StatePtr sp, std::string key, Deadline deadline) {
    detail::contract::check_get(key);
    State& st = live(sp);
    Request request;
    request.add("GET", key);
    Reply reply = co_await st.topo.exec(key, std::move(request), detail::redis::round_trip_timeout(deadline));
    switch (detail::redis::classify_get(reply)) {
      case detail::redis::GetReply::value: co_return std::optional<std::string>(std::move(reply.str));
      case detail::redis::GetReply::missing: co_return std::nullopt;
      case detail::redis::GetReply::failed:
        std::rethrow_exception(detail::redis::reply_failure(reply, "GET"));
      case detail::redis::GetReply::hashed: break;
    }
    co_return co_await read_hashed_value(std::move(sp), std::move(key), deadline);
  }

  static asio::awaitable<std::optional<std::string>> read_hashed_value(StatePtr sp, std::string key,
                                                                       Deadline deadline) {
    State& st = live(sp);
    detail::redis::Routed target{st.topo, key};
    co_return co_await detail::redis::read_hashed(target, detail::redis::scripts::read_hash, key, deadline);
  }

  /// What a GET sent straight to the connection runs when it finds a hashed value.
  struct ReadHashed {
    StatePtr sp;
    std::string key;
    Deadline deadline;
    asio::awaitable<std::optional<std::string>> operator()() {
      return read_hashed_value(std::move(sp), std::move(key), deadline);
    }
  };

  static asio::awaitable<bool> do_erase(StatePtr sp, std::string key, Deadline deadline) {
    detail::contract::check_erase(key);
    State& st = live(sp);
    detail::redis::Routed target{st.topo, key};
    co_return co_await detail::redis::erase_value(target, detail::redis::scripts::erase, key, deadline);
  }

  static asio::awaitable<bool> do_expire(StatePtr sp, std::string key, Duration ttl, Deadline deadline) {
    detail::contract::check_expire(key, ttl);
    State& st = live(sp);
    detail::redis::Routed target{st.topo, key};
    co_return co_await detail::redis::expire_value(target, detail::redis::scripts::expire, key, ttl,
                                                   deadline);
  }

  static asio::awaitable<std::vector<std::string>> do_index_members(StatePtr sp, std::string index_key,
                                                                    Deadline deadline) {
    detail::contract::check_index_members(index_key);
    State& st = live(sp);
    detail::redis::Routed target{st.topo, index_key};
    co_return co_await detail::redis::list_index(target, detail::redis::scripts::index_members, index_key,
                                                 deadline);
  }

  static asio::awaitable<std::size_t> do_erase_index(StatePtr sp, std::string index_key, Deadline deadline) {
    detail::contract::check_erase_index(index_key);
    State& st = live(sp);
    detail::redis::Routed target{st.topo, index_key};
    co_return co_await detail::redis::erase_index_values(target, detail::redis::scripts::erase_index,
                                                         index_key, deadline);
  }

  static asio::awaitable<void> do_push(StatePtr sp, std::string queue_key, std::string value,
                                       Deadline deadline) {
    detail::contract::check_push(queue_key);
    State& st = live(sp);
    detail::redis::require_readable(value.size(), st.options.max_reply_bytes);
    Request request;
    request.add("RPUSH", queue_key, value);
    co_await exec(st, queue_key, std::move(request), deadline);
  }

  // --- locks -------------------------------------------------------------------------------

  static asio::awaitable<bool> do_try_lock(StatePtr sp, std::string lock_key, std::string token, Duration ttl,
                                           Deadline deadline) {
    detail::contract::check_try_lock(lock_key, token, ttl);
    State& st = live(sp);
    const std::string record = detail::redis::pending_key(lock_key, st.ids.next());
    const Decimal ms(detail::redis::px(ttl));
    detail::redis::round_trip_timeout(deadline);  // a passed deadline fails here, before any I/O
    const CancelState cancel = co_await asio::this_coro::cancellation_state;
    const auto before = cancel.cancelled();
    detail::redis::Routed target{st.topo, lock_key};
    Reply reply;
    try {
      reply = co_await detail::redis::run_script(target, detail::redis::scripts::lock_attempt, deadline,
                                                 [&](Request& r, std::string_view verb, std::string_view id) {
                                                   r.add(verb, id, "2", lock_key, record, token, ms.view());
                                                 });
    } catch (const boost::system::system_error& e) {
      if (detail::redis::outcome_unknown(e.code()))
        settle(sp, SettleJob{SettleJob::Kind::release_attempt, lock_key, record, token});
      throw;
    }
    const bool taken = !reply.is_nil();
    if (detail::redis::cancelled_since(cancel, before)) {
      if (taken) settle(sp, SettleJob{SettleJob::Kind::release_attempt, lock_key, record, token});
      detail::redis::throw_aborted();
    }
    co_return taken;
  }

  static asio::awaitable<bool> do_unlock(StatePtr sp, std::string lock_key, std::string token,
                                         Deadline deadline) {
    detail::contract::check_unlock(lock_key, token);
    State& st = live(sp);
    detail::redis::Routed target{st.topo, lock_key};
    const Reply reply = co_await detail::redis::run_script_on_key(
        target, detail::redis::scripts::unlock, deadline, lock_key, std::string_view(token));
    if (!reply.is_integer()) detail::redis::throw_unexpected("the unlock script");
    co_return reply.integer == 1;
  }

  // --- bulk --------------------------------------------------------------------------------

  static asio::awaitable<std::size_t> do_erase_prefix(StatePtr sp, std::string prefix, Deadline deadline) {
    detail::contract::check_erase_prefix(prefix);
    State& st = live(sp);
    co_return co_await detail::redis::bulk_erase_prefix(st.topo, std::move(prefix), deadline);
  }

  static asio::awaitable<std::size_t> do_erase_if(StatePtr sp, std::string prefix, EntryPredicate predicate,
                                                  std::int64_t limit, Deadline deadline) {
    detail::contract::check_erase_if(prefix, predicate);
    State& st = live(sp);
    co_return co_await detail::redis::bulk_erase_if(st.topo, std::move(prefix), std::move(predicate), limit,
                                                    st.options.max_reply_bytes, deadline);
  }

  static asio::awaitable<void> do_commit(StatePtr sp, std::vector<BatchOp> ops, Deadline deadline) {
    detail::contract::check_commit(ops);
    State& st = live(sp);
    detail::redis::check_batch(ops, st.options.max_reply_bytes);
    if (st.topo.clustered()) detail::redis::cluster::require_one_slot(ops);
    if (ops.empty()) co_return;
    std::vector<std::vector<std::string>> scanned;  // ErasePrefix: found by SCAN first
    for (const auto& op : ops) {
      const auto* erase = std::get_if<batch_op::ErasePrefix>(&op);
      if (erase == nullptr) continue;
      auto& found = scanned.emplace_back();
      auto send = [&](Request r) { return exec(st, erase->prefix, std::move(r), deadline); };
      auto collect = [&](std::vector<std::string>& keys) -> asio::awaitable<bool> {
        found.insert(found.end(), std::make_move_iterator(keys.begin()), std::make_move_iterator(keys.end()));
        co_return true;
      };
      co_await detail::redis::walk_prefix(send, erase->prefix, collect);
    }
    detail::redis::Routed target{st.topo, detail::redis::batch_key(ops)};
    co_await detail::redis::commit_batch(target, detail::redis::scripts::batch, ops, scanned, deadline);
  }

  StatePtr state_;
};

static_assert(Backend<RedisBackend>);

}  // namespace corocache
