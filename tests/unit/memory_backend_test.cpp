// MemoryBackend's behaviour, operation by operation, on one thread: expiry, the sweep,
// capacity and eviction, read limits, indices, queues, locks, bulk operations, lifetime.

#include "memory_test_support.hpp"
#include "support/run.hpp"

#include <corocache/errors.hpp>
#include <corocache/memory/backend.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <vector>

namespace memory_backend_test {

using namespace std::chrono_literals;
using corocache::MemoryBackend;
using corocache::MemoryOptions;
using corocache::StoreParams;
using corocache::test::long_ttl;
using corocache::test::run;
using corocache::test::sleep_for;
using corocache::test::ttl;
namespace asio = boost::asio;

namespace {

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// Variadic helpers instead of braced lists: g++ 12 rejects an initializer_list temporary
// inside a co_await expression.
template <class... S>
StoreParams indexed(S... index_keys) {
  StoreParams p = long_ttl();
  (p.index_keys.emplace_back(index_keys), ...);
  return p;
}

template <class... S>
std::vector<std::string> strings(S... s) {
  std::vector<std::string> v;
  (v.emplace_back(s), ...);
  return v;
}

bool is_capacity_error(const boost::system::system_error& e) {
  return e.code() == corocache::errc::capacity_exceeded;
}

/// True when committing `ops` fails with capacity_exceeded.
asio::awaitable<bool> commit_refused(MemoryBackend& mem, std::vector<corocache::BatchOp> ops) {
  try {
    co_await mem.commit(std::move(ops));
  } catch (const boost::system::system_error& e) {
    co_return is_capacity_error(e);
  }
  co_return false;
}

}  // namespace

TEST_CASE("a stored value is returned until it is erased") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex);
    CO_CHECK(co_await mem.set("k", "v", long_ttl()));
    CO_CHECK(co_await mem.get("k") == std::optional<std::string>("v"));
    CO_CHECK(co_await mem.set("k", "v2", long_ttl()));
    CO_CHECK(co_await mem.get("k") == std::optional<std::string>("v2"));
    CO_CHECK(co_await mem.erase("k"));
    CO_CHECK(!(co_await mem.erase("k")));
    CO_CHECK(co_await mem.get("k") == std::nullopt);
    CHECK(mem.stats().entries == 0);
    CHECK(mem.stats().bytes == 0);
  });
}

TEST_CASE("nx stores only when no live value exists") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex);
    StoreParams nx = ttl(50ms);
    nx.nx = true;
    CO_CHECK(co_await mem.set("k", "first", nx));
    CO_CHECK(!(co_await mem.set("k", "second", nx)));
    CO_CHECK(co_await mem.get("k") == std::optional<std::string>("first"));
    co_await sleep_for(150ms);
    CO_CHECK(co_await mem.set("k", "third", nx));  // the old value expired
    CO_CHECK(co_await mem.get("k") == std::optional<std::string>("third"));
  });
}

TEST_CASE("an expired value is never returned, refreshed or erased as live") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex, MemoryOptions{.sweep_interval = 0ms});
    co_await mem.set("a", "1", ttl(50ms));
    co_await mem.set("b", "2", ttl(50ms));
    co_await mem.set("c", "3", ttl(50ms));
    co_await sleep_for(150ms);
    CO_CHECK(co_await mem.get("a") == std::nullopt);
    CO_CHECK(!(co_await mem.expire("b", 1h)));
    CO_CHECK(!(co_await mem.erase("c")));
    CHECK(mem.stats().entries == 0);
    CHECK(mem.stats().expirations == 3);
  });
}

TEST_CASE("expire gives a live value a new ttl from now") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex);
    co_await mem.set("short", "v", ttl(50ms));
    co_await mem.set("long", "v", long_ttl());
    CO_CHECK(co_await mem.expire("short", 1h));
    CO_CHECK(co_await mem.expire("long", 50ms));
    CO_CHECK(!(co_await mem.expire("missing", 1h)));
    co_await sleep_for(150ms);
    CO_CHECK(co_await mem.get("short") == std::optional<std::string>("v"));
    CO_CHECK(co_await mem.get("long") == std::nullopt);
  });
}

