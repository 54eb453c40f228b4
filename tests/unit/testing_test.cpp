// corocache/testing.hpp (run a coroutine with a deadline) and MemoryBackend::close().

#include <corocache/cache.hpp>
#include <corocache/memory/backend.hpp>
#include <corocache/testing.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace testing_test {

namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST_CASE("testing::run returns the coroutine's value, with a memory backend alive inside it") {
  const std::string value =
      corocache::testing::run([](asio::any_io_executor ex) -> asio::awaitable<std::string> {
        corocache::Cache<corocache::MemoryBackend> cache{corocache::MemoryBackend{ex}, {.prefix = "t"}};
        auto s = cache.tenant("acme");
        co_await s.set_key("k", "v", 10min);
        auto got = co_await s.get_key("k");
        co_return got.value_or("<miss>");
      });
  CHECK(value == "v");
}

TEST_CASE("testing::run runs a void coroutine to its end") {
  int steps = 0;
  corocache::testing::run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    asio::steady_timer timer(ex, 1ms);
    co_await timer.async_wait(asio::use_awaitable);
    steps = 1;
  });
  CHECK(steps == 1);
}

TEST_CASE("testing::run rethrows what the coroutine threw") {
  auto body = [](asio::any_io_executor) -> asio::awaitable<int> {
    throw std::logic_error("from the test body");
    co_return 1;
  };
  CHECK_THROWS_AS(corocache::testing::run(body), std::logic_error);
  CHECK_THROWS_WITH(corocache::testing::run(body), "from the test body");
}

TEST_CASE("testing::run throws errc::timeout when the coroutine outlives its limit") {
  auto body = [](asio::any_io_executor ex) -> asio::awaitable<void> {
    asio::steady_timer timer(ex, 1h);
    co_await timer.async_wait(asio::use_awaitable);
  };
  try {
    corocache::testing::run(body, 20ms);
    FAIL("run returned although the coroutine was still waiting");
  } catch (const boost::system::system_error& e) {
    CHECK(e.code() == corocache::errc::timeout);
  }
}

TEST_CASE("io_context::run returns while a closed MemoryBackend lives") {
  asio::io_context io;
  corocache::MemoryBackend backend{io.get_executor(), {.sweep_interval = 10ms}};
  std::optional<std::string> got;
  corocache::StoreParams params;
  params.ttl = 1min;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await backend.set("k", "v", params);
        got = co_await backend.get("k");
      },
      asio::detached);
  backend.close();
  backend.close();  // idempotent
  // Without close() the sweep keeps the io_context busy and run_for returns only at its
  // limit, not stopped.
  io.run_for(10s);
  CHECK(io.stopped());
  CHECK(got == std::optional<std::string>("v"));
}

// --- testing::ManualClock: a MemoryBackend whose time moves only when the test says so ----

namespace {

using corocache::Duration;
using corocache::MemoryBackend;
using corocache::StoreParams;
using corocache::testing::ManualClock;

StoreParams ttl_params(Duration ttl, std::uint32_t max_reads = 0) {
  StoreParams p;
  p.ttl = ttl;
  p.max_reads = max_reads;
  return p;
}

// Two starting points, one at steady_clock's epoch and one ~200 years after it: whatever
// the real steady_clock reads, a backend that took any of these decisions from it instead
// of the manual clock gets one of them wrong.
const ManualClock::time_point clock_starts[] = {
    ManualClock::time_point{}, ManualClock::time_point{} + std::chrono::hours(24 * 365 * 200)};

}  // namespace

TEST_CASE("a value on a manual clock expires at exactly its ttl, with no sleep") {
  for (const auto start : clock_starts) {
    const ManualClock clock(start);
    corocache::testing::run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
      MemoryBackend mem = corocache::testing::memory_backend(ex, clock);
      const StoreParams params = ttl_params(1h);
      co_await mem.set("k", "v", params);
      clock.advance(1h - 1ns);
      const auto before = co_await mem.get("k");
      CHECK(before == std::optional<std::string>("v"));
      clock.advance(1ns);
      const auto at_ttl = co_await mem.get("k");
      CHECK_FALSE(at_ttl);
      CHECK(mem.stats().expirations == 1);
    });
  }
}

