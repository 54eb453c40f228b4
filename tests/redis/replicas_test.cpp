// Two application replicas, each with its own Cache<RedisBackend> (own connection), share
// one Redis server: they see each other's keys, indices, queues, locks and func_cache
// results, and tenants stay isolated across them.

#include "support/redis_server.hpp"
#include "support/run.hpp"

#include <corocache/cache.hpp>
#include <corocache/redis/backend.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <random>
#include <string>

namespace replicas_test {

using namespace corocache;
using namespace std::chrono_literals;

namespace {

struct Replicas {
  explicit Replicas(asio::any_io_executor ex, std::string prefix)
      : a(make(ex, prefix)), b(make(ex, prefix)) {}
  static Cache<RedisBackend> make(asio::any_io_executor ex, const std::string& prefix) {
    RedisOptions options;
    options.port = test::shared_redis_server().port();
    return Cache<RedisBackend>(RedisBackend(std::move(ex), options), CacheOptions{.prefix = prefix});
  }
  Cache<RedisBackend> a;
  Cache<RedisBackend> b;
};

std::string unique_prefix() {
  static std::mt19937_64 engine{std::random_device{}()};
  return "rp" + std::to_string(engine());
}

}  // namespace

TEST_CASE("two replicas see each other's values, indices and queues", "[redis][replicas]") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    Replicas r(ex, unique_prefix());
    auto a = r.a.tenant("acme").ns("users");
    auto b = r.b.tenant("acme").ns("users");
    SetOptions active{.indices = indices("active")};
    co_await a.set_key("u1", "from a", active);
    const auto read = co_await b.get_key("u1");
    const auto listed = co_await b.list_keys_by_index("active");
    co_await b.push_to_queue("jobs", "from b");
    const auto popped = co_await a.pop_from_queue("jobs");
    const bool deleted = co_await b.delete_key("u1");
    const auto gone = co_await a.get_key("u1");
    CHECK(read == std::optional<std::string>("from a"));
    CHECK(listed == std::vector<std::string>{"u1"});
    CHECK(popped == std::optional<std::string>("from b"));
    CHECK(deleted);
    CHECK_FALSE(gone.has_value());
    co_await r.a.flush_all();
  });
}

TEST_CASE("a lock taken by one replica excludes the other until released", "[redis][replicas]") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    Replicas r(ex, unique_prefix());
    auto a = r.a.tenant("acme");
    auto b = r.b.tenant("acme");
    const auto held = co_await a.attempt_distributed_lock("nightly-job", 30s);
    const auto refused = co_await b.attempt_distributed_lock("nightly-job", 30s);
    const auto other_tenant = co_await r.b.tenant("beta").attempt_distributed_lock("nightly-job", 30s);
    REQUIRE(held.has_value());
    CHECK_FALSE(refused.has_value());
    CHECK(other_tenant.has_value());
    // A Lock is a plain value: the other replica may release it with the token.
    const bool released = co_await b.release_distributed_lock(*held);
    const auto taken_after = co_await b.attempt_distributed_lock("nightly-job", 30s);
    CHECK(released);
    CHECK(taken_after.has_value());
    co_await r.a.flush_all();
  });
}

TEST_CASE("replicas share func_cache results per tenant and clear them for each other", "[redis][replicas]") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    Replicas r(ex, unique_prefix());
    auto runs = std::make_shared<std::atomic<int>>(0);
    auto lookup = [runs](std::string sku, int qty) -> asio::awaitable<double> {
      ++*runs;
      co_return static_cast<double>(sku.size() * qty);
    };
    auto price_a = r.a.func_cache("price", lookup);
    auto price_b = r.b.func_cache("price", lookup);
    const double first = co_await price_a(r.a.tenant("acme"), "sku-1", 3);
    const double shared = co_await price_b(r.b.tenant("acme"), "sku-1", 3);
    CHECK(first == 15.0);
    CHECK(shared == 15.0);
    CHECK(*runs == 1);  // replica b reused replica a's result

    const double other_tenant = co_await price_b(r.b.tenant("beta"), "sku-1", 3);
    CHECK(other_tenant == 15.0);
    CHECK(*runs == 2);  // tenants never share results

    const auto cleared = co_await price_b.cache_clear(r.b.tenant("acme"));
    CHECK(cleared == 1);
    co_await price_a(r.a.tenant("acme"), "sku-1", 3);
    co_await price_a(r.a.tenant("beta"), "sku-1", 3);
    CHECK(*runs == 3);  // acme recomputed after b's clear; beta's result stayed
    co_await r.a.flush_all();
  });
}

TEST_CASE("a computation on one replica that another replica's cache_clear overlaps is not cached",
          "[redis][replicas]") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    Replicas r(ex, unique_prefix());
    auto db = std::make_shared<std::atomic<int>>(1);
    auto runs = std::make_shared<std::atomic<int>>(0);
    // Ordered by flags, not by timing: replica a's computation has read the database before
    // it changes, and ends only after replica b's clear.
    auto has_read = std::make_shared<std::atomic<bool>>(false);
    auto cleared = std::make_shared<std::atomic<bool>>(false);
    auto read = [db, runs, has_read, cleared](int row) -> asio::awaitable<int> {
      ++*runs;
      const int seen = db->load() + row;
      *has_read = true;
      for (int i = 0; i < 5000 && !*cleared; ++i) {
        asio::steady_timer step(co_await asio::this_coro::executor, 2ms);
        co_await step.async_wait(asio::use_awaitable);
      }
      co_return seen;
    };
    auto read_a = r.a.func_cache("read", read);
    auto read_b = r.b.func_cache("read", read);
    auto seen_first = std::make_shared<std::atomic<int>>(0);
    asio::co_spawn(
        ex,
        [](auto read_a, corocache::Scope<corocache::RedisBackend> acme,
           std::shared_ptr<std::atomic<int>> seen) -> asio::awaitable<void> {
          *seen = co_await read_a(acme, 0);
        }(read_a, r.a.tenant("acme"), seen_first),
        asio::detached);
    for (int i = 0; i < 5000 && !*has_read; ++i) {
      asio::steady_timer step(ex, 2ms);
      co_await step.async_wait(asio::use_awaitable);
    }
    *db = 2;
    const std::size_t erased = co_await read_b.cache_clear(r.b.tenant("acme"));  // replica b's clear
    CHECK(erased == 0);
    *cleared = true;
    for (int i = 0; i < 300 && *seen_first == 0; ++i) {
      asio::steady_timer poll(ex, 10ms);
      co_await poll.async_wait(asio::use_awaitable);
    }
    CHECK(*seen_first == 1);            // replica a's caller asked before the clear
    asio::steady_timer settle(ex, 1s);  // a's erase follows its store by a round trip
    co_await settle.async_wait(asio::use_awaitable);
    const int seen_later = co_await read_b(r.b.tenant("acme"), 0);
    CHECK(seen_later == 2);
    CHECK(*runs == 2);
    co_await r.a.flush_all();
  });
}

TEST_CASE("flush_all of one application leaves another prefix on the same server alone",
          "[redis][replicas]") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    Replicas one(ex, unique_prefix());
    Replicas two(ex, unique_prefix());
    co_await one.a.tenant("acme").set_key("k", "one");
    co_await two.a.tenant("acme").set_key("k", "two");
    co_await one.b.flush_all();
    const auto gone = co_await one.a.tenant("acme").get_key("k");
    const auto kept = co_await two.b.tenant("acme").get_key("k");
    CHECK_FALSE(gone.has_value());
    CHECK(kept == std::optional<std::string>("two"));
    co_await two.a.flush_all();
  });
}

}  // namespace replicas_test