TEST_CASE("the sweep reclaims expired values nobody reads again") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex, MemoryOptions{.sweep_interval = 20ms});
    for (int i = 0; i < 5000; ++i) co_await mem.set("dead:" + std::to_string(i), "value", ttl(50ms));
    co_await mem.set("alive", "value", long_ttl());
    CHECK(mem.stats().entries == 5001);
    co_await sleep_for(500ms);  // expiry + several sweep ticks (a full pass takes <= 8)
    const auto stats = mem.stats();
    CHECK(stats.entries == 1);
    CHECK(stats.expirations == 5000);
    CO_CHECK(co_await mem.get("alive") == std::optional<std::string>("value"));
  });
}

TEST_CASE("without a sweep, dead values stay until touched") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex, MemoryOptions{.sweep_interval = 0ms});
    co_await mem.set("dead", "value", ttl(20ms));
    co_await sleep_for(100ms);
    CHECK(mem.stats().entries == 1);  // the control for the sweep test above
    CO_CHECK(co_await mem.get("dead") == std::nullopt);
    CHECK(mem.stats().entries == 0);
  });
}

TEST_CASE("expired locks are swept too") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex, MemoryOptions{.sweep_interval = 20ms});
    for (int i = 0; i < 100; ++i) CO_CHECK(co_await mem.try_lock("lock:" + std::to_string(i), "t", 50ms));
    CHECK(mem.stats().locks == 100);
    co_await sleep_for(300ms);
    CHECK(mem.stats().locks == 0);
  });
}

TEST_CASE("a full backend evicts to stay within max_entries") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex, MemoryOptions{.max_entries = 100, .shards = 1});
    for (int i = 0; i < 1000; ++i) {
      CO_CHECK(co_await mem.set("k" + std::to_string(i), "v", long_ttl()));
      REQUIRE(mem.stats().entries <= 100);
    }
    const auto stats = mem.stats();
    CHECK(stats.entries == 100);
    CHECK(stats.evictions == 900);
    CO_CHECK(co_await mem.get("k999") == std::optional<std::string>("v"));  // the newest stays
  });
}

TEST_CASE("a full backend keeps its frequently read values") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex, MemoryOptions{.max_entries = 100, .shards = 1});
    for (int i = 0; i < 20; ++i) co_await mem.set("hot" + std::to_string(i), "v", long_ttl());
    for (int round = 0; round < 2; ++round) {
      for (int i = 0; i < 20; ++i) co_await mem.get("hot" + std::to_string(i));
    }
    for (int i = 0; i < 1000; ++i) co_await mem.set("scan" + std::to_string(i), "v", long_ttl());
    for (int i = 0; i < 20; ++i)
      CO_CHECK(co_await mem.get("hot" + std::to_string(i)) == std::optional<std::string>("v"));
  });
}

TEST_CASE("a full backend in reject mode throws and evicts nothing") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(
        ex, MemoryOptions{.max_entries = 10, .when_full = corocache::WhenFull::reject, .shards = 1});
    for (int i = 0; i < 10; ++i) co_await mem.set("k" + std::to_string(i), "v", long_ttl());
    bool rejected = false;
    try {
      co_await mem.set("one-too-many", "v", long_ttl());
    } catch (const boost::system::system_error& e) {
      rejected = is_capacity_error(e);
    }
    CHECK(rejected);
    const auto stats = mem.stats();
    CHECK(stats.entries == 10);
    CHECK(stats.evictions == 0);
    CHECK(stats.rejections == 1);
    CO_CHECK(co_await mem.get("one-too-many") == std::nullopt);
    CO_CHECK(co_await mem.set("k3", "replaced", long_ttl()));  // overwriting needs no new entry
    CO_CHECK(co_await mem.get("k3") == std::optional<std::string>("replaced"));
  });
}

