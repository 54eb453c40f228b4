// RedisBackend against a real server: queues (including waiting pops on their own
// connections, ending on time on a server that rarely wakes), locks, and two backends
// sharing one server like two replicas.

#include "redis/backend_support.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <catch2/catch.hpp>

#include <atomic>

namespace backend_structures_test {

using namespace corocache;
using namespace corocache::test;
using namespace boost::asio::experimental::awaitable_operators;

TEST_CASE("a queue is FIFO and an empty pop returns nullopt at once", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto q = unique_scope() + "q:jobs";
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    const auto got20 = co_await b.pop(q, 0ms);
    CHECK(got20 == std::nullopt);
    co_await b.push(q, "one");
    co_await b.push(q, "two");
    co_await b.push(q, std::string("th\0ree", 6));
    CHECK(server.run({"TYPE", q}) == "list");
    CHECK(server.run({"TTL", q}) == "-1");  // queues do not expire
    const auto got26 = co_await b.pop(q, 0ms);
    CHECK(got26 == std::optional<std::string>("one"));
    const auto got27 = co_await b.pop(q, 0ms);
    CHECK(got27 == std::optional<std::string>("two"));
    const auto got28 = co_await b.pop(q, 100ms);
    CHECK(got28 == std::optional<std::string>(std::string("th\0ree", 6)));
    const auto got29 = co_await b.pop(q, 0ms);
    CHECK(got29 == std::nullopt);
    co_await settled(b);
  });
}

TEST_CASE("a waiting pop is served by a push from another connection", "[redis][backend]") {
  const auto q = unique_scope() + "q:wait";
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend consumer(ex, options_for());
    RedisBackend producer(ex, options_for());
    auto pushed_later = [&]() -> asio::awaitable<void> {
      co_await sleep_for(200ms);
      co_await producer.push(q, "hello");
    };
    const auto started = std::chrono::steady_clock::now();
    auto popped = co_await (consumer.pop(q, 5s) && pushed_later());
    CHECK(popped == std::optional<std::string>("hello"));
    CHECK(std::chrono::steady_clock::now() - started < 4s);  // served by the push, not the timeout
    co_await settled(consumer);
  });
}

TEST_CASE("a waiting pop on an empty queue times out on schedule", "[redis][backend]") {
  const auto q = unique_scope() + "q:empty";
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    const auto started = std::chrono::steady_clock::now();
    const auto got54 = co_await b.pop(q, 300ms);
    CHECK(got54 == std::nullopt);
    const auto took = std::chrono::steady_clock::now() - started;
    CHECK(took >= 250ms);
    CHECK(took < 300ms + options_for().request_timeout);
    // The connection is reusable afterwards (a second wait works the same way).
    co_await b.push(q, "x");
    const auto got60 = co_await b.pop(q, 300ms);
    CHECK(got60 == std::optional<std::string>("x"));
    co_await settled(b);
  });
}

// Redis answers an expired blocked wait when its event loop wakes, which an idle server does
// every 1000/hz ms: here once a second. Without a nudge each pop after the first would end on
// the next tick, ~1 s after it started (the first aligns with the tick).
TEST_CASE("a waiting pop ends at its wait on a server that wakes once a second", "[redis][backend]") {
  RedisServer slow_ticks({"--hz", "1"});
  const auto q = unique_scope() + "q:ticks";
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for(slow_ticks));
    const auto first = co_await b.pop(q, 100ms);
    CHECK(first == std::nullopt);
    const auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 3; ++i) {
      const auto got = co_await b.pop(q, 100ms);
      CHECK(got == std::nullopt);
    }
    const auto took = std::chrono::steady_clock::now() - started;
    CHECK(took >= 300ms);
    CHECK(took < 1500ms);  // three 100 ms waits, not three server ticks (~3 s)
    co_await settled(b);
  });
}

TEST_CASE("a waiting pop does not hold up other requests", "[redis][backend]") {
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    const auto got68 = co_await b.set(scope + "v:a", "a", params());
    CHECK(got68);
    // Many pops wait at once; gets on the shared connection complete meanwhile.
    std::atomic<int> gets_done{0};
    std::atomic<int> pops_done_before_gets{0};
    co_await run_all(ex, 6, [&](std::size_t i) -> asio::awaitable<void> {
      if (i < 3) {
        auto v = co_await b.pop(scope + "q:" + std::to_string(i), 1500ms);
        CHECK(v == std::nullopt);
        if (gets_done < 3) ++pops_done_before_gets;
      } else {
        co_await sleep_for(50ms);
        const auto got79 = co_await b.get(scope + "v:a");
        CHECK(got79 == std::optional<std::string>("a"));
        ++gets_done;
      }
    });
    CHECK(gets_done == 3);
    CHECK(pops_done_before_gets == 0);
  });
}

