#pragma once
// Queue pops on Redis (docs/redis_queues.md). A pop moves the head of its queue into a
// ledger of its own: the pop script on the shared connection, or, with a wait, BLMOVE on a
// pooled blocking connection. Once the caller has the element, the ledger is deleted behind
// it; when the caller is gone (timeout, cancellation, a lost link), a settling job puts the
// element back at the head of its queue. No outcome loses an element.

#include <corocache/backend.hpp>
#include <corocache/detail/backend_contract.hpp>
#include <corocache/errors.hpp>
#include <corocache/redis/detail/backend_state.hpp>
#include <corocache/redis/detail/blocking_pool.hpp>
#include <corocache/redis/detail/budget.hpp>
#include <corocache/redis/detail/cluster_redirect.hpp>
#include <corocache/redis/detail/cluster_topology.hpp>
#include <corocache/redis/detail/commands.hpp>
#include <corocache/redis/detail/pending.hpp>
#include <corocache/redis/detail/pending_keys.hpp>
#include <corocache/redis/detail/reply.hpp>
#include <corocache/redis/detail/request.hpp>
#include <corocache/redis/detail/script_runner.hpp>
#include <corocache/redis/detail/scripts.hpp>
#include <corocache/redis/detail/settle.hpp>
#include <corocache/redis/detail/topology.hpp>
#include <corocache/redis/detail/wait_nudge.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace corocache::detail::redis::queue {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

/// The caller's element from a pop's reply (nil: none). A caller that is `gone` (cancelled
/// meanwhile) gets operation_aborted and the element goes back; otherwise the ledger is
/// deleted behind it. Not a coroutine: see CancelState.
inline std::optional<std::string> hand_over(const BackendStatePtr& sp, Reply reply,
                                            const std::string& queue_key, const std::string& ledger,
                                            bool gone) {
  throw_if_error(reply);  // nothing moved
  if (reply.is_nil()) return std::nullopt;
  if (!reply.is_string()) {
    start_settle(sp, SettleJob{SettleJob::Kind::return_ledger, queue_key, ledger, {}});
    throw_unexpected("a pop");
  }
  if (gone) {
    start_settle(sp, SettleJob{SettleJob::Kind::return_ledger, queue_key, ledger, {}});
    throw_aborted();
  }
  start_settle(sp, SettleJob{SettleJob::Kind::forget, queue_key, ledger, {}});
  return std::optional<std::string>(std::move(reply.str));
}

/// What a waiting pop does with its BLMOVE's reply. I/O-free.
enum class BlockedReply {
  deliver,     ///< an element, nil, or an error for the caller
  wait_again,  ///< did not run: MOVED, ASK, TRYAGAIN (the slot moves), CLUSTERDOWN
  reconnect,   ///< did not run: the node's role changed (UNBLOCKED); the server closes the link
};

/// A server that stops being a primary (a failover, REPLICAOF) answers every blocked
/// command with "-UNBLOCKED force unblock from blocking operation, instance state changed
/// (master -> replica?)" and closes the client: the command did not run, on any deployment.
/// While a slot migrates, a command on two of its keys (the queue and a new ledger) can run
/// on neither node (ASK from the old one, TRYAGAIN from either): no pop of that queue can
/// run until the migration ends, so the pop waits through it.
inline BlockedReply classify_blocked_reply(const Reply& reply, bool clustered) {
  if (!reply.is_error()) return BlockedReply::deliver;
  const std::string_view text = reply.str;
  // Only the demotion's text: CLIENT UNBLOCK <id> ERROR sends "-UNBLOCKED client unblocked via
  // CLIENT UNBLOCK" on a link that stays up, an error for the caller.
  if (text.starts_with("UNBLOCKED force unblock")) return BlockedReply::reconnect;
  if (!clustered) return BlockedReply::deliver;
  switch (cluster::classify_reply(reply, cluster::NodeAddress{}).kind) {
    case cluster::ErrorClass::none:
    case cluster::ErrorClass::other: return BlockedReply::deliver;
    case cluster::ErrorClass::moved:
    case cluster::ErrorClass::ask:
    case cluster::ErrorClass::tryagain:
    case cluster::ErrorClass::clusterdown: return BlockedReply::wait_again;
  }
  return BlockedReply::deliver;
}

