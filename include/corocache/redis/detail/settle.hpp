#pragma once
// Background settling of pending records (docs/redis_queues.md): after a pop delivered its
// element, its ledger is deleted; after a pop or lock attempt whose caller is gone, the
// element goes back to its queue (or the lock is released) and a tombstone is left. Each job
// is one idempotent command or script on the shared connection (a cluster: the key's slot), sent after the
// operation's own request (so on one link it runs after it), retried with backoff until the server answers.

#include <corocache/backend.hpp>
#include <corocache/errors.hpp>
#include <corocache/redis/detail/budget.hpp>
#include <corocache/redis/detail/commands.hpp>
#include <corocache/redis/detail/connection.hpp>
#include <corocache/redis/detail/request.hpp>
#include <corocache/redis/detail/script_runner.hpp>
#include <corocache/redis/detail/scripts.hpp>
#include <corocache/redis/detail/topology.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace corocache::detail::redis {

/// How long a tombstone stays: longer than any request can stay on its way to the server
/// (TCP gives up retransmitting after ~15 minutes).
inline constexpr Duration tombstone_ttl = std::chrono::hours(1);

/// Attempts of one job, and the delay after the n-th failed one (50 ms doubling, at most
/// 500 ms): a job keeps trying for about three minutes of server outage, and one whose server
/// is back runs within half a second, before most pops stop waiting for its return.
inline constexpr int settle_attempts = 400;
constexpr Duration settle_delay(int attempt) noexcept {
  constexpr Duration most = std::chrono::milliseconds(500);
  Duration d = std::chrono::milliseconds(50);
  for (int i = 0; i < attempt && d < most; ++i) d *= 2;
  return std::min<Duration>(d, most);
}

/// Counters of settling jobs (monotonic).
struct SettleCounters {
  std::atomic<std::uint64_t> started{0};
  std::atomic<std::uint64_t> done{0};
  std::atomic<std::uint64_t> failed{0};    ///< gave up (backend closed, or attempts used up)
  std::atomic<std::uint64_t> returned{0};  ///< elements put back into their queue
};

/// The queues of a backend with an element on its way back (a return_ledger job not done
/// yet). The backend's next pop of such a queue waits for it, so one consumer sees its queue
/// in order even after a pop that timed out: otherwise a waiting pop's BLMOVE, on a
/// connection of its own, could take the next element before the returned one is back at
/// the head (docs/redis_queues.md). Thread-safe; free while nothing is pending.
class PendingReturns {
 public:
  void begin(const std::string& queue) {
    const std::lock_guard lock(mutex_);
    ++counts_[queue];
    total_.fetch_add(1, std::memory_order_release);
  }
  void end(const std::string& queue) {
    const std::lock_guard lock(mutex_);
    const auto it = counts_.find(queue);
    if (it == counts_.end()) return;
    if (--it->second == 0) counts_.erase(it);
    total_.fetch_sub(1, std::memory_order_release);
  }
  bool pending(const std::string& queue) const {
    if (total_.load(std::memory_order_acquire) == 0) [[likely]]
      return false;
    const std::lock_guard lock(mutex_);
    return counts_.find(queue) != counts_.end();
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::size_t> counts_;
  std::atomic<std::size_t> total_{0};
};

/// A return_ledger job's entry in PendingReturns, from begin() at its construction to end()
/// at its destruction (it keeps the PendingReturns alive). Moved into the job's coroutine
/// as a parameter, so the entry ends with the coroutine frame even if the job never starts.
class ReturnTicket {
 public:
  ReturnTicket() = default;
  ReturnTicket(std::shared_ptr<PendingReturns> returns, std::string queue)
      : returns_(std::move(returns)), queue_(std::move(queue)) {
    returns_->begin(queue_);
  }
  ReturnTicket(ReturnTicket&& other) noexcept = default;  // the moved-from one holds no entry
  ReturnTicket& operator=(ReturnTicket&&) = delete;
  ~ReturnTicket() {
    if (returns_) returns_->end(queue_);
  }

 private:
  std::shared_ptr<PendingReturns> returns_;
  std::string queue_;
};

struct SettleJob {
  enum class Kind {
    forget,          ///< delivered: delete the ledger
    return_ledger,   ///< pop abandoned: ledger back to the queue, tombstone
    release_attempt  ///< lock attempt abandoned: release if held, tombstone
  };
  Kind kind;
  std::string key;     ///< the queue or lock key
  std::string record;  ///< the ledger / attempt record
  std::string token;   ///< release_attempt only
};

/// One attempt of `job`; throws on failure.
template <class Target>
asio::awaitable<void> settle_once(Target& conn, const SettleJob& job, SettleCounters& counters) {
  const Decimal ttl(px(tombstone_ttl));
  const Deadline by_default;  // named: no temporaries in a co_await expression (g++ 12)
  switch (job.kind) {
    case SettleJob::Kind::forget: {
      Request unlink;
      unlink.add("UNLINK", job.record);
      const Reply reply = co_await conn.exec(std::move(unlink), Duration::zero());
      throw_if_error(reply);
      break;
    }
    case SettleJob::Kind::return_ledger: {
      const Reply reply = co_await run_script(conn, scripts::return_ledger, by_default,
                                              [&](Request& r, std::string_view verb, std::string_view id) {
                                                r.add(verb, id, "2", job.key, job.record, ttl.view());
                                              });
      if (reply.is_integer() && reply.integer > 0)
        counters.returned.fetch_add(static_cast<std::uint64_t>(reply.integer), std::memory_order_relaxed);
      break;
    }
    case SettleJob::Kind::release_attempt: {
      const Reply reply =
          co_await run_script(conn, scripts::release_attempt, by_default,
                              [&](Request& r, std::string_view verb, std::string_view id) {
                                r.add(verb, id, "2", job.key, job.record, job.token, ttl.view());
                              });
      (void)reply;
      break;
    }
  }
}

/// Runs `job` until it succeeds, `closed` is set, or the attempts run out. `keep_alive` owns
/// `topology`, `counters` and `closed`; `ticket` is a return_ledger job's entry in
/// PendingReturns, ended with this frame. Each attempt goes to the job key's slot.
inline asio::awaitable<void> run_settle(std::shared_ptr<void> keep_alive, Topology& topology,
                                        SettleCounters& counters, const std::atomic<bool>& closed,
                                        SettleJob job, ReturnTicket ticket) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (int attempt = 0; attempt < settle_attempts && !closed.load(std::memory_order_acquire); ++attempt) {
    bool stop = false;
    try {
      Routed conn{topology, job.key};
      co_await settle_once(conn, job, counters);
      counters.done.fetch_add(1, std::memory_order_relaxed);
      co_return;
    } catch (const boost::system::system_error& e) {
      stop = e.code() == errc::shut_down;
    } catch (...) {
    }
    if (stop) break;
    timer.expires_after(settle_delay(attempt));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  counters.failed.fetch_add(1, std::memory_order_relaxed);
  (void)keep_alive;
  (void)ticket;  // ends its entry with this frame
}

}  // namespace corocache::detail::redis