TEST_CASE("expired values make room before any live value is evicted") {
  for (const auto when_full : {corocache::WhenFull::evict, corocache::WhenFull::reject}) {
    run([when_full](asio::any_io_executor ex) -> asio::awaitable<void> {
      MemoryBackend mem(
          ex, MemoryOptions{.max_entries = 100, .when_full = when_full, .sweep_interval = 0ms, .shards = 1});
      for (int i = 0; i < 50; ++i) co_await mem.set("dying" + std::to_string(i), "v", ttl(50ms));
      for (int i = 0; i < 50; ++i) co_await mem.set("live" + std::to_string(i), "v", long_ttl());
      co_await sleep_for(150ms);
      for (int i = 0; i < 50; ++i) co_await mem.set("new" + std::to_string(i), "v", long_ttl());
      const auto stats = mem.stats();
      CHECK(stats.evictions == 0);
      CHECK(stats.expirations == 50);
      CHECK(stats.entries == 100);
      for (int i = 0; i < 50; ++i)
        CO_CHECK(co_await mem.get("live" + std::to_string(i)) == std::optional<std::string>("v"));
    });
  }
}

TEST_CASE("a max_bytes smaller than the shard count still bounds every shard") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex, MemoryOptions{.max_bytes = 3, .shards = 4});
    int refused = 0;
    for (int i = 0; i < 20; ++i) {
      std::string key = "k" + std::to_string(i);
      std::string value(1000, 'x');
      try {
        co_await mem.set(std::move(key), std::move(value), long_ttl());
      } catch (const boost::system::system_error& e) {
        if (is_capacity_error(e)) ++refused;
      }
    }
    CHECK(refused == 20);
    CHECK(mem.stats().bytes <= 3);
  });
}

TEST_CASE("max_bytes bounds key + value + overhead bytes") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    const std::size_t per_entry = corocache::detail::memory::charge_of("k0000", std::string(100, 'x'));
    MemoryBackend mem(ex, MemoryOptions{.max_bytes = per_entry * 20, .shards = 1});
    for (int i = 0; i < 1000; ++i) {
      char key[16];  // room for any int: g++ -O2 checks the format against the buffer
      std::snprintf(key, sizeof key, "k%04d", i);
      co_await mem.set(key, std::string(100, 'x'), long_ttl());
      REQUIRE(mem.stats().bytes <= per_entry * 20);
    }
    CHECK(mem.stats().entries == 20);
    bool rejected = false;
    try {
      co_await mem.set("huge", std::string(per_entry * 21, 'x'), long_ttl());
    } catch (const boost::system::system_error& e) {
      rejected = is_capacity_error(e);
    }
    CHECK(rejected);  // bigger than the whole budget: refused even in evict mode
    CHECK(mem.stats().entries == 20);
  });
}

TEST_CASE("a read-limited key disappears after its last read") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex);
    StoreParams p = indexed("idx");
    p.max_reads = 3;
    co_await mem.set("k", "v", p);
    CO_CHECK(co_await mem.get("k") == std::optional<std::string>("v"));
    CO_CHECK(co_await mem.get("k") == std::optional<std::string>("v"));
    CO_CHECK(co_await mem.index_members("idx") == strings("k"));
    CO_CHECK(co_await mem.get("k") == std::optional<std::string>("v"));
    CO_CHECK(co_await mem.get("k") == std::nullopt);
    CO_CHECK((co_await mem.index_members("idx")).empty());
    CHECK(mem.stats().index_sets == 0);  // membership dropped eagerly
    CHECK(mem.stats().entries == 0);
  });
}

