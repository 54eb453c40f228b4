#pragma once
// An io_context that is destroyed (or shut down) while calls are in flight destroys the
// handlers Asio holds, without running them. A call parked in a backend is not one of those
// (a Redis call in its connection, a waiting pop in the memory store): the backend holds the
// caller's coroutine, which holds the backend. Nothing would ever free that cycle.
// ContextShutdown is a service of the backend's execution context: when the context shuts
// down, it tells each registered listener, which fails its parked calls (shut_down). That
// hands their handlers to the context, which destroys them with the rest.
// docs/shutdown.md has the order of events.

#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/query.hpp>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace corocache::detail {

/// Something that holds callers' handlers outside Asio and must let go of them when its
/// context shuts down. Called once, with no thread running the context.
class ContextShutdownListener {
 public:
  virtual void on_context_shutdown() noexcept = 0;

 protected:
  ~ContextShutdownListener() = default;
};

class ContextShutdown final : public boost::asio::execution_context::service {
 public:
  using key_type = ContextShutdown;
  inline static boost::asio::execution_context::id id;

  explicit ContextShutdown(boost::asio::execution_context& context) : service(context) {}

  /// Registers `listener` with the context of `executor`. Thread-safe. A listener that is
  /// gone by then is skipped (held weakly: the service never keeps one alive).
  template <class Executor>
  static void watch(const Executor& executor, std::weak_ptr<ContextShutdownListener> listener) {
    auto& context = boost::asio::query(executor, boost::asio::execution::context);
    boost::asio::use_service<ContextShutdown>(context).add(std::move(listener));
  }

  /// Listeners registered and still alive (tests).
  std::size_t watched() const {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(
        std::count_if(listeners_.begin(), listeners_.end(), [](const auto& w) { return !w.expired(); }));
  }

 private:
  void add(std::weak_ptr<ContextShutdownListener> listener) {
    std::lock_guard lock(mutex_);
    // Entries of listeners already destroyed are dropped when the list has doubled since the
    // last sweep: amortized O(1), and no unregistering from a destructor (which could run
    // after the context is gone).
    if (listeners_.size() >= sweep_at_) {
      std::erase_if(listeners_, [](const auto& w) { return w.expired(); });
      sweep_at_ = std::max<std::size_t>(16, 2 * listeners_.size());
    }
    listeners_.push_back(std::move(listener));
  }

  void shutdown() override {
    std::vector<std::weak_ptr<ContextShutdownListener>> listeners;
    {
      std::lock_guard lock(mutex_);
      listeners.swap(listeners_);
    }
    // Outside the lock: failing a listener's calls may destroy their coroutines at once (when
    // their executor's service is already down), and with them other listeners, whose
    // destructors may register or sweep.
    for (auto& weak : listeners)
      if (auto listener = weak.lock()) listener->on_context_shutdown();
  }

  mutable std::mutex mutex_;
  std::vector<std::weak_ptr<ContextShutdownListener>> listeners_;
  std::size_t sweep_at_ = 16;
};

}  // namespace corocache::detail