TEST_CASE("a cancelled waiting pop leaves the queue and the backend usable", "[redis][backend]") {
  const auto q = unique_scope() + "q:cancel";
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    auto result = co_await (b.pop(q, 10s) || sleep_for(100ms));
    CHECK(result.index() == 1);  // the timer won; the pop was cancelled
    co_await b.push(q, "after");
    const auto got95 = co_await b.pop(q, 500ms);
    CHECK(got95 == std::optional<std::string>("after"));
    co_await settled(b);  // the cancelled pop's ledger was settled too
    CHECK(b.stats().settle_failed == 0);
  });
}

TEST_CASE("of many concurrent lock attempts exactly one succeeds", "[redis][backend]") {
  const auto lk = unique_scope() + "l:job";
  std::atomic<int> owners{0};
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        RedisBackend b(ex, options_for());
        co_await run_all(ex, 40, [&](std::size_t i) -> asio::awaitable<void> {
          const bool owned = co_await b.try_lock(lk, "token-" + std::to_string(i), 30s);
          if (owned) ++owners;
        });
      },
      2);
  CHECK(owners == 1);
}

TEST_CASE("a lock is released only by its owner's token", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto lk = unique_scope() + "l:job";
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    const auto got118 = co_await b.try_lock(lk, "mine", 30s);
    CHECK(got118);
    const auto got119 = co_await b.try_lock(lk, "other", 30s);
    CHECK_FALSE(got119);
    const auto got120 = co_await b.unlock(lk, "other");
    CHECK_FALSE(got120);
    CHECK(server.run({"GET", lk}) == "mine");
    const auto got122 = co_await b.unlock(lk, "mine");
    CHECK(got122);
    const auto got123 = co_await b.unlock(lk, "mine");
    CHECK_FALSE(got123);
    const auto got124 = co_await b.try_lock(lk, "other", 30s);
    CHECK(got124);
  });
}

TEST_CASE("a stale token's release returns false and leaves the new owner's lock", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto lk = unique_scope() + "l:job";
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    const auto got133 = co_await b.try_lock(lk, "old", 80ms);
    CHECK(got133);
    co_await sleep_for(200ms);  // expired
    const auto got135 = co_await b.try_lock(lk, "new", 30s);
    CHECK(got135);
    const auto got136 = co_await b.unlock(lk, "old");
    CHECK_FALSE(got136);
    CHECK(server.run({"GET", lk}) == "new");
    CHECK(std::stoll(server.run({"PTTL", lk})) > 20'000);
  });
}

TEST_CASE("two backends on one server see each other's keys, indices, queues and locks", "[redis][backend]") {
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend one(ex, options_for());
    RedisBackend two(ex, options_for());
    const auto got147 = co_await one.set(scope + "v:a", "from-one", P(60s).index(scope + "i:x"));
    CHECK(got147);
    const auto got148 = co_await two.get(scope + "v:a");
    CHECK(got148 == std::optional<std::string>("from-one"));
    const auto got149 = co_await two.index_members(scope + "i:x");
    CHECK(sorted(got149) == list(scope + "v:a"));
    const auto got150 = co_await two.set(scope + "v:a", "from-two", P(60s).nx());
    CHECK_FALSE(got150);
    const auto got151 = co_await one.try_lock(scope + "l:job", "one", 30s);
    CHECK(got151);
    const auto got152 = co_await two.try_lock(scope + "l:job", "two", 30s);
    CHECK_FALSE(got152);
    const auto got153 = co_await two.unlock(scope + "l:job", "two");
    CHECK_FALSE(got153);
    const auto got154 = co_await one.unlock(scope + "l:job", "one");
    CHECK(got154);
    const auto got155 = co_await two.try_lock(scope + "l:job", "two", 30s);
    CHECK(got155);
    co_await one.push(scope + "q:q", "m");
    const auto got157 = co_await two.pop(scope + "q:q", 0ms);
    CHECK(got157 == std::optional<std::string>("m"));
    const auto got158 = co_await two.erase(scope + "v:a");
    CHECK(got158);
    const auto got159 = co_await one.get(scope + "v:a");
    CHECK(got159 == std::nullopt);
    co_await settled(two);
  });
}

TEST_CASE("a moved backend keeps working and a destroyed one fails pending waits with shut_down",
          "[redis][backend]") {
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend first(ex, options_for());
    RedisBackend b(std::move(first));
    const auto got168 = co_await b.set(scope + "v:a", "a", params());
    CHECK(got168);
    const auto got169 = co_await b.get(scope + "v:a");
    CHECK(got169 == std::optional<std::string>("a"));
    auto pending = std::make_optional<RedisBackend>(ex, options_for());
    auto closer = [&]() -> asio::awaitable<void> {
      co_await sleep_for(100ms);
      pending.reset();
    };
    auto waiting_pop = [&]() -> asio::awaitable<void> {
      try {
        co_await pending->pop(scope + "q:never", 10s);
        FAIL("the pop returned after its backend was destroyed");
      } catch (const boost::system::system_error& e) {
        CHECK(e.code() == errc::shut_down);
      }
    };
    co_await (waiting_pop() && closer());
  });
}

}  // namespace backend_structures_test
