#pragma once
// Joins concurrent computations of one key inside a process: the first caller (the leader)
// computes, later callers wait for the leader's outcome instead of computing again. This
// keeps func_cache's promise of one run per arguments when many coroutines miss together.

#include <corocache/errors.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace corocache::detail {

class SingleFlight {
 public:
  using Signature = void(std::exception_ptr, std::string);

  /// One computation that others may wait for.
  class Flight {
   public:
    /// Completes with the leader's outcome (its encoded result, or its exception), resuming
    /// the caller on its own executor. Not cancellable.
    boost::asio::awaitable<std::string> wait() {
      // use_awaitable rethrows a non-null leading exception_ptr in the waiting coroutine.
      co_return co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, Signature>(
          [this](auto handler) {
            std::unique_lock lock(mutex_);
            // Keep the waiter's own executor: it is where the waiter resumes.
            Waiter waiter{boost::asio::get_associated_executor(handler), Handler(std::move(handler))};
            if (!done_) {
              waiters_.push_back(std::move(waiter));
              return;
            }
            lock.unlock();
            deliver(std::move(waiter), error_, value_);
          },
          boost::asio::use_awaitable);
    }

   private:
    friend class SingleFlight;

    using Handler = boost::asio::any_completion_handler<Signature>;
    struct Waiter {
      boost::asio::any_io_executor executor;
      Handler handler;
    };

    // Runs the handler on the waiter's executor, never inline in the leader.
    static void deliver(Waiter waiter, std::exception_ptr error, std::string value) {
      boost::asio::post(waiter.executor,
                        boost::asio::append(std::move(waiter.handler), error, std::move(value)));
    }

    void finish(std::exception_ptr error, std::string value) {
      std::vector<Waiter> waiters;
      {
        std::lock_guard lock(mutex_);
        done_ = true;
        error_ = error;
        value_ = std::move(value);
        waiters.swap(waiters_);
      }
      for (auto& waiter : waiters) deliver(std::move(waiter), error_, value_);
    }

    std::mutex mutex_;
    bool done_ = false;
    std::exception_ptr error_;
    std::string value_;
    std::vector<Waiter> waiters_;
  };

  /// Leadership of one key: finish() publishes the outcome to every waiter. A leader that
  /// is destroyed without finishing (its coroutine was cancelled or destroyed) releases the
  /// waiters with an error, so nobody waits forever.
  class Leader {
   public:
    Leader(SingleFlight* owner, std::string key, std::shared_ptr<Flight> flight)
        : owner_(owner), key_(std::move(key)), flight_(std::move(flight)) {}
    Leader(Leader&& other) noexcept
        : owner_(std::exchange(other.owner_, nullptr)),
          key_(std::move(other.key_)),
          flight_(std::move(other.flight_)) {}
    Leader& operator=(Leader&&) = delete;
    ~Leader() {
      if (owner_)
        finish(std::make_exception_ptr(
                   std::runtime_error("corocache: the computation being waited for was abandoned")),
               {});
    }
    void finish(std::exception_ptr error, std::string value) {
      if (!owner_) return;
      std::exchange(owner_, nullptr)->forget(key_, flight_);
      flight_->finish(error, std::move(value));
    }

   private:
    SingleFlight* owner_;
    std::string key_;
    std::shared_ptr<Flight> flight_;
  };

  /// Either leadership of `key` (nobody computes it yet) or the flight to wait for.
  struct Joined {
    std::optional<Leader> leader;
    std::shared_ptr<Flight> flight;  // set when another caller leads
  };

  Joined join(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto [it, inserted] = flights_.try_emplace(key);
    if (!inserted) return Joined{std::nullopt, it->second};
    it->second = std::make_shared<Flight>();
    return Joined{Leader(this, key, it->second), nullptr};
  }

 private:
  void forget(const std::string& key, const std::shared_ptr<Flight>& flight) {
    std::lock_guard lock(mutex_);
    auto it = flights_.find(key);
    if (it != flights_.end() && it->second == flight) flights_.erase(it);
  }

  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
};

}  // namespace corocache::detail
