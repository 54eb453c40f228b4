// NullBackend: caching switched off behind the same facade.
#include "support/run.hpp"

#include <corocache/cache.hpp>
#include <corocache/null_backend.hpp>

#include <catch2/catch.hpp>

namespace null_backend_test {

using namespace corocache;
using namespace std::chrono_literals;

TEST_CASE("with caching switched off every read misses and every write reports not stored", "[null]") {
  test::run([](asio::any_io_executor) -> asio::awaitable<void> {
    Cache<NullBackend> cache{NullBackend{}, {.prefix = "app"}};
    auto s = cache.tenant("acme");
    SetOptions active{.indices = indices("active")};
    // Results go through variables: g++ 12 evaluates a co_await inside a Catch2 macro
    // more than once.
    const bool stored = co_await s.set_key("k", "v", active);
    const auto read = co_await s.get_key("k");
    const bool deleted = co_await s.delete_key("k");
    const bool refreshed = co_await s.refresh_key("k", 1h);
    const auto listed = co_await s.list_keys_by_index("active");
    const auto invalidated = co_await s.invalidate_prefix("");
    co_await s.push_to_queue("q", "m");
    const auto popped = co_await s.pop_from_queue("q");
    CHECK_FALSE(stored);
    CHECK_FALSE(read.has_value());
    CHECK_FALSE(deleted);
    CHECK_FALSE(refreshed);
    CHECK(listed.empty());
    CHECK(invalidated == 0);
    CHECK_FALSE(popped.has_value());
    co_await cache.flush_all();
  });
}

TEST_CASE("with caching switched off locks are always granted", "[null]") {
  test::run([](asio::any_io_executor) -> asio::awaitable<void> {
    Cache<NullBackend> cache{NullBackend{}};
    auto s = cache.tenant("acme");
    auto first = co_await s.attempt_distributed_lock("job", 30s);
    auto second = co_await s.attempt_distributed_lock("job", 30s);
    REQUIRE(first.has_value());
    REQUIRE(second.has_value());
    const bool released = co_await s.release_distributed_lock(*first);
    CHECK(released);
  });
}

TEST_CASE("with caching switched off a memoized function runs on every call", "[null]") {
  test::run([](asio::any_io_executor) -> asio::awaitable<void> {
    Cache<NullBackend> cache{NullBackend{}};
    int runs = 0;
    auto twice = cache.func_cache("twice", [&runs](int x) -> asio::awaitable<int> {
      ++runs;
      co_return 2 * x;
    });
    const int first = co_await twice(cache.tenant("acme"), 2);
    const int second = co_await twice(cache.tenant("acme"), 2);
    CHECK(first == 4);
    CHECK(second == 4);
    CHECK(runs == 2);
  });
}

TEST_CASE("with caching switched off a waiting pop still waits, so polling loops do not spin", "[null]") {
  test::run([](asio::any_io_executor) -> asio::awaitable<void> {
    Cache<NullBackend> cache{NullBackend{}};
    const auto start = std::chrono::steady_clock::now();
    const auto popped = co_await cache.tenant("acme").pop_from_queue("q", 100ms);
    CHECK_FALSE(popped.has_value());
    CHECK(std::chrono::steady_clock::now() - start >= 90ms);
  });
}

TEST_CASE("bad input is rejected by the facade whatever the backend", "[null][validation]") {
  Cache<NullBackend> cache{NullBackend{}};
  CHECK_THROWS_AS(cache.tenant("a:b"), invalid_name);
  SetOptions never{.expire = 0ms};
  CHECK_THROWS_AS(cache.tenant("acme").set_key("k", "v", never), std::invalid_argument);
  CHECK_THROWS_AS((Cache<NullBackend>{NullBackend{}, {.prefix = ""}}), invalid_name);
}

TEST_CASE("with caching switched off index invalidation, batch clears and close do nothing", "[null]") {
  test::run([](asio::any_io_executor) -> asio::awaitable<void> {
    Cache<NullBackend> cache{NullBackend{}};
    auto s = cache.tenant("acme");
    auto runs = std::make_shared<int>(0);
    auto tenant_of = cache.func_cache(
        "tenant_of", [runs](const Scope<NullBackend>& scope) -> asio::awaitable<std::string> {
          ++*runs;
          co_return scope.tenant();
        });
    const auto invalidated = co_await s.invalidate_index("a:b\n");
    auto batch = s.batch();
    batch.invalidate_index("x").cache_clear(tenant_of).cache_clear("other");
    co_await batch.commit();
    const auto first = co_await tenant_of(s);
    const auto second = co_await tenant_of(s);
    cache.close();
    CHECK(invalidated == 0);
    CHECK(batch.size() == 0);
    CHECK(first == "acme");
    CHECK(second == "acme");
    CHECK(*runs == 2);
  });
}

}  // namespace null_backend_test
