#pragma once
// The memory backend's periodic sweep: a coroutine on a strand of the backend's executor
// that calls Store::sweep_tick every interval. It holds the store only through a weak_ptr
// (a tick locks it for its own duration), so destroying the backend ends the loop. To stop
// it at once (backend destroyed or closed) the backend posts SweepControl::stop to the
// strand; the flag keeps a stop effective even if it ran before the loop's first wait,
// when a timer cancel alone would have nothing to cancel.

#include <corocache/backend.hpp>
#include <corocache/detail/deadline.hpp>
#include <corocache/memory/detail/store.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <utility>

namespace corocache::detail::memory {

/// The sweep's timer and stop flag; both are touched only on the sweep's strand.
struct SweepControl {
  explicit SweepControl(asio::any_io_executor strand) : timer(std::move(strand)) {}
  void stop() {
    stopped = true;
    timer.cancel();
  }
  asio::steady_timer timer;
  bool stopped = false;
};

inline asio::awaitable<void> sweep_loop(std::weak_ptr<Store> weak_store,
                                        std::shared_ptr<SweepControl> control, Duration interval) {
  while (!control->stopped) {
    expire_after(control->timer, interval);
    boost::system::error_code ec;
    co_await control->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec || control->stopped) co_return;  // stopped: the backend was destroyed or closed
    const std::shared_ptr<Store> store = weak_store.lock();
    if (!store) co_return;
    store->sweep_tick();
  }
}

}  // namespace corocache::detail::memory