TEST_CASE("a store replaces the key's index memberships") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex);
    co_await mem.set("k1", "v", indexed("a", "b"));
    co_await mem.set("k2", "v", indexed("a"));
    CO_CHECK(sorted(co_await mem.index_members("a")) == strings("k1", "k2"));
    CO_CHECK(co_await mem.index_members("b") == strings("k1"));
    co_await mem.set("k1", "v", indexed("b"));
    CO_CHECK(co_await mem.index_members("a") == strings("k2"));
    CO_CHECK(co_await mem.index_members("b") == strings("k1"));
    co_await mem.set("k1", "v", long_ttl());
    CO_CHECK((co_await mem.index_members("b")).empty());
    CO_CHECK(co_await mem.erase("k2"));
    CO_CHECK((co_await mem.index_members("a")).empty());
    CHECK(mem.stats().index_sets == 0);
  });
}

TEST_CASE("expired and evicted values leave their indices") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex, MemoryOptions{.max_entries = 10, .sweep_interval = 20ms, .shards = 1});
    StoreParams dying = ttl(50ms);
    dying.index_keys.emplace_back("idx");
    co_await mem.set("dying", "v", dying);
    co_await mem.set("kept", "v", indexed("idx"));
    CO_CHECK(sorted(co_await mem.index_members("idx")) == strings("dying", "kept"));
    co_await sleep_for(200ms);
    CO_CHECK(co_await mem.index_members("idx") == strings("kept"));
    for (int i = 0; i < 100; ++i) co_await mem.set("filler" + std::to_string(i), "v", long_ttl());
    CO_CHECK((co_await mem.index_members("idx")).empty());  // "kept" was evicted
    CHECK(mem.stats().index_sets == 0);
  });
}

TEST_CASE("erase_index removes the live members and the index") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex);
    co_await mem.set("k1", "v", indexed("a", "b"));
    co_await mem.set("k2", "v", indexed("a"));
    co_await mem.set("k3", "v", indexed("b"));
    CO_CHECK(co_await mem.erase_index("a") == 2);
    CO_CHECK(co_await mem.get("k1") == std::nullopt);
    CO_CHECK(co_await mem.get("k2") == std::nullopt);
    CO_CHECK(co_await mem.index_members("b") == strings("k3"));
    CO_CHECK(co_await mem.erase_index("a") == 0);
  });
}

TEST_CASE("a queue is first in, first out, and disappears when empty") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex);
    co_await mem.push("q", "1");
    co_await mem.push("q", "2");
    co_await mem.push("q", "3");
    CHECK(mem.stats().queued_values == 3);
    CO_CHECK(co_await mem.pop("q", 0ms) == std::optional<std::string>("1"));
    CO_CHECK(co_await mem.pop("q", 0ms) == std::optional<std::string>("2"));
    CO_CHECK(co_await mem.pop("q", 0ms) == std::optional<std::string>("3"));
    CO_CHECK(co_await mem.pop("q", 0ms) == std::nullopt);
    CHECK(mem.stats().queues == 0);
  });
}

TEST_CASE("a waiting pop receives a later push") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex);
    std::optional<std::string> got;
    bool finished = false;
    asio::co_spawn(
        ex, [&]() -> asio::awaitable<void> { got = co_await mem.pop("q", 10s); },
        [&](std::exception_ptr) { finished = true; });
    co_await sleep_for(50ms);
    CHECK(mem.stats().waiting_pops == 1);
    co_await mem.push("q", "hello");
    for (int i = 0; i < 100 && !finished; ++i) co_await sleep_for(5ms);
    REQUIRE(finished);
    CHECK(got == std::optional<std::string>("hello"));
    CHECK(mem.stats().waiting_pops == 0);
    CHECK(mem.stats().queued_values == 0);
  });
}

TEST_CASE("a waiting pop gives up after its wait") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex);
    const auto start = std::chrono::steady_clock::now();
    CO_CHECK(co_await mem.pop("q", 50ms) == std::nullopt);
    CHECK(std::chrono::steady_clock::now() - start >= 45ms);
    const auto stats = mem.stats();
    CHECK(stats.waiting_pops == 0);
    CHECK(stats.queues == 0);
    co_await mem.push("q", "later");  // no waiter left to swallow it
    CO_CHECK(co_await mem.pop("q", 0ms) == std::optional<std::string>("later"));
  });
}

