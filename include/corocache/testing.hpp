#pragma once
// Test helpers for code written against corocache (installed with the library; needs no test
// framework). testing::run runs one coroutine to completion on a fresh io_context with a
// deadline, returns its value and rethrows what it threw:
//
//   std::string r = corocache::testing::run([](asio::any_io_executor ex) -> asio::awaitable<std::string> {
//     corocache::Cache<corocache::MemoryBackend> cache{corocache::MemoryBackend{ex}, {.prefix = "test"}};
//     co_return co_await greeting(cache, "ada");
//   });
//
// testing::ManualClock is a clock that moves only when a test advances it; a MemoryBackend
// built on it (testing::memory_backend, or MemoryOptions::clock) takes every expiry, lock
// ttl and parked pop's wait from it, and runs no background sweep (call sweep_now()):
//
//   corocache::testing::ManualClock clock;
//   corocache::Cache<corocache::MemoryBackend> cache{corocache::testing::memory_backend(ex, clock),
//                                                    {.prefix = "test"}};
//   corocache::SetOptions five_seconds{.expire = 5s};
//   co_await cache.global().set_key("k", "v", five_seconds);
//   clock.advance(5s);  // "k" has expired now: no sleep

#include <corocache/backend.hpp>
#include <corocache/errors.hpp>
#include <corocache/memory/backend.hpp>
#include <corocache/memory/detail/clock.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace corocache::testing {

/// Calls `body(executor)` (which returns an asio::awaitable<T>) on a fresh single-threaded
/// io_context and runs it until the coroutine finishes or `limit` passes. Returns its value
/// (T may be void), rethrows the exception it ended with, and throws
/// system_error(errc::timeout) if it did not finish in time. Background work left on the
/// io_context when the coroutine finishes (a MemoryBackend's sweep, a RedisBackend's
/// reconnect loop) does not delay the return: the io_context is stopped and destroyed with
/// it, so create the objects under test inside `body` (or make them outlive nothing of it).
template <class Body>
auto run(Body&& body, Duration limit = std::chrono::seconds(10)) {
  using Awaitable = std::invoke_result_t<Body&, asio::any_io_executor>;
  using T = typename Awaitable::value_type;
  std::conditional_t<std::is_void_v<T>, bool, std::optional<T>> result{};
  std::exception_ptr error;
  bool done = false;
  asio::io_context io;  // destroyed first: an unfinished coroutine goes before what it refers to
  auto wrapper = [](Awaitable op, decltype(result)& out) -> asio::awaitable<void> {
    // The value goes into a named variable before anything else touches it (g++ 12 and
    // temporaries in a co_await full-expression: README, Compilers).
    if constexpr (std::is_void_v<T>) {
      co_await std::move(op);
      out = true;
    } else {
      T value = co_await std::move(op);
      out.emplace(std::move(value));
    }
  };
  asio::co_spawn(io, wrapper(body(io.get_executor()), result), [&](std::exception_ptr e) {
    error = e;
    done = true;
    io.stop();
  });
  io.run_for(limit);
  if (!done) {
    throw boost::system::system_error(make_error_code(errc::timeout),
                                      "corocache::testing::run: the coroutine did not finish within " +
                                          std::to_string(limit.count()) + " ms");
  }
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<T>) return std::move(*result);
}

/// A clock that moves only when advance() is called, for MemoryBackend (MemoryOptions::clock
/// accepts it as is). Copies share one time. Thread-safe: now() and advance() may be called
/// from any thread. Starts at `start` (default: steady_clock's epoch).
class ManualClock {
 public:
  using time_point = MemoryClock::time_point;

  explicit ManualClock(time_point start = time_point{}) : state_(std::make_shared<State>(start)) {}

  time_point now() const noexcept { return state_->now(); }

  /// Moves the clock forward by `d` (throws std::invalid_argument if d < 0), then ends the
  /// parked pops of every backend on this clock whose wait has passed (they complete with
  /// nullopt on their own executor, like a real timeout). Values and locks need nothing:
  /// they compare their deadline with now() when touched.
  void advance(std::chrono::nanoseconds d) const {
    if (d < std::chrono::nanoseconds::zero())
      throw std::invalid_argument("corocache::testing::ManualClock::advance: d < 0");
    state_->advance(d);
  }

  /// The clock as MemoryOptions::clock takes it.
  operator std::shared_ptr<MemoryClock>() const { return state_; }

 private:
  class State final : public MemoryClock {
   public:
    explicit State(time_point start) : ns_(start.time_since_epoch().count()) {}

    time_point now() const noexcept override {
      return time_point(time_point::duration(ns_.load(std::memory_order_acquire)));
    }

    void subscribe(std::weak_ptr<Listener> listener) override {
      const std::lock_guard lock(mu_);
      listeners_.push_back(std::move(listener));
    }

    void advance(std::chrono::nanoseconds d) {
      ns_.fetch_add(std::chrono::duration_cast<time_point::duration>(d).count(), std::memory_order_acq_rel);
      std::vector<std::shared_ptr<Listener>> live;
      {
        const std::lock_guard lock(mu_);
        std::erase_if(listeners_, [](const std::weak_ptr<Listener>& l) { return l.expired(); });
        for (const auto& l : listeners_) {
          if (auto p = l.lock()) live.push_back(std::move(p));
        }
      }
      for (const auto& l : live) l->clock_advanced();
    }

   private:
    std::atomic<time_point::rep> ns_;
    std::mutex mu_;
    std::vector<std::weak_ptr<Listener>> listeners_;
  };

  std::shared_ptr<State> state_;
};

/// A MemoryBackend whose time is `clock` (MemoryOptions::clock = clock; the rest of
/// `options` as given): no background sweep runs, call MemoryBackend::sweep_now().
inline MemoryBackend memory_backend(asio::any_io_executor ex, const ManualClock& clock,
                                    MemoryOptions options = {}) {
  options.clock = clock;
  return MemoryBackend(std::move(ex), std::move(options));
}

}  // namespace corocache::testing
