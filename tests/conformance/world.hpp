#pragma once
// The conformance suite: every semantic of API.md, written once and run against each
// backend and deployment. The same sources build one executable per backend type, chosen
// by a compile definition: COROCACHE_CONFORMANCE_MEMORY, _REDIS (a single server, TLS,
// Sentinel or Cluster: conformance/redis_factory.hpp) or _ANY (an AnyBackend from a
// memory:// or redis:// URL: conformance/any_factory.hpp). The deployment is named at run
// time by `--deployment` (support/deployment.hpp).
//
// A World is one io_context, one backend and one Cache whose prefix is unique to the test,
// so tests sharing a Redis server never see each other's keys. `w.sync(op)` runs one
// awaitable to completion (with a deadline) so test bodies read like plain code; tests of
// concurrency spawn many coroutines on several threads with `w.run_threads`.

#include "conformance/backend_factory.hpp"
#include "support/run.hpp"

#include <corocache/cache.hpp>
#include <corocache/errors.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>

#if defined(COROCACHE_CONFORMANCE_MEMORY)
#include "conformance/memory_factory.hpp"
using TestedBackends = std::tuple<corocache::MemoryBackend>;
#elif defined(COROCACHE_CONFORMANCE_REDIS)
#include "conformance/redis_factory.hpp"
using TestedBackends = std::tuple<corocache::RedisBackend>;
#elif defined(COROCACHE_CONFORMANCE_ANY)
#include "conformance/any_factory.hpp"
using TestedBackends = std::tuple<corocache::AnyBackend>;
#else
#error "define COROCACHE_CONFORMANCE_MEMORY, COROCACHE_CONFORMANCE_REDIS or COROCACHE_CONFORMANCE_ANY"
#endif

namespace corocache::test {

using namespace std::chrono_literals;

/// A prefix no other test (or earlier run against the same server) uses.
inline std::string unique_prefix() {
  static std::mt19937_64 engine{std::random_device{}()};
  return "ct" + std::to_string(engine());
}

template <class B>
struct World {
  asio::io_context io{2};
  Cache<B> cache;

  explicit World(std::string prefix = unique_prefix())
      : cache(BackendFactory<B>::make(io.get_executor()), CacheOptions{.prefix = std::move(prefix)}) {}

  ~World() {
    // Leave a shared server clean; failures here must not mask the test's own result.
    try {
      sync(cache.flush_all());
    } catch (...) {
    }
  }

  /// Runs `op` on this world's io_context until it completes; returns its result or
  /// rethrows its exception. Fails the test if it takes longer than `limit`.
  template <class T>
  T sync(asio::awaitable<T> op, std::chrono::milliseconds limit = 20s) {
    // Shared, so an operation that outlives a failed wait never writes to a dead frame.
    struct Outcome {
      std::optional<std::conditional_t<std::is_void_v<T>, int, T>> value;
      std::exception_ptr error;
      bool done = false;
    };
    auto outcome = std::make_shared<Outcome>();
    if constexpr (std::is_void_v<T>) {
      asio::co_spawn(io, std::move(op), [outcome](std::exception_ptr e) {
        outcome->error = e;
        outcome->done = true;
      });
    } else {
      asio::co_spawn(io, std::move(op), [outcome](std::exception_ptr e, T value) {
        outcome->error = e;
        if (!e) outcome->value.emplace(std::move(value));
        outcome->done = true;
      });
    }
    io.restart();
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!outcome->done && std::chrono::steady_clock::now() < deadline)
      io.run_one_for(deadline - std::chrono::steady_clock::now());
    if (!outcome->done) FAIL("operation did not complete within " << limit.count() << " ms");
    if (outcome->error) std::rethrow_exception(outcome->error);
    if constexpr (!std::is_void_v<T>) return std::move(*outcome->value);
  }

  /// Opens the backend's link with a patient call, so that a short deadline afterwards
  /// bounds the operation under test, not the connect. A call whose deadline passes before
  /// the link is up fails with not_connected (it was never written), and a TLS handshake
  /// under a sanitizer can take longer than a 20 ms test deadline.
  void connect() { sync(cache.tenant("connect").get_key("k")); }

  /// Runs `body(executor)` (returning awaitable<void>) on `threads` threads; see support/run.hpp.
  template <class Body>
  void run_threads(Body body, int threads = 2) {
    io.restart();
    run_on(io, std::move(body), threads);
  }

  /// Runs `task(i)` (returning awaitable<void>) for every i in [0, n) as concurrent
  /// coroutines on `threads` threads; returns when all have finished. A task that throws
  /// fails the test.
  template <class Task>
  void run_concurrently(int n, Task task, int threads = 2) {
    std::atomic<int> finished{0}, failed{0};
    run_threads(
        [&](asio::any_io_executor ex) -> asio::awaitable<void> {
          for (int i = 0; i < n; ++i) {
            asio::co_spawn(
                ex,
                [&, i]() -> asio::awaitable<void> {
                  try {
                    co_await task(i);
                  } catch (...) {
                    ++failed;
                  }
                  ++finished;
                },
                asio::detached);
          }
          while (finished < n) {
            asio::steady_timer t(ex, std::chrono::milliseconds(1));
            co_await t.async_wait(asio::use_awaitable);
          }
        },
        threads);
    CHECK(finished == n);
    CHECK(failed == 0);
  }

  /// Waits `d` of wall time while the io_context keeps running (for expiry tests).
  void sleep(std::chrono::milliseconds d) {
    sync([](asio::any_io_executor ex, std::chrono::milliseconds d) -> asio::awaitable<void> {
      asio::steady_timer timer(ex, d);
      co_await timer.async_wait(asio::use_awaitable);
    }(io.get_executor(), d));
  }
};

}  // namespace corocache::test