TEST_CASE("waiting pops are served oldest first, one value each") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex);
    std::vector<std::string> got(3);
    int finished = 0;
    for (int i = 0; i < 3; ++i) {
      asio::co_spawn(
          ex, [&, i]() -> asio::awaitable<void> { got[i] = (co_await mem.pop("q", 10s)).value_or("none"); },
          [&](std::exception_ptr) { ++finished; });
      co_await sleep_for(10ms);
    }
    co_await mem.push("q", "a");
    co_await mem.push("q", "b");
    co_await mem.push("q", "c");
    for (int i = 0; i < 100 && finished < 3; ++i) co_await sleep_for(5ms);
    REQUIRE(finished == 3);
    CHECK(got == strings("a", "b", "c"));
  });
}

TEST_CASE("a waiting pop can be cancelled and then takes no value") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    MemoryBackend mem(ex);
    const auto start = std::chrono::steady_clock::now();
    auto raced = co_await (mem.pop("q", 10s) || sleep_for(50ms));
    CHECK(raced.index() == 1);  // the sleep won; the pop was cancelled
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    CHECK(mem.stats().waiting_pops == 0);
    co_await mem.push("q", "kept");
    CO_CHECK(co_await mem.pop("q", 0ms) == std::optional<std::string>("kept"));
  });
}

TEST_CASE("a waiting pop fails with shut_down when the backend is destroyed") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    std::optional<MemoryBackend> mem(std::in_place, ex);
    bool shut_down = false;
    bool finished = false;
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          try {
            co_await mem->pop("q", 10s);
          } catch (const boost::system::system_error& e) {
            shut_down = e.code() == corocache::errc::shut_down;
          }
        },
        [&](std::exception_ptr) { finished = true; });
    co_await sleep_for(20ms);
    mem.reset();
    for (int i = 0; i < 100 && !finished; ++i) co_await sleep_for(5ms);
    CHECK(finished);
    CHECK(shut_down);
  });
}

TEST_CASE("destroying the backend ends its sweep") {
  asio::io_context io;
  { MemoryBackend mem(io.get_executor(), MemoryOptions{.sweep_interval = 60s}); }
  io.run_for(10s);
  CHECK(io.stopped());  // ran out of work: the sweep's timer is gone
}

TEST_CASE("a lock is taken once, expires, and is released only by its holder") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex);
    CO_CHECK(co_await mem.try_lock("l", "alice", 50ms));
    CO_CHECK(!(co_await mem.try_lock("l", "bob", 1h)));
    CO_CHECK(!(co_await mem.unlock("l", "bob")));
    co_await sleep_for(150ms);
    CO_CHECK(co_await mem.try_lock("l", "bob", 1h));
    CO_CHECK(!(co_await mem.unlock("l", "alice")));  // expired, now bob's
    CO_CHECK(co_await mem.unlock("l", "bob"));
    CO_CHECK(!(co_await mem.unlock("l", "bob")));
    CO_CHECK(co_await mem.try_lock("l", "carol", 1h));
  });
}

TEST_CASE("locks, queues and index sets are neither counted nor evicted") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex, MemoryOptions{.max_entries = 5, .shards = 1});
    CO_CHECK(co_await mem.try_lock("lock", "t", 1h));
    co_await mem.push("queue", "m");
    for (int i = 0; i < 50; ++i) co_await mem.set("k" + std::to_string(i), "v", long_ttl());
    CHECK(mem.stats().entries == 5);
    CO_CHECK(!(co_await mem.try_lock("lock", "other", 1h)));
    CO_CHECK(co_await mem.pop("queue", 0ms) == std::optional<std::string>("m"));
  });
}

