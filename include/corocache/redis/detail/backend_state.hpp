#pragma once
// What a RedisBackend shares with every operation it started: its options, its topology (one
// connection, or one per cluster node, plus the blocking pools), the ids of pending records
// and the settling counters. Operations hold it through a shared pointer, so they outlive a
// moved or destroyed backend object (redis/backend.hpp, "Lifetime").
//
// Also here: starting a settling job, and the check that a caller is gone. Both are used
// by every operation that moves or takes something on the server (pops, lock attempts).

#include <corocache/errors.hpp>
#include <corocache/redis/detail/cluster_topology.hpp>
#include <corocache/redis/detail/pending_keys.hpp>
#include <corocache/redis/detail/settle.hpp>
#include <corocache/redis/detail/topology.hpp>
#include <corocache/redis/options.hpp>
#include <corocache/redis/topology_options.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <memory>
#include <utility>

namespace corocache::detail::redis {

namespace asio = boost::asio;

struct BackendState {
  RedisOptions options;
  asio::any_io_executor executor;
  Topology topo;
  PendingIds ids;
  SettleCounters settle;
  PendingReturns returns;
  std::atomic<bool> closed{false};

  BackendState(asio::any_io_executor ex, RedisOptions opts)
      : options(std::move(opts)), executor(std::move(ex)), topo(executor, options) {}
  BackendState(asio::any_io_executor ex, RedisClusterOptions cluster)
      : options(cluster_base_options(cluster)),
        executor(std::move(ex)),
        topo(executor, std::move(cluster), options) {}

  void close() noexcept {
    if (closed.exchange(true)) return;
    topo.close();
  }
};
using BackendStatePtr = std::shared_ptr<BackendState>;

/// The state of a backend that was not moved from.
inline BackendState& live(const BackendStatePtr& st) {
  if (!st) throw_error(errc::shut_down, "corocache: use of a moved-from RedisBackend");
  return *st;
}

/// Starts a settling job in the background (docs/redis_queues.md); never blocks the caller.
/// A returned element is pending from here on (PendingReturns), before the caller hears
/// of its failed pop.
inline void start_settle(const BackendStatePtr& sp, SettleJob job) {
  BackendState& st = *sp;
  st.settle.started.fetch_add(1, std::memory_order_relaxed);
  ReturnTicket ticket = job.kind == SettleJob::Kind::return_ledger
                            ? ReturnTicket(std::shared_ptr<PendingReturns>(sp, &st.returns), job.key)
                            : ReturnTicket();
  asio::co_spawn(st.executor,
                 run_settle(sp, st.topo, st.settle, st.closed, std::move(job), std::move(ticket)),
                 asio::detached);
}

// A caller's cancellation state, read with `co_await asio::this_coro::cancellation_state`.
// After a reply that moved or took something, nothing may be co_awaited before it is
// settled: with the state cancelled, Asio throws operation_aborted at the next co_await.
using CancelState = asio::cancellation_state;

/// True when cancellation was requested since `before` was read (the caller is gone).
inline bool cancelled_since(const CancelState& state, asio::cancellation_type_t before) noexcept {
  return before == asio::cancellation_type::none && state.cancelled() != asio::cancellation_type::none;
}

[[noreturn]] inline void throw_aborted() {
  throw boost::system::system_error(asio::error::operation_aborted, "corocache: cancelled");
}

}  // namespace corocache::detail::redis
