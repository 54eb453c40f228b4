#pragma once
// A coroutine parked in MemoryBackend::pop until a value arrives, its wait runs out, or the
// backend goes away. Whoever completes it first (a push, its timer, the backend's
// destructor) claims it under the mutex of the shard that holds the queue, so a value is
// handed to exactly one waiter and a waiter that times out at the same moment as a push
// never swallows the pushed value: the push only considers unclaimed waiters.

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <string>
#include <utility>

namespace corocache::detail::memory {

namespace asio = boost::asio;

/// pop's completion: an exception (backend shut down) or the value / nullopt on timeout.
using PopSignature = void(std::exception_ptr, std::optional<std::string>);

/// Every member is guarded by the mutex of the shard holding the waiter's queue; that
/// mutex also serializes every use of `timer` after the wait started.
struct PopWaiter {
  PopWaiter(asio::any_io_executor ex, asio::any_completion_handler<PopSignature> h)
      : timer(std::move(ex)), handler(std::move(h)) {}

  asio::steady_timer timer;
  asio::any_completion_handler<PopSignature> handler;
  /// When the wait ends, in nanoseconds of an injected clock (QueueTable::expire_waits);
  /// unused on the real clock, where `timer` ends it.
  std::int64_t deadline = std::numeric_limits<std::int64_t>::max();
  bool done = false;

  /// Completes the wait (once; later calls do nothing). The handler is posted to its own
  /// executor, never run inline, so it cannot resume a coroutine under the shard mutex.
  void complete(std::exception_ptr error, std::optional<std::string> value) {
    if (done) return;
    done = true;
    timer.cancel();
    // Queued on the backend's executor, then dispatched to the handler's own executor
    // (the awaiting coroutine's, e.g. a strand).
    auto handler_ex = asio::get_associated_executor(handler, timer.get_executor());
    asio::post(timer.get_executor(),
               asio::bind_executor(std::move(handler_ex),
                                   [h = std::move(handler), error, v = std::move(value)]() mutable {
                                     std::move(h)(error, std::move(v));
                                   }));
  }
};

}  // namespace corocache::detail::memory