TEST_CASE("erase_prefix removes every kind of key under the prefix and nothing else") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex);
    co_await mem.set("p:v1", "v", indexed("p:i"));
    co_await mem.set("p:v2", "v", indexed("o:i"));
    co_await mem.set("o:v", "v", indexed("o:i"));
    co_await mem.try_lock("p:l", "t", 1h);
    co_await mem.push("p:q", "m");
    co_await mem.push("o:q", "m");
    // p:v1, p:v2, p:l, p:q (p:i went with its only member)
    CO_CHECK(co_await mem.erase_prefix("p:") == 4);
    CO_CHECK(co_await mem.get("p:v1") == std::nullopt);
    CO_CHECK(co_await mem.get("o:v") == std::optional<std::string>("v"));
    CO_CHECK(co_await mem.index_members("o:i") == strings("o:v"));
    CO_CHECK((co_await mem.index_members("p:i")).empty());
    CO_CHECK(co_await mem.try_lock("p:l", "other", 1h));
    CO_CHECK(co_await mem.pop("p:q", 0ms) == std::nullopt);
    CO_CHECK(co_await mem.pop("o:q", 0ms) == std::optional<std::string>("m"));
  });
}

TEST_CASE("erase_if removes what the predicate accepts, up to the limit, without consuming reads") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex);
    StoreParams once = long_ttl();
    once.max_reads = 1;
    for (int i = 0; i < 10; ++i)
      co_await mem.set("p:" + std::to_string(i), std::string(i % 2 == 1 ? "odd" : "even"), once);
    co_await mem.set("other", "odd", long_ttl());
    std::vector<std::string> seen;
    const auto odd = [&](std::string_view key, std::string_view value) {
      seen.emplace_back(key);
      return value == "odd";
    };
    CO_CHECK(co_await mem.erase_if("p:", odd, 2) == 2);
    CO_CHECK(co_await mem.erase_if("p:", odd, -1) == 3);
    CHECK(std::none_of(seen.begin(), seen.end(), [](const std::string& k) { return k == "other"; }));
    CO_CHECK(co_await mem.erase_if("p:", odd, -1) == 0);
    CHECK(mem.stats().entries == 6);
    for (int i = 0; i < 10; i += 2)
      CO_CHECK(co_await mem.get("p:" + std::to_string(i)) == std::optional<std::string>("even"));
  });
}

TEST_CASE("commit applies its operations in order") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex);
    co_await mem.set("gone", "v", long_ttl());
    std::vector<corocache::BatchOp> ops;
    ops.emplace_back(corocache::batch_op::Store{"a", "1", indexed("idx")});
    ops.emplace_back(corocache::batch_op::Store{"a", "2", long_ttl()});
    ops.emplace_back(corocache::batch_op::Expire{"a", 50ms});
    ops.emplace_back(corocache::batch_op::Erase{"gone"});
    ops.emplace_back(corocache::batch_op::Push{"q", "x"});
    ops.emplace_back(corocache::batch_op::Push{"q", "y"});
    co_await mem.commit(std::move(ops));
    CO_CHECK(co_await mem.get("a") == std::optional<std::string>("2"));
    CO_CHECK((co_await mem.index_members("idx")).empty());
    CO_CHECK(co_await mem.get("gone") == std::nullopt);
    CO_CHECK(co_await mem.pop("q", 0ms) == std::optional<std::string>("x"));
    co_await sleep_for(150ms);
    CO_CHECK(co_await mem.get("a") == std::nullopt);
  });
}