/// A PING to `queue_key`'s node: wakes a server whose blocked pop's wait has ended.
inline asio::awaitable<void> wake(BackendStatePtr sp, std::string queue_key) {
  Request ping;
  ping.add("PING");
  co_await sp->topo.exec(queue_key, std::move(ping), Duration::zero());
}

/// Waits until no element of `queue_key` is on its way back to it (PendingReturns), or
/// until `until`: the pop after one that timed out takes the returned element first. Polls
/// every 2 ms; only a backend with a return in flight ever waits.
inline asio::awaitable<void> after_returns(const PendingReturns& returns, const std::string& queue_key,
                                           Clock::time_point until) {
  if (!returns.pending(queue_key)) co_return;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (returns.pending(queue_key)) {
    const auto now = Clock::now();
    if (now >= until) co_return;
    timer.expires_after(std::min<Clock::duration>(std::chrono::milliseconds(2), until - now));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

/// The pop script on the shared connection: the head moves into the ledger. It first waits
/// for an element on its way back, for at most half of its time (the pop keeps the rest),
/// unless its caller (waiting_pop) already did.
inline asio::awaitable<std::optional<std::string>> plain_pop(BackendStatePtr sp, std::string queue_key,
                                                             std::string ledger, Deadline deadline,
                                                             bool returns_awaited = false) {
  BackendState& st = *sp;
  const Duration trip = round_trip_timeout(deadline);  // a passed deadline fails here, before any I/O
  if (!returns_awaited) {
    const Duration budget = trip > Duration::zero() ? trip : st.options.request_timeout;
    co_await after_returns(st.returns, queue_key, saturating_add(Clock::now(), budget / 2));
    round_trip_timeout(deadline);  // still before any I/O: no return job for a pop never sent
  }
  const CancelState cancel = co_await asio::this_coro::cancellation_state;
  const auto before = cancel.cancelled();
  Routed target{st.topo, queue_key};
  Reply reply;
  try {
    reply = co_await run_script(target, scripts::pop_to_ledger, deadline,
                                [&](Request& r, std::string_view verb, std::string_view id) {
                                  r.add(verb, id, "2", queue_key, ledger);
                                });
  } catch (const boost::system::system_error& e) {
    if (outcome_unknown(e.code()))
      start_settle(sp, SettleJob{SettleJob::Kind::return_ledger, queue_key, ledger, {}});
    throw;
  }
  co_return hand_over(sp, std::move(reply), queue_key, ledger, cancelled_since(cancel, before));
}

/// BLMOVE into the ledger on a pooled blocking connection. A pop still queued for a
/// connection when its wait ends pops without waiting instead. A BLMOVE that did not run
/// (classify_blocked_reply, or refused with not_connected: a link down or a demoted
/// Sentinel primary) waits again, on whatever serves the queue now, for the rest of its
/// wait, after a pause that doubles from 10 ms to 500 ms. So does one whose link was lost
/// (connection_lost: a failover, a killed client): whatever it may have moved goes back
/// from its ledger (a settling job), the next round waits for that return and moves into a
/// new ledger. A demotion on a cluster usually takes three BLMOVEs (UNBLOCKED, MOVED from
/// the node that became a replica, the wait). After 64 rounds (about 30 s of pauses) the
/// pop stops waiting and pops once.
inline asio::awaitable<std::optional<std::string>> waiting_pop(BackendStatePtr sp, std::string queue_key,
                                                               std::string ledger, Duration wait,
                                                               Deadline deadline) {
  constexpr int max_rounds = 64;
  Duration pause = std::chrono::milliseconds(10);
  BackendState& st = *sp;
  const auto start = Clock::now();
  const auto wait_end = Deadline::after(wait, start).at();
  const auto acquire_by = deadline.is_default() ? wait_end : std::min(wait_end, deadline.at());
  const CancelState cancel = co_await asio::this_coro::cancellation_state;
  const auto before = cancel.cancelled();
  // An element on its way back first: up to the end of the wait, or half of the time the
  // deadline leaves (the pop keeps the other half).
  const auto returns_by = [&] {
    if (deadline.is_default()) return wait_end;
    return std::min(wait_end, saturating_add(Clock::now(), deadline.remaining(Duration::zero()) / 2));
  };
  co_await after_returns(st.returns, queue_key, returns_by());
  for (int round = 1;; ++round) {
    if (round > 1) {  // time for the failover or the map refresh, within the wait and deadline
      asio::steady_timer between(co_await asio::this_coro::executor);
      between.expires_at(std::min(acquire_by, saturating_add(Clock::now(), pause)));
      pause = std::min<Duration>(pause * 2, std::chrono::milliseconds(500));
      co_await between.async_wait(asio::as_tuple(asio::use_awaitable));
      // After a lost link: its element back at the head before this round can take another.
      co_await after_returns(st.returns, queue_key, returns_by());
    }
    std::shared_ptr<BlockingPool> pool = st.topo.blocking_pool(queue_key);
    if (!pool && st.topo.clustered()) {  // before discovery: wait for the map within the wait
      co_await st.topo.wait_ready(acquire_by);
      pool = st.topo.blocking_pool(queue_key);
    }
    if (!pool || round > max_rounds)
      co_return co_await plain_pop(sp, std::move(queue_key), std::move(ledger), deadline, true);
    const auto conn = co_await pool->acquire(acquire_by);
    if (!conn) co_return co_await plain_pop(sp, std::move(queue_key), std::move(ledger), deadline, true);
    const Duration waited = std::chrono::ceil<Duration>(Clock::now() - start);
    if (waited >= wait) {
      pool->release(conn, true);
      co_return co_await plain_pop(sp, std::move(queue_key), std::move(ledger), deadline, true);
    }
    BlockingBudget budget{};
    try {
      budget = blocking_budget(wait - waited, deadline, st.options.request_timeout);
    } catch (...) {
      pool->release(conn, true);
      throw;
    }
    Request request;
    request.add("BLMOVE", queue_key, ledger, "LEFT", "RIGHT",
                budget.unbounded ? std::string("0") : block_seconds(budget.server_wait.count()));
    request.server_wait = budget.unbounded ? Duration::max() : budget.server_wait;
    Reply reply;
    bool again = false;  // the wait goes on: refused (did not run), or lost and being returned
    try {
      // Nudges the server from the end of the wait until the reply (wait_nudge.hpp).
      const WaitNudge::Guard nudged(
          budget.unbounded ? nullptr : WaitNudge::start(st.executor, budget.server_wait, [sp, queue_key] {
            return wake(sp, queue_key);
          }));
      reply = co_await conn->exec(std::move(request), budget.trip);
    } catch (const boost::system::system_error& e) {
      // The BLMOVE may still be pending on the server: the connection serves no one else.
      pool->release(conn, false);
      const bool time_left = round < max_rounds && Clock::now() < acquire_by;
      const bool lost = e.code() == errc::connection_lost;
      if (outcome_unknown(e.code()))
        start_settle(sp, SettleJob{SettleJob::Kind::return_ledger, queue_key, ledger, {}});
      if (!time_left || (!lost && e.code() != errc::not_connected)) throw;
      if (lost) ledger = pending_key(queue_key, st.ids.next());  // the old one is being returned
      again = true;
    } catch (...) {
      pool->release(conn, false);
      throw;
    }
    if (again) {
      if (auto* cluster = st.topo.cluster()) cluster->note_blocking_failed();
      continue;
    }
    auto* cluster = st.topo.cluster();
    BlockedReply kind = BlockedReply::deliver;
    try {
      kind = classify_blocked_reply(reply, cluster != nullptr);
    } catch (...) {
      pool->release(conn, false);
      throw;
    }
    pool->release(conn, kind != BlockedReply::reconnect);
    if (kind == BlockedReply::deliver)
      co_return hand_over(sp, std::move(reply), queue_key, ledger, cancelled_since(cancel, before));
    if (cluster) {
      // Learn the move, or that the node's role changed (a refresh of the map).
      const auto& node = conn->options();
      if (kind == BlockedReply::reconnect)
        cluster->note_blocking_failed();
      else
        cluster->note_redirect(reply, cluster::NodeAddress{node.host, node.port});
    }
  }
}

inline asio::awaitable<std::optional<std::string>> pop(BackendStatePtr sp, std::string queue_key,
                                                       Duration wait, Deadline deadline) {
  contract::check_pop(queue_key, wait);
  BackendState& st = live(sp);
  std::string ledger = pending_key(queue_key, st.ids.next());
  if (wait == Duration::zero())
    co_return co_await plain_pop(sp, std::move(queue_key), std::move(ledger), deadline);
  co_return co_await waiting_pop(sp, std::move(queue_key), std::move(ledger), wait, deadline);
}

}  // namespace corocache::detail::redis::queue
