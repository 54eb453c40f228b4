#pragma once
// The memory backend's queues: FIFO lists of values, and pops parked on an empty queue
// (pop_waiter.hpp) that a push hands its value to, oldest waiter first. Each operation
// locks the queue key's shard `mu`; push_locked expects the caller (Store::commit) to hold
// it.

#include <corocache/backend.hpp>
#include <corocache/detail/deadline.hpp>
#include <corocache/errors.hpp>
#include <corocache/memory/detail/clock.hpp>
#include <corocache/memory/detail/key_map.hpp>
#include <corocache/memory/detail/pop_waiter.hpp>
#include <corocache/memory/detail/shard.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>

#include <algorithm>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace corocache::detail::memory {

class QueueTable {
 public:
  QueueTable(const ShardArray& shards, const TimeSource& time, asio::any_io_executor ex)
      : shards_(shards), time_(time), executor_(std::move(ex)) {}

  const asio::any_io_executor& executor() const noexcept { return executor_; }

  void push(std::string queue_key, std::string value) {
    const KeyRef k(queue_key);
    Shard& s = shards_.for_hash(k.hash);
    std::lock_guard lock(s.mu);
    push_locked(s, k, std::move(queue_key), std::move(value));
  }

  /// Gives back a value popped for a caller that is gone (cancelled after the value was
  /// handed to it): it becomes the oldest element again (or goes to a waiting pop).
  void return_to_head(std::string queue_key, std::string value) {
    const KeyRef k(queue_key);
    Shard& s = shards_.for_hash(k.hash);
    std::lock_guard lock(s.mu);
    push_locked(s, k, std::move(queue_key), std::move(value), true);
  }

  /// The oldest element, or nullopt when the queue is empty (no waiting).
  std::optional<std::string> try_pop(std::string_view queue_key) {
    const KeyRef k(queue_key);
    Shard& s = shards_.for_hash(k.hash);
    std::lock_guard lock(s.mu);
    return pop_locked(s, k);
  }

  /// Completes `handler` (posted, never inline) with the oldest element, or parks it until
  /// a push, `wait` passing (nullopt), a cancellation signal on the handler's slot (any
  /// type: a parked pop has no side effects to undo; completes with operation_aborted) or
  /// shut_down() (errc::shut_down). `self` refers to this table; the timer and the
  /// cancellation handler hold it weakly, so they do nothing once the store is gone. On an
  /// injected clock, expire_waits ends the wait when that clock passes it. `cap` (a call's
  /// deadline; Duration::max(): none) is real time on either clock: the pop ends with
  /// nullopt when it passes first.
  void pop_or_wait(const std::weak_ptr<QueueTable>& self, std::string queue_key, Duration wait, Duration cap,
                   asio::any_completion_handler<PopSignature> handler) {
    const KeyRef k(queue_key);
    Shard& s = shards_.for_hash(k.hash);
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
    Duration real = cap;  // what the steady_clock timer waits for
    if (time_.injected()) {
      w->deadline = deadline_after(time_.now(), wait);
    } else {
      real = std::min(wait, cap);
    }
    if (real != Duration::max()) {
      expire_after(w->timer, real);
      w->timer.async_wait([w, weak = self, key = it->first](const boost::system::error_code&) {
        if (auto table = weak.lock()) table->abandon_pop(key, w, nullptr);
      });
    }
    if (slot.is_connected()) {
      // Holds only weak references and checks `done` under the shard mutex, so it is
      // harmless if the signal comes after the pop completed (the slot is not cleared).
      slot.assign(
          [weak = self, weak_waiter = std::weak_ptr<PopWaiter>(w), key = it->first](asio::cancellation_type) {
            const auto table = weak.lock();
            const auto waiter = weak_waiter.lock();
            if (table && waiter) {
              table->abandon_pop(
                  key, waiter,
                  std::make_exception_ptr(boost::system::system_error(asio::error::operation_aborted)));
            }
          });
    }
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

  /// Empties every non-empty queue of shard `s` (whose `mu` the caller holds) whose key
  /// matches (parked pops stay parked); counts them.
  template <class Matches>
  std::size_t erase_matching(Shard& s, const Matches& matches) {
    std::size_t removed = 0;
    for (auto it = s.queues.begin(); it != s.queues.end();) {
      if (!matches(it->first) || it->second.items.empty()) {
        ++it;
        continue;
      }
      ++removed;
      it->second.items.clear();
      it = it->second.waiters.empty() ? s.queues.erase(it) : std::next(it);
    }
    return removed;
  }

  /// Ends (with nullopt) every parked pop whose wait, measured on the injected clock, has
  /// passed at `now`.
  void expire_waits(Nanos now) {
    for (std::size_t i = 0; i < shards_.size(); ++i) {
      Shard& s = shards_[i];
      std::lock_guard lock(s.mu);
      for (auto it = s.queues.begin(); it != s.queues.end();) {
        auto& waiters = it->second.waiters;
        for (const auto& w : waiters) {
          if (w->deadline <= now) w->complete(nullptr, std::nullopt);
        }
        std::erase_if(waiters, [](const std::shared_ptr<PopWaiter>& w) { return w->done; });
        it = waiters.empty() && it->second.items.empty() ? s.queues.erase(it) : std::next(it);
      }
    }
  }

  /// Fails every parked pop with errc::shut_down, saying `why`.
  void shut_down(const char* why) {
    const auto error =
        std::make_exception_ptr(boost::system::system_error(make_error_code(errc::shut_down), why));
    for (std::size_t i = 0; i < shards_.size(); ++i) {
      std::lock_guard lock(shards_[i].mu);
      for (auto& [key, q] : shards_[i].queues) {
        for (auto& w : q.waiters) w->complete(error, std::nullopt);
        q.waiters.clear();
      }
    }
  }

 private:
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
    Shard& s = shards_.for_hash(k.hash);
    std::lock_guard lock(s.mu);
    if (w->done) return;
    if (const auto it = s.queues.find(k); it != s.queues.end()) {
      auto& waiters = it->second.waiters;
      waiters.erase(std::remove(waiters.begin(), waiters.end(), w), waiters.end());
      if (waiters.empty() && it->second.items.empty()) s.queues.erase(it);
    }
    w->complete(std::move(error), std::nullopt);
  }

  const ShardArray& shards_;
  const TimeSource& time_;
  asio::any_io_executor executor_;
};

}  // namespace corocache::detail::memory