// As a failing command inside MULTI/EXEC, and as on Redis at maxmemory
// (redis/backend_values_test.cpp): the refused store fails alone. Until 2026-11-28 the
// memory backend stopped at it (found by a user audit).
TEST_CASE("a full backend in reject mode refuses a batch's store and applies its other operations") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex,
                      MemoryOptions{.max_entries = 4, .when_full = corocache::WhenFull::reject, .shards = 1});
    for (int i = 0; i < 4; ++i) co_await mem.set("k" + std::to_string(i), "v", long_ttl());
    std::vector<corocache::BatchOp> ops;
    ops.emplace_back(corocache::batch_op::Store{"first", "v", long_ttl()});  // full: refused
    ops.emplace_back(corocache::batch_op::Erase{"k3"});
    ops.emplace_back(corocache::batch_op::Store{"k2", "replaced", long_ttl()});
    ops.emplace_back(corocache::batch_op::Store{"second", "v", long_ttl()});  // k3's room
    ops.emplace_back(corocache::batch_op::Push{"q", "x"});
    const bool refused = co_await commit_refused(mem, std::move(ops));
    CHECK(refused);
    CO_CHECK(co_await mem.get("first") == std::nullopt);
    CO_CHECK(co_await mem.get("k3") == std::nullopt);
    CO_CHECK(co_await mem.get("k2") == std::optional<std::string>("replaced"));
    CO_CHECK(co_await mem.get("second") == std::optional<std::string>("v"));
    CO_CHECK(co_await mem.pop("q", 0ms) == std::optional<std::string>("x"));
    CHECK(mem.stats().rejections == 1);
  });
}

TEST_CASE("a batch holding a value larger than its shard's share of max_bytes applies nothing") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex, MemoryOptions{.max_bytes = 64 << 10, .shards = 1});
    co_await mem.set("k5", "keep", long_ttl());
    std::vector<corocache::BatchOp> ops;
    ops.emplace_back(corocache::batch_op::Push{"q", "P"});
    ops.emplace_back(corocache::batch_op::Erase{"k5"});
    ops.emplace_back(corocache::batch_op::Store{"big", std::string(100 << 10, 'x'), long_ttl()});
    ops.emplace_back(corocache::batch_op::Push{"q", "Q"});
    const bool refused = co_await commit_refused(mem, std::move(ops));
    CHECK(refused);
    const auto kept = co_await mem.get("k5");
    const auto head = co_await mem.pop("q", 0ms);
    CHECK(kept == std::optional<std::string>("keep"));
    CHECK(head == std::nullopt);
  });
}

TEST_CASE("a moved backend keeps its data") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend first(ex);
    co_await first.set("k", "v", long_ttl());
    MemoryBackend second(std::move(first));
    CO_CHECK(co_await second.get("k") == std::optional<std::string>("v"));
    MemoryBackend third(ex);
    third = std::move(second);
    CO_CHECK(co_await third.get("k") == std::optional<std::string>("v"));
  });
}

TEST_CASE("the shard count adapts to the limits") {
  using corocache::detail::memory::choose_shard_count;
  CHECK(choose_shard_count(0, 0, 0, 2) == 64);
  CHECK(choose_shard_count(0, 0, 0, 1) == 32);
  CHECK(choose_shard_count(0, 0, 0, 64) == 64);
  CHECK(choose_shard_count(0, 100, 0, 2) == 1);
  CHECK(choose_shard_count(0, 1000, 0, 2) == 8);
  CHECK(choose_shard_count(0, 0, 1 << 20, 2) == 4);
  CHECK(choose_shard_count(3, 0, 0, 2) == 4);
  CHECK(choose_shard_count(16, 5, 0, 2) == 4);
  CHECK(choose_shard_count(4, 0, 3, 2) == 2);  // no shard's share of max_bytes is 0 (unbounded)
  CHECK(choose_shard_count(1024, 0, 1, 2) == 1);
  CHECK(choose_shard_count(std::size_t{1} << 20, 0, 0, 2) == 1024);
}

// --- awaitables and the backend object's lifetime --------------------------------------