TEST_CASE("expire() on a manual clock moves the deadline from the clock's now") {
  const ManualClock clock;
  corocache::testing::run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem = corocache::testing::memory_backend(ex, clock);
    const StoreParams params = ttl_params(10s);
    co_await mem.set("k", "v", params);
    clock.advance(8s);
    const bool moved = co_await mem.expire("k", 5s);
    CHECK(moved);
    clock.advance(4s);  // 12 s after the store, 4 s after expire(5s)
    const auto alive = co_await mem.get("k");
    CHECK(alive == std::optional<std::string>("v"));
    clock.advance(1s);
    const auto gone = co_await mem.get("k");
    CHECK_FALSE(gone);
  });
}

TEST_CASE("a lock's ttl on a manual clock lets another owner in once it has passed") {
  for (const auto start : clock_starts) {
    const ManualClock clock(start);
    corocache::testing::run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
      MemoryBackend mem = corocache::testing::memory_backend(ex, clock);
      const bool a = co_await mem.try_lock("lk", "owner-a", 30s);
      CHECK(a);
      clock.advance(30s - 1ms);
      const bool b_early = co_await mem.try_lock("lk", "owner-b", 30s);
      CHECK_FALSE(b_early);
      clock.advance(1ms);
      const bool b = co_await mem.try_lock("lk", "owner-b", 30s);
      CHECK(b);
      const bool a_unlocked = co_await mem.unlock("lk", "owner-a");
      CHECK_FALSE(a_unlocked);  // a's lock is gone: b holds it
      const bool b_unlocked = co_await mem.unlock("lk", "owner-b");
      CHECK(b_unlocked);
    });
  }
}

TEST_CASE("a read-limited value on a manual clock counts reads, not time") {
  const ManualClock clock;
  corocache::testing::run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem = corocache::testing::memory_backend(ex, clock);
    const StoreParams params = ttl_params(24h, 2);
    co_await mem.set("once", "t", params);
    clock.advance(23h);
    const auto first = co_await mem.get("once");
    CHECK(first == std::optional<std::string>("t"));
    clock.advance(59min);
    const auto second = co_await mem.get("once");
    CHECK(second == std::optional<std::string>("t"));
    const auto third = co_await mem.get("once");
    CHECK_FALSE(third);  // two reads used it up, an hour before its ttl
    CHECK(mem.stats().expirations == 0);
  });
}

TEST_CASE("sweep_now reclaims what expired on a manual clock, in stats and capacity") {
  for (const auto start : clock_starts) {
    const ManualClock clock(start);
    corocache::testing::run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
      MemoryBackend mem = corocache::testing::memory_backend(
          ex, clock, {.max_entries = 4, .when_full = corocache::WhenFull::reject, .shards = 1});
      const StoreParams short_ttl = ttl_params(1s);
      const StoreParams long_ttl = ttl_params(1h);
      co_await mem.set("a", "1", short_ttl);
      co_await mem.set("b", "2", short_ttl);
      co_await mem.set("c", "3", long_ttl);
      co_await mem.set("d", "4", long_ttl);
      const bool locked = co_await mem.try_lock("lk", "me", 1s);
      CHECK(locked);
      const std::size_t bytes_before = mem.stats().bytes;

      clock.advance(1s);
      mem.sweep_now();
      const corocache::MemoryStats after = mem.stats();
      CHECK(after.entries == 2);
      CHECK(after.expirations == 2);
      CHECK(after.locks == 0);
      CHECK(after.bytes == bytes_before / 2);  // the four entries charged the same
      // Nothing else reclaims on a manual clock: no background sweep, nothing touched.
      clock.advance(1h);
      CHECK(mem.stats().entries == 2);
      // The reclaimed room takes new values in reject mode, with nothing evicted.
      mem.sweep_now();
      co_await mem.set("e", "5", long_ttl);
      co_await mem.set("f", "6", long_ttl);
      co_await mem.set("g", "7", long_ttl);
      co_await mem.set("h", "8", long_ttl);
      const corocache::MemoryStats full = mem.stats();
      CHECK(full.entries == 4);
      CHECK(full.evictions == 0);
      CHECK(full.rejections == 0);
      CHECK(full.expirations == 4);
    });
  }
}

TEST_CASE("a backend on a manual clock runs no background sweep: io_context::run returns") {
  const ManualClock clock;
  asio::io_context io;
  MemoryBackend mem = corocache::testing::memory_backend(io.get_executor(), clock, {.sweep_interval = 1ms});
  bool stored = false;
  const StoreParams params = ttl_params(1s);
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { stored = co_await mem.set("k", "v", params); }, asio::detached);
  io.run_for(10s);  // returns at once when nothing is left to run
  CHECK(io.stopped());
  CHECK(stored);
}

