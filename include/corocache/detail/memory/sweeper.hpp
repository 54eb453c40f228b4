#pragma once
// The memory backend's periodic sweep: a coroutine on a strand of the backend's executor
// that calls Store::sweep_tick every interval. It holds the store only through a weak_ptr
// (a tick locks it for its own duration), so destroying the backend ends the loop: the
// backend also cancels the timer, so the loop exits at once instead of at its next tick.

#include <corocache/backend.hpp>
#include <corocache/detail/deadline.hpp>
#include <corocache/detail/memory/store.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>

namespace corocache::detail::memory {

inline asio::awaitable<void> sweep_loop(std::weak_ptr<Store> weak_store,
                                        std::shared_ptr<asio::steady_timer> timer, Duration interval) {
  for (;;) {
    expire_after(*timer, interval);
    boost::system::error_code ec;
    co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;  // cancelled: the backend is being destroyed
    const std::shared_ptr<Store> store = weak_store.lock();
    if (!store) co_return;
    store->sweep_tick();
  }
}

}  // namespace corocache::detail::memory
