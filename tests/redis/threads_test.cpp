// The Redis backend and the facade on an io_context run by 4 threads, with callers
// co_spawned straight on it (no strand): with_timeout deadlines (short, long and
// Duration::max()), waiting pops and memoized calls. No crash, every result correct, every
// pushed value received at most once and none lost that was not left in the queue.
// Built as its own target (redis_threads) so CI can run it under ThreadSanitizer.

#include "support/redis_server.hpp"
#include "support/run.hpp"

#include <corocache/cache.hpp>
#include <corocache/errors.hpp>
#include <corocache/redis/backend.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace threads_test {

using namespace std::chrono_literals;
using namespace corocache;
using corocache::test::RedisServer;
using corocache::test::run;
using corocache::test::wait_until;

namespace {

constexpr int threads = 4;

asio::awaitable<void> nap(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(asio::use_awaitable);
}

RedisOptions options_for(const RedisServer& server) {
  RedisOptions o;
  o.port = server.port();
  o.request_timeout = 2s;
  return o;
}

/// What a call with a deadline of a few ms may end with: its deadline passed while the
/// request waited for its reply (timeout) or for the link (not_connected).
bool tiny_deadline_error(const boost::system::error_code& ec) {
  return ec == errc::timeout || ec == errc::not_connected;
}

/// Waits until the backend's connection answers, so the test starts in the steady state.
asio::awaitable<void> warm_up(Cache<RedisBackend>& cache) {
  const auto v = co_await cache.tenant("acme").with_timeout(5s).get_key("warm-up");
  CHECK_FALSE(v.has_value());
}

}  // namespace

TEST_CASE("values through timed scopes on 4 threads stay correct on Redis", "[threads][values]") {
  RedisServer server;
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        Cache<RedisBackend> cache{RedisBackend(ex, options_for(server)), CacheOptions{.prefix = "th"}};
        co_await warm_up(cache);
        constexpr int workers = 32;
        std::atomic<int> finished{0}, wrong{0}, timeouts{0};
        for (int w = 0; w < workers; ++w) {
          asio::co_spawn(
              ex,
              [&, w]() -> asio::awaitable<void> {
                // Tiny, long and endless deadlines side by side on the shared connection.
                const Duration limit = w % 3 == 0 ? 2ms : w % 3 == 1 ? 5s : Duration::max();
                auto scope = cache.tenant("acme").with_timeout(limit);
                for (int n = 0; n < 100; ++n) {
                  const std::string name = std::to_string(w) + ":" + std::to_string(n % 10);
                  bool resync = false;
                  try {
                    co_await scope.set_key(name, std::to_string(n));
                    const auto v = co_await scope.get_key(name);
                    // A value of this worker's own key is the one it stored last.
                    if (v != std::optional<std::string>(std::to_string(n))) ++wrong;
                  } catch (const boost::system::system_error& e) {
                    // Only the 2 ms scope may time out; then a store without it re-syncs the key.
                    (tiny_deadline_error(e.code()) && limit == 2ms ? timeouts : wrong)++;
                    resync = tiny_deadline_error(e.code());
                  }
                  if (resync) co_await cache.tenant("acme").set_key(name, std::to_string(n));
                }
                ++finished;
              },
              asio::detached);
        }
        const bool all = co_await wait_until([&] { return finished == workers; }, 60s);
        REQUIRE(all);
        CHECK(wrong == 0);
        UNSCOPED_INFO("2 ms timeouts: " << timeouts.load());
      },
      threads, 90s);
}