TEST_CASE("a pop parked on a manual clock waits until the clock passes its wait") {
  const ManualClock clock;
  asio::io_context io;
  MemoryBackend mem = corocache::testing::memory_backend(io.get_executor(), clock);
  int finished = 0;
  std::optional<std::string> first = "<unset>";
  std::optional<std::string> second = "<unset>";
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        first = co_await mem.pop("q", 10s);
        ++finished;
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        second = co_await mem.pop("q", 60s);
        ++finished;
      },
      asio::detached);
  io.poll();
  CHECK(mem.stats().waiting_pops == 2);
  clock.advance(10s - 1ms);
  io.poll();
  CHECK(finished == 0);
  clock.advance(1ms);  // the first pop's wait has passed: it ends empty
  io.poll();
  CHECK(finished == 1);
  CHECK(first == std::nullopt);
  CHECK(mem.stats().waiting_pops == 1);
  asio::co_spawn(io, mem.push("q", "x"), asio::detached);  // the second still takes a push
  io.poll();
  CHECK(finished == 2);
  CHECK(second == std::optional<std::string>("x"));
  CHECK(mem.stats().waiting_pops == 0);
}

TEST_CASE("ManualClock is shared by its copies and never moves backwards") {
  const ManualClock clock;
  const ManualClock copy = clock;
  clock.advance(5s);
  CHECK(copy.now() == ManualClock::time_point{} + 5s);
  CHECK_THROWS_AS(copy.advance(-1ms), std::invalid_argument);
  CHECK(clock.now() == ManualClock::time_point{} + 5s);
  const std::shared_ptr<corocache::MemoryClock> as_option = clock;
  CHECK(as_option->now() == clock.now());
}

TEST_CASE("no decision of a backend on a manual clock comes from the real clock") {
  // The same script from both starting points: a path that compared a deadline with the
  // real steady_clock would see "k" alive (or dead) at the wrong moment from one of them.
  for (const auto start : clock_starts) {
    const ManualClock clock(start);
    corocache::testing::run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
      MemoryBackend mem = corocache::testing::memory_backend(ex, clock);
      StoreParams indexed = ttl_params(1h);
      indexed.index_keys.emplace_back("ix");
      std::vector<corocache::BatchOp> batch;
      batch.emplace_back(corocache::batch_op::Store{"k", "v", indexed});
      batch.emplace_back(corocache::batch_op::Store{"p:1", "v", indexed});
      co_await mem.commit(std::move(batch));
      clock.advance(1h - 1ms);
      const auto listed = co_await mem.index_members("ix");
      CHECK(listed.size() == 2);
      const corocache::EntryPredicate none = [](std::string_view, std::string_view) { return false; };
      const std::size_t kept = co_await mem.erase_if("p:", none, -1);
      CHECK(kept == 0);
      clock.advance(1ms);
      const auto after = co_await mem.index_members("ix");
      CHECK(after.empty());
      const bool erased = co_await mem.erase("k");
      CHECK_FALSE(erased);  // expired, not live
      const std::size_t by_prefix = co_await mem.erase_prefix("p:");
      CHECK(by_prefix == 0);
      CHECK(mem.stats().entries == 0);
    });
  }
}

TEST_CASE("a manual clock may be advanced on another thread while its backend is in use") {
  const ManualClock clock;
  asio::io_context io;
  MemoryBackend mem = corocache::testing::memory_backend(io.get_executor(), clock);
  std::optional<std::string> popped = "<unset>";
  bool pop_done = false;
  const StoreParams params = ttl_params(2s);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await mem.set("k", "v", params);
        popped = co_await mem.pop("q", 500ms);
        pop_done = true;
      },
      asio::detached);
  io.poll();
  REQUIRE(mem.stats().waiting_pops == 1);
  std::thread advancer([&] {
    for (int i = 0; i < 1000; ++i) clock.advance(1ms);
  });
  std::size_t hits = 0;
  for (int i = 0; i < 1000; ++i) {
    hits += mem.get_now("k") ? 1 : 0;
    mem.sweep_now();
  }
  advancer.join();
  // The advancer ended the pop (its wait passed at 500 ms) by posting its completion here.
  io.poll();
  CHECK(pop_done);
  CHECK(popped == std::nullopt);
  CHECK(hits == 1000);  // the value lives 2 s; the clock only reached 1 s
  CHECK(clock.now() == ManualClock::time_point{} + 1s);
  clock.advance(1s);
  CHECK_FALSE(mem.get_now("k"));
}

