#pragma once
// Joins concurrent computations of one key inside a process: the first caller starts one
// computation (func_cache spawns it as a coroutine of its own), and every caller, the first
// included, merely waits for its outcome. A waiter leaves alone: its deadline or a
// cancellation completes only its own wait, and the computation goes on for the others.
// docs/deadlines.md has the design and the thread-safety argument.
//
// Thread safety: everything about a flight (its outcome, its waiters, each waiter's timer)
// is guarded by the flight's mutex. A waiter is completed exactly once, by whichever of
// finish(), its timer or its cancellation slot claims it first under that mutex, and its
// handler is always posted to the waiter's own executor, never run inline: so a waiter's
// coroutine is resumed (and its cancellation slot cleared by Asio) on its own executor,
// and this file never emits a cancellation signal.

#include <corocache/backend.hpp>
#include <corocache/errors.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <cstdint>
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

  /// One computation and the callers waiting for it.
  class Flight : public std::enable_shared_from_this<Flight> {
   public:
    /// Waits for the outcome (the encoded result, or the computation's exception), resuming
    /// the caller on its executor (the handler's associated executor, else `ex`).
    /// An outcome already published completes it at once, whatever the deadline. Else it
    /// fails with system_error(errc::timeout) when `deadline` passes first (the default
    /// deadline: no limit), and with system_error(asio::error::operation_aborted) when a
    /// cancellation (any type) reaches it first. Leaving never affects the computation.
    template <class Token>
    auto async_wait(boost::asio::any_io_executor ex, Deadline deadline, Token&& token) {
      return boost::asio::async_initiate<Token, Signature>(
          [self = shared_from_this(), ex = std::move(ex), deadline](auto handler) mutable {
            self->start_wait(std::move(ex), deadline, std::move(handler));
          },
          token);
    }

    /// Publishes the outcome (once; later calls do nothing) and completes every waiter.
    void finish(std::exception_ptr error, std::string value) {
      std::lock_guard lock(mutex_);
      if (done_) return;
      done_ = true;
      error_ = error;
      value_ = std::move(value);
      for (auto& waiter : waiters_) complete(*waiter, error_, value_);
      waiters_.clear();
    }

   private:
    using Handler = boost::asio::any_completion_handler<Signature>;

    /// Guarded by the flight's mutex. (Built in one go: any_completion_handler's move
    /// assignment recurses forever in Boost 1.81.)
    struct Waiter {
      Waiter(boost::asio::any_io_executor ex, Handler h) : executor(std::move(ex)), handler(std::move(h)) {}
      boost::asio::any_io_executor executor;
      Handler handler;
      std::optional<boost::asio::steady_timer> timer;
      bool done = false;
    };

    template <class H>
    void start_wait(boost::asio::any_io_executor fallback, Deadline deadline, H handler) {
      // A completion posted below may resume the caller on another thread before this
      // returns, and the caller may drop the last other reference to this flight: keep it
      // alive until the mutex is released (declared before the lock, so destroyed after it).
      const std::shared_ptr<Flight> keep_alive = shared_from_this();
      auto slot = boost::asio::get_associated_cancellation_slot(handler);
      auto executor = boost::asio::get_associated_executor(handler, fallback);
      auto waiter = std::make_shared<Waiter>(std::move(executor), Handler(std::move(handler)));
      std::lock_guard lock(mutex_);
      if (done_) {
        complete(*waiter, error_, value_);
        return;
      }
      if (!deadline.is_default() && deadline.at() <= Deadline::Clock::now()) {
        complete(*waiter, timeout_error(), {});
        return;
      }
      waiters_.push_back(waiter);
      if (!deadline.is_default() && !deadline.is_never()) {
        waiter->timer.emplace(waiter->executor, deadline.at());
        waiter->timer->async_wait([self = shared_from_this(), waiter](const boost::system::error_code&) {
          self->leave(waiter, timeout_error());
        });
      }
      if (slot.is_connected()) {
        // Runs on the thread that emits the signal: it only claims the waiter under the
        // mutex and posts the completion. Weak references: the slot may outlive the wait.
        slot.assign([weak_self = weak_from_this(),
                     weak_waiter = std::weak_ptr<Waiter>(waiter)](boost::asio::cancellation_type) {
          const auto self = weak_self.lock();
          const auto w = weak_waiter.lock();
          if (self && w)
            self->leave(w, std::make_exception_ptr(
                               boost::system::system_error(boost::asio::error::operation_aborted)));
        });
      }
    }

    /// A waiter's deadline passed or it was cancelled: it alone completes with `error`.
    void leave(const std::shared_ptr<Waiter>& waiter, std::exception_ptr error) {
      std::lock_guard lock(mutex_);
      if (waiter->done) return;
      waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), waiter), waiters_.end());
      complete(*waiter, std::move(error), {});
    }

    /// Under the mutex: claims the waiter and posts its completion to its executor.
    static void complete(Waiter& waiter, std::exception_ptr error, std::string value) {
      if (waiter.done) return;
      waiter.done = true;
      if (waiter.timer) waiter.timer->cancel();
      boost::asio::post(waiter.executor,
                        boost::asio::append(std::move(waiter.handler), std::move(error), std::move(value)));
    }

    static std::exception_ptr timeout_error() {
      return std::make_exception_ptr(boost::system::system_error(
          make_error_code(errc::timeout),
          "corocache: the call's deadline passed while waiting for the computation"));
    }

    friend class SingleFlight;
    std::uint64_t generation_ = 0;  // set by join() before the flight is shared, then constant
    std::mutex mutex_;
    bool done_ = false;
    std::exception_ptr error_;
    std::string value_;
    std::vector<std::shared_ptr<Waiter>> waiters_;
  };

  /// The right and duty to publish one computation's outcome. Whoever holds it (func_cache's
  /// computation coroutine) calls finish(); destroyed without finishing (the coroutine was
  /// destroyed, e.g. with its io_context), it releases the waiters with an error so nobody
  /// waits forever. Removing the flight from the registry lets the next miss start anew.
  class Run {
   public:
    Run(std::shared_ptr<SingleFlight> owner, std::string key, std::shared_ptr<Flight> flight)
        : owner_(owner), key_(std::move(key)), flight_(std::move(flight)) {}
    Run(Run&& other) noexcept
        : owner_(std::exchange(other.owner_, nullptr)),
          key_(std::move(other.key_)),
          flight_(std::move(other.flight_)) {}
    Run& operator=(Run&&) = delete;
    ~Run() {
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
    std::shared_ptr<SingleFlight> owner_;  // kept alive for forget()
    std::string key_;
    std::shared_ptr<Flight> flight_;
  };

  /// The flight of `key`, and when nobody computes it yet, the Run that starts it.
  struct Joined {
    std::shared_ptr<Flight> flight;
    std::optional<Run> run;  // set for the caller that must start the computation
  };

  /// `self` is this registry, held by whoever owns it (the Run keeps it alive). A flight
  /// started in an older `generation` than the caller's (before a clear, memo_clears.hpp) is
  /// not joined: a new one replaces it in the registry, and the old one goes on for the
  /// callers it has. Generations only grow.
  static Joined join(const std::shared_ptr<SingleFlight>& self, const std::string& key,
                     std::uint64_t generation = 0) {
    std::lock_guard lock(self->mutex_);
    auto [it, inserted] = self->flights_.try_emplace(key);
    if (!inserted && it->second->generation_ >= generation) return Joined{it->second, std::nullopt};
    it->second = std::make_shared<Flight>();
    it->second->generation_ = generation;
    return Joined{it->second, Run(self, key, it->second)};
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
