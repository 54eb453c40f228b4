// An io_context destroyed while calls are still in flight (a service stopping with a stalled
// server, or a test ending early) must destroy the callers' coroutines, as Asio does for any
// handler it holds, and free the backend: no reference cycle through a connection may keep
// them alive. On every backend and deployment: memory, one Redis server, Cluster, Sentinel.
// Each caller holds a token in its coroutine frame; the token is freed exactly when the
// frame is destroyed.

#include "redis/backend_support.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_sentinel.hpp"

#include <corocache/cache.hpp>
#include <corocache/detail/context_shutdown.hpp>
#include <corocache/memory_backend.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace shutdown_test {

using namespace corocache;
using namespace corocache::test;

namespace {

struct Flight {
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
};

// Parameters, not lambda captures: they live in the coroutine frame.
template <class B>
asio::awaitable<void> get_forever(Scope<B> scope, std::shared_ptr<int> token, Flight& flight) {
  flight.started.fetch_add(1);
  auto value = co_await scope.template get<std::string>("k");
  (void)value;
  (void)token;
  flight.finished.fetch_add(1);
}

template <class B>
asio::awaitable<void> pop_forever(Scope<B> scope, std::shared_ptr<int> token, Flight& flight) {
  flight.started.fetch_add(1);
  auto value = co_await scope.pop_from_queue("q", std::chrono::hours(1));
  (void)value;
  (void)token;
  flight.finished.fetch_add(1);
}

template <class B, class Fn>
asio::awaitable<void> compute_forever(Scope<B> scope, Fn fn, std::shared_ptr<int> token, Flight& flight) {
  flight.started.fetch_add(1);
  int value = co_await fn(scope, 1);
  (void)value;
  (void)token;
  flight.finished.fetch_add(1);
}

// A func_cache computation that never ends: one leader waits on its timer, the others follow.
inline asio::awaitable<int> never_ends(int x) {
  asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
  co_await timer.async_wait(asio::use_awaitable);
  co_return x;
}

/// Makes the backend on `io` (run by `threads` threads), spawns `per_kind` GETs, waiting pops
/// and calls of one memoized function, waits until all have started and had time to reach
/// the server, stops `io`, then destroys the cache (as a scope's locals go, before `io`).
/// `prepare(cache)` runs first (e.g. warm_up, then pause the servers). Returns a token every
/// caller's frame holds.
template <class B, class Make, class Prepare>
std::weak_ptr<int> destroy_in_flight(Make make_backend, asio::io_context& io, int threads, int per_kind,
                                     int expect_finished, Prepare prepare) {
  std::weak_ptr<int> watch;
  Flight flight;
  {
    std::optional<Cache<B>> cache;
    cache.emplace(make_backend());
    prepare(*cache);
    auto scope = cache->tenant("shutdown");
    auto memo = cache->func_cache("never", &never_ends);
    auto token = std::make_shared<int>(0);
    watch = token;
    for (int i = 0; i < per_kind; ++i) {
      asio::co_spawn(io, get_forever(scope, token, flight), asio::detached);
      asio::co_spawn(io, pop_forever(scope, token, flight), asio::detached);
      asio::co_spawn(io, compute_forever(scope, memo, token, flight), asio::detached);
    }
    token.reset();
    const int calls = 3 * per_kind;
    std::vector<std::thread> runners;
    for (int i = 0; i < threads; ++i) runners.emplace_back([&] { io.run_for(std::chrono::seconds(20)); });
    const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (flight.started.load() < calls && std::chrono::steady_clock::now() < limit)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // written, or queued behind a stall
    io.stop();
    for (auto& t : runners) t.join();
    REQUIRE(flight.started.load() == calls);
    CHECK(flight.finished.load() == expect_finished);
    CHECK_FALSE(watch.expired());  // the waiting pops and the computation never end by themselves
  }
  return watch;
}

/// Connects the backend: one store, run on `io` from this thread.
template <class B>
void warm_up(Cache<B>& cache, asio::io_context& io) {
  bool done = false;
  asio::co_spawn(
      io,
      [scope = cache.tenant("shutdown"), &done]() -> asio::awaitable<void> {
        const std::string value = "x";
        co_await scope.set_key("warm", value);
        done = true;
      },
      asio::detached);
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done && std::chrono::steady_clock::now() < limit) io.run_one_for(std::chrono::milliseconds(50));
  REQUIRE(done);
}

}  // namespace