TEST_CASE("every operation's awaitable made before the backend is moved completes after the move") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend first{ex};
    const StoreParams in_ix = indexed("ix");
    std::vector<corocache::BatchOp> batch;
    batch.emplace_back(corocache::batch_op::Store{"b1", "1", long_ttl()});
    batch.emplace_back(corocache::batch_op::Store{"b2", "2", long_ttl()});
    const corocache::EntryPredicate any = [](std::string_view, std::string_view) { return true; };
    // Made now, run later: each one is awaited only after `first` was moved from twice.
    auto set_op = first.set("k", "v", in_ix);
    auto get_op = first.get("k");
    auto members_op = first.index_members("ix");
    auto expire_op = first.expire("k", 1h);
    auto push_x = first.push("q", "x");
    auto push_y = first.push("q", "y");
    auto pop_op = first.pop("q", 1s);
    auto lock_op = first.try_lock("lk", "me", 1min);
    auto unlock_op = first.unlock("lk", "me");
    auto commit_op = first.commit(std::move(batch));
    auto erase_if_op = first.erase_if("b1", any, -1);
    auto erase_op = first.erase("b2");
    auto erase_index_op = first.erase_index("ix");
    auto erase_prefix_op = first.erase_prefix("q");

    MemoryBackend second = std::move(first);
    MemoryBackend third{ex};
    third = std::move(second);  // third drops its own state and takes first's

    const bool stored = co_await std::move(set_op);
    CHECK(stored);
    const auto got = co_await std::move(get_op);
    CHECK(got == std::optional<std::string>("v"));
    const auto members = co_await std::move(members_op);
    CHECK(members == strings("k"));
    const bool expired = co_await std::move(expire_op);
    CHECK(expired);
    co_await std::move(push_x);
    co_await std::move(push_y);
    const auto popped = co_await std::move(pop_op);
    CHECK(popped == std::optional<std::string>("x"));
    const bool locked = co_await std::move(lock_op);
    CHECK(locked);
    const bool unlocked = co_await std::move(unlock_op);
    CHECK(unlocked);
    co_await std::move(commit_op);
    CHECK(third.stats().entries == 3);
    const std::size_t erased_if = co_await std::move(erase_if_op);
    CHECK(erased_if == 1);
    const bool erased = co_await std::move(erase_op);
    CHECK(erased);
    const std::size_t erased_index = co_await std::move(erase_index_op);
    CHECK(erased_index == 1);
    const std::size_t erased_prefix = co_await std::move(erase_prefix_op);
    CHECK(erased_prefix == 1);  // "q", still holding "y"
    // All of it happened to the state `third` now owns.
    const corocache::MemoryStats stats = third.stats();
    CHECK(stats.entries == 0);
    CHECK(stats.queued_values == 0);
    CHECK(stats.locks == 0);
    CHECK(stats.hits == 1);
  });
}

TEST_CASE("a pop parked before the backend is moved takes a push made through the new owner") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend first{ex};
    std::optional<std::string> got;
    bool done = false;
    asio::co_spawn(ex, first.pop("q", 10s), [&](std::exception_ptr e, std::optional<std::string> v) {
      CHECK_FALSE(e);
      got = std::move(v);
      done = true;
    });
    const bool parked =
        co_await corocache::test::wait_until([&] { return first.stats().waiting_pops == 1; }, 5s);
    CO_REQUIRE(parked);
    MemoryBackend second = std::move(first);
    co_await second.push("q", "x");
    const bool finished = co_await corocache::test::wait_until([&] { return done; }, 5s);
    CO_REQUIRE(finished);
    CHECK(got == std::optional<std::string>("x"));
  });
}

TEST_CASE("awaitables outlive the backend object: operations complete, a pop throws shut_down") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    std::optional<MemoryBackend> mem(std::in_place, ex);
    const StoreParams params = long_ttl();
    auto set_op = mem->set("k", "v", params);
    auto get_op = mem->get("k");
    auto pop_op = mem->pop("q", 1s);
    mem.reset();
    const bool stored = co_await std::move(set_op);
    CHECK(stored);
    const auto got = co_await std::move(get_op);
    CHECK(got == std::optional<std::string>("v"));
    bool shut_down = false;
    try {
      co_await std::move(pop_op);
    } catch (const boost::system::system_error& e) {
      shut_down = e.code() == corocache::errc::shut_down;
    }
    CHECK(shut_down);
  });
}

}  // namespace memory_backend_test
