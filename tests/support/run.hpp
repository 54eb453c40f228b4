#pragma once
// Runs a test coroutine to completion on a fresh io_context, with a deadline: a test that
// hangs fails with a message instead of blocking the suite.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <thread>
#include <vector>

namespace corocache::test {

namespace asio = boost::asio;

/// Spawns `body(executor)` on `io` and runs `io` on `threads` threads until it finishes or
/// `limit` passes. Rethrows what the coroutine threw.
template <class Body>
void run_on(asio::io_context& io, Body body, int threads = 1,
            std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  bool done = false;
  std::exception_ptr error;
  io.restart();
  asio::co_spawn(io, body(io.get_executor()), [&](std::exception_ptr e) {
    error = e;
    done = true;
    io.stop();  // background work (sweeps, reconnect loops) must not keep us running
  });
  std::vector<std::thread> extra;
  for (int i = 1; i < threads; ++i) extra.emplace_back([&] { io.run_for(limit); });
  io.run_for(limit);
  for (auto& t : extra) t.join();
  if (!done) FAIL("test coroutine did not finish within " << limit.count() << " ms");
  if (error) std::rethrow_exception(error);
}

/// As run_on, with an io_context of its own.
template <class Body>
void run(Body body, int threads = 1, std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  asio::io_context io(threads);
  run_on(io, std::move(body), threads, limit);
}

/// Polls `done` every 5 ms until it holds or `limit` passes; returns whether it held. For
/// waiting on work that finishes on other threads: nothing but this coroutine touches its
/// timer (cancelling a timer from another thread races with its owner's wake-up).
inline asio::awaitable<bool> wait_until(std::function<bool()> done, std::chrono::milliseconds limit) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) co_return false;
    timer.expires_after(std::chrono::milliseconds(5));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_return true;
}

/// Waits `d` without blocking the executor; a cancelled wait throws operation_aborted, as
/// any Asio wait does.
inline asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(asio::use_awaitable);
}

}  // namespace corocache::test