// README: on a manual clock, a waiting pop's wait is on that clock, its call deadline on the
// real one. A deadline shorter than the wait must end the pop in real time.
TEST_CASE("a pop on a manual clock ends at its call's real deadline, and its wait on the clock") {
  const ManualClock clock;
  corocache::testing::run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        MemoryBackend mem = corocache::testing::memory_backend(ex, clock);
        bool timed_out = false;
        try {
          const auto popped = co_await mem.pop("q", 200ms, corocache::Deadline::after(100ms));
          static_cast<void>(popped);
        } catch (const boost::system::system_error& e) {
          timed_out = e.code() == corocache::errc::timeout;
        }
        CHECK(timed_out);  // the clock never moved: only the real deadline ended it
        CHECK(mem.stats().waiting_pops == 0);

        // A deadline later than the wait: the wait ends when the clock passes it, with
        // nullopt, not a timeout.
        asio::co_spawn(
            ex,
            [&clock]() -> asio::awaitable<void> {
              asio::steady_timer soon(co_await asio::this_coro::executor, 20ms);
              co_await soon.async_wait(asio::use_awaitable);
              clock.advance(200ms);
            },
            asio::detached);
        const auto empty = co_await mem.pop("q", 200ms, corocache::Deadline::after(10s));
        CHECK(empty == std::nullopt);
      },
      std::chrono::seconds(5));
}

/// A memory cache in reject mode that holds `max_entries` entries, and a memoized doubling
/// that counts its runs.
struct RejectingCache {
  RejectingCache(asio::any_io_executor ex, std::size_t max_entries)
      : cache(MemoryBackend(std::move(ex), corocache::MemoryOptions{.max_entries = max_entries,
                                                                    .when_full = corocache::WhenFull::reject,
                                                                    .shards = 1}),
              corocache::CacheOptions{.prefix = "full"}),
        twice(cache.func_cache("twice", [runs = runs](int x) -> asio::awaitable<int> {
          ++*runs;
          co_return 2 * x;
        })) {}
  corocache::Cache<MemoryBackend> cache;
  std::shared_ptr<int> runs = std::make_shared<int>(0);
  corocache::Memoized<MemoryBackend, int(int)> twice;
};

// A clear writes a token first (detail/clear_token.hpp). A full memory backend that refuses
// writes has no room for it: the clear must still erase the results, for a batch's clear and
// a direct one alike.
TEST_CASE("a cache_clear on a full memory backend that refuses writes still clears") {
  corocache::testing::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    RejectingCache full(ex, 2);
    auto& cache = full.cache;
    auto& runs = full.runs;
    auto& twice = full.twice;
    auto acme = cache.tenant("acme");
    const int first = co_await twice(acme, 21);  // one entry
    CHECK(first == 42);
    co_await acme.set_key("other", "v");  // two: full, no room for a token
    auto batch = acme.batch();
    batch.cache_clear(twice);
    batch.push_to_queue("q", "after");
    CHECK(batch.size() == 2);
    co_await batch.commit();
    const auto queued = co_await acme.pop_from_queue("q");
    CHECK(queued == std::optional<std::string>("after"));
    const int recomputed = co_await twice(acme, 21);  // the batch erased the result
    CHECK(recomputed == 42);
    CHECK(*runs == 2);
    const std::size_t cleared = co_await twice.cache_clear(acme);  // full again: no token either
    CHECK(cleared == 1);
    CHECK(cache.backend().stats().rejections >= 2);  // both tokens were refused
  });
}

// The function ran and returned: a store that finds no room must not turn its result into
// an error. The result is returned, uncached, to the caller and to the callers joined to it.
TEST_CASE("a memoized call returns its result when a full backend refuses to store it") {
  corocache::testing::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    RejectingCache full(ex, 1);
    auto& cache = full.cache;
    auto& runs = full.runs;
    auto& twice = full.twice;
    auto acme = cache.tenant("acme");
    co_await acme.set_key("filler", "v");  // full
    const int first = co_await twice(acme, 21);
    CHECK(first == 42);
    const int second = co_await twice(acme, 21);  // not cached: computed again
    CHECK(second == 42);
    CHECK(*runs == 2);
    CHECK(cache.backend().stats().rejections >= 2);
    co_await acme.delete_key("filler");  // room again: the next result is cached
    const int third = co_await twice(acme, 21);
    const int fourth = co_await twice(acme, 21);
    CHECK(third == 42);
    CHECK(fourth == 42);
    CHECK(*runs == 3);
  });
}

}  // namespace testing_test