TEST_CASE("waiting pops with deadlines on 4 threads never receive a value twice on Redis",
          "[threads][queues]") {
  RedisServer server;
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        Cache<RedisBackend> cache{RedisBackend(ex, options_for(server)), CacheOptions{.prefix = "th"}};
        co_await warm_up(cache);
        auto scope = cache.tenant("acme");
        constexpr int producers = 4, per_producer = 150, consumers = 6;
        std::atomic<int> producing{producers}, consuming{consumers};
        std::mutex mutex;
        std::set<std::string> seen;
        int duplicates = 0;
        std::atomic<int> unexpected{0};
        const auto received = [&](std::string v) {
          std::lock_guard lock(mutex);
          if (!seen.insert(std::move(v)).second) ++duplicates;
        };
        for (int p = 0; p < producers; ++p) {
          asio::co_spawn(
              ex,
              [&, p]() -> asio::awaitable<void> {
                for (int n = 0; n < per_producer; ++n) {
                  try {
                    co_await scope.with_timeout(5s).push_to_queue(
                        "q", std::to_string(p) + "-" + std::to_string(n));
                  } catch (...) {
                    ++unexpected;
                  }
                  if (n % 8 == 0) co_await nap(1ms);
                }
                --producing;
              },
              asio::detached);
        }
        for (int c = 0; c < consumers; ++c) {
          asio::co_spawn(
              ex,
              [&, c]() -> asio::awaitable<void> {
                // Waiting pops (own wait of 20-60 ms) on scopes with short and endless timeouts.
                auto consumer_scope = scope.with_timeout(c % 2 == 0 ? 50ms : Duration::max());
                while (producing > 0) {
                  try {
                    auto v = co_await consumer_scope.pop_from_queue(
                        "q", std::chrono::milliseconds(20 + 10 * (c % 5)));
                    if (v) received(std::move(*v));
                  } catch (const boost::system::system_error& e) {
                    if (e.code() != errc::timeout) ++unexpected;
                  }
                }
                --consuming;
              },
              asio::detached);
        }
        const bool all = co_await wait_until([&] { return producing == 0 && consuming == 0; }, 60s);
        REQUIRE(all);
        for (;;) {
          auto v = co_await scope.with_timeout(5s).pop_from_queue("q");
          if (!v) break;
          received(std::move(*v));
        }
        CHECK(duplicates == 0);
        CHECK(unexpected == 0);
        // Without timeouts nothing may be missing; the count is checked end to end.
        CHECK(seen.size() == std::size_t{producers * per_producer});
      },
      threads, 90s);
}

TEST_CASE("memoized calls on 4 threads on Redis: correct results, one run per arguments",
          "[threads][func_cache]") {
  RedisServer server;
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        Cache<RedisBackend> cache{RedisBackend(ex, options_for(server)), CacheOptions{.prefix = "th"}};
        co_await warm_up(cache);
        auto scope = cache.tenant("acme");
        constexpr int keys = 8, callers = 200;
        std::vector<std::atomic<int>> runs(keys);
        auto slow = cache.func_cache("slow", [&runs](int x) -> asio::awaitable<int> {
          ++runs[x];
          co_await nap(std::chrono::milliseconds(2 + x % 3));
          co_return x * 10;
        });
        std::atomic<int> correct{0}, timeouts{0}, wrong{0}, finished{0};
        std::mutex mutex;
        std::string first_error;
        const auto note = [&](std::string what) {
          std::lock_guard lock(mutex);
          if (first_error.empty()) first_error = std::move(what);
        };
        for (int i = 0; i < callers; ++i) {
          const int x = i % keys;
          asio::co_spawn(
              ex,
              [&, x, i]() -> asio::awaitable<void> {
                const Duration limit = i % 3 == 0 ? 1ms : i % 3 == 1 ? 5s : Duration::max();
                try {
                  const int r = co_await slow(scope.with_timeout(limit), x);
                  (r == x * 10 ? correct : wrong)++;
                } catch (const boost::system::system_error& e) {
                  const bool expected = tiny_deadline_error(e.code()) && limit == 1ms;
                  (expected ? timeouts : wrong)++;
                  if (!expected) note(e.what());
                } catch (const std::exception& e) {
                  ++wrong;
                  note(e.what());
                }
                ++finished;
              },
              asio::detached);
        }
        const bool all = co_await wait_until([&] { return finished == callers; }, 60s);
        REQUIRE(all);
        INFO("first unexpected error: " << first_error);
        CHECK(wrong == 0);
        CHECK(correct + timeouts == callers);
        for (int x = 0; x < keys; ++x) {
          const int r = co_await slow(scope.with_timeout(5s), x);
          CHECK(r == x * 10);
        }
        for (int x = 0; x < keys; ++x) CHECK(runs[x] == 1);
      },
      threads, 90s);
}

}  // namespace threads_test