TEST_CASE("an io_context destroyed with Redis calls in flight destroys the callers' coroutines",
          "[redis][shutdown]") {
  RedisServer server;
  const int threads = GENERATE(1, 4);
  // Paused once connected: the calls are written and unanswered. Paused before: the link
  // never completes its handshake, and the calls wait to be written.
  const bool connected = GENERATE(true, false);
  INFO("io_context threads: " << threads << (connected ? ", paused once connected" : ", paused before"));
  std::weak_ptr<int> token;
  {
    asio::io_context io(threads);
    auto options = options_for(server);
    options.request_timeout = std::chrono::hours(1);
    options.stall_timeout = Duration::zero();  // no stall detection: the link never drops
    options.health_check_interval = Duration::zero();
    auto make = [&] { return RedisBackend(io.get_executor(), options); };
    auto prepare = [&](Cache<RedisBackend>& cache) {
      if (connected) warm_up(cache, io);
      server.pause();
    };
    token = destroy_in_flight<RedisBackend>(make, io, threads, 20, /*expect_finished=*/0, prepare);
  }
  CHECK(token.expired());
  server.resume();
}

/// destroy_in_flight on a two-thread io_context through a Cluster or Sentinel backend: it
/// connects first, then `pause()` stops the servers that would answer.
template <class Options, class Pause>
std::weak_ptr<int> destroy_paused_deployment(Options options, Pause pause) {
  asio::io_context io(2);
  options.request_timeout = std::chrono::hours(1);
  auto make = [&] { return RedisBackend(io.get_executor(), options); };
  auto prepare = [&](Cache<RedisBackend>& cache) {
    warm_up(cache, io);  // Cluster: discovers the slot map; Sentinel: finds the primary
    pause();
  };
  return destroy_in_flight<RedisBackend>(make, io, 2, 10, /*expect_finished=*/0, prepare);
}  // `io` is destroyed after the returned token was taken

TEST_CASE("an io_context destroyed with Redis Cluster calls in flight destroys the callers' coroutines",
          "[redis][shutdown][cluster]") {
  RedisCluster cluster;
  const auto primaries = cluster.primaries();
  const auto token = destroy_paused_deployment(RedisClusterOptions::from_url(cluster.url()), [&] {
    for (auto p : primaries) cluster.pause(p);
  });
  CHECK(token.expired());
  for (auto p : primaries) cluster.resume(p);
}

TEST_CASE("an io_context destroyed with Redis Sentinel calls in flight destroys the callers' coroutines",
          "[redis][shutdown][sentinel]") {
  RedisSentinelGroup group;
  const auto primary = group.primary_index();
  const auto token = destroy_paused_deployment(RedisSentinelOptions::from_url(group.url()),
                                               [&] { group.data_node(primary).pause(); });
  CHECK(token.expired());
  group.data_node(primary).resume();
}

TEST_CASE("an io_context destroyed with memory calls in flight destroys the callers' coroutines",
          "[memory][shutdown]") {
  const int threads = GENERATE(1, 4);
  INFO("io_context threads: " << threads);
  std::weak_ptr<int> token;
  {
    asio::io_context io(threads);
    auto make = [&] { return MemoryBackend(io.get_executor()); };
    auto prepare = [](Cache<MemoryBackend>&) {};
    token =
        destroy_in_flight<MemoryBackend>(make, io, threads, 20, /*expect_finished=*/20, prepare);  // GETs end
  }
  CHECK(token.expired());
}

TEST_CASE("a connection registers with its io_context's shutdown service, held weakly", "[redis][shutdown]") {
  asio::io_context io;
  auto& service = asio::use_service<detail::ContextShutdown>(io);
  RedisOptions options;
  options.port = 1;  // never connected: registration needs no server
  {
    RedisBackend backend(io.get_executor(), options);
    CHECK(service.watched() >= 1);
  }
  io.run();  // lets the closed connection's last work end
  CHECK(service.watched() == 0);
}

}  // namespace shutdown_test
