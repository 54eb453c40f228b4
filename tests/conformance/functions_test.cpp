// Conformance: memoized functions (func_cache / cache_clear) and batches.

#include "conformance/world.hpp"

#include <corocache/detail/sha256.hpp>

#include <atomic>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>

using namespace corocache;
using namespace corocache::test;

namespace {
/// A memoized function that counts its real runs.
struct PriceLookup {
  std::shared_ptr<std::atomic<int>> runs = std::make_shared<std::atomic<int>>(0);
  asio::awaitable<double> operator()(std::string sku, int qty) const {
    ++*runs;
    co_return static_cast<double>(sku.size()) * qty + 0.5;
  }
};
}  // namespace

TEMPLATE_LIST_TEST_CASE("a memoized function runs once per distinct arguments", "[func_cache]",
                        TestedBackends) {
  World<TestType> w;
  PriceLookup lookup;
  auto price = w.cache.func_cache("price", lookup, FuncCacheOptions{.expire = 2min});
  auto acme = w.cache.tenant("acme");
  CHECK(w.sync(price(acme, "sku-1", 3)) == 15.5);
  CHECK(w.sync(price(acme, std::string("sku-1"), 3)) == 15.5);  // same JSON arguments, same entry
  CHECK(*lookup.runs == 1);
  CHECK(w.sync(price(acme, "sku-1", 4)) == 20.5);
  CHECK(w.sync(price(acme, "sku-22", 3)) == 18.5);
  CHECK(*lookup.runs == 3);
  CHECK(w.sync(price(acme, "sku-1", 4)) == 20.5);
  CHECK(*lookup.runs == 3);
}

TEMPLATE_LIST_TEST_CASE("memoized results are per tenant and cache_clear clears only its scope",
                        "[func_cache][tenancy]", TestedBackends) {
  World<TestType> w;
  PriceLookup lookup;
  auto price = w.cache.func_cache("price", lookup);
  auto other = w.cache.func_cache("other", lookup);
  auto acme = w.cache.tenant("acme");
  auto beta = w.cache.tenant("beta");
  w.sync(price(acme, "a", 1));
  w.sync(price(beta, "a", 1));
  w.sync(other(acme, "a", 1));
  CHECK(*lookup.runs == 3);  // another tenant and another function name do not share results

  CHECK(w.sync(price.cache_clear(acme)) == 1);
  w.sync(price(acme, "a", 1));
  CHECK(*lookup.runs == 4);  // acme recomputes
  w.sync(price(beta, "a", 1));
  w.sync(other(acme, "a", 1));
  CHECK(*lookup.runs == 4);  // beta's result and the other function's stayed
}

namespace {
/// Waits, in steps of 2 ms, until `ready` holds (at most 10 s).
asio::awaitable<void> wait_for(const std::shared_ptr<std::atomic<bool>>& ready) {
  for (int i = 0; i < 5000 && !*ready; ++i) {
    asio::steady_timer step(co_await asio::this_coro::executor, 2ms);
    co_await step.async_wait(asio::use_awaitable);
  }
}
}  // namespace

// The post-commit pattern: the database changes while a computation that read it is still
// running, then the cache is cleared. The computation must not cache what it read before.
TEMPLATE_LIST_TEST_CASE("a computation that a cache_clear overlaps does not cache its result",
                        "[func_cache][clear]", TestedBackends) {
  for (const bool by_batch : {false, true}) {
    CAPTURE(by_batch);
    World<TestType> w;
    auto db = std::make_shared<std::atomic<int>>(1);
    auto runs = std::make_shared<std::atomic<int>>(0);
    // Ordered by flags, not by timing (a TLS link under ASan takes its time): the first
    // computation has read the database before it changes, and ends only after the clear.
    auto has_read = std::make_shared<std::atomic<bool>>(false);
    auto cleared = std::make_shared<std::atomic<bool>>(false);
    auto read = w.cache.func_cache("read", [db, runs, has_read, cleared](int row) -> asio::awaitable<int> {
      ++*runs;
      const int seen = db->load() + row;
      *has_read = true;
      co_await wait_for(cleared);
      co_return seen;
    });
    auto acme = w.cache.tenant("acme");
    std::atomic<int> before_clear{0}, after_clear{0};
    w.run_concurrently(2, [&](int i) -> asio::awaitable<void> {
      if (i == 0) {
        before_clear = co_await read(acme, 0);  // starts the computation that reads 1
        co_return;
      }
      co_await wait_for(has_read);
      *db = 2;  // the database commit, then the clear
      if (by_batch) {
        auto batch = acme.batch();
        batch.cache_clear(read);
        co_await batch.commit();
      } else {
        const std::size_t erased = co_await read.cache_clear(acme);
        static_cast<void>(erased);
      }
      *cleared = true;
      after_clear = co_await read(acme, 0);  // must not join the computation that read 1
    });
    CHECK(before_clear == 1);
    CHECK(after_clear == 2);
    const int later = w.sync(read(acme, 0));
    CHECK(later == 2);  // what the first computation read was not cached
    CHECK(*runs == 2);
  }
}

TEMPLATE_LIST_TEST_CASE("a memoized result expires", "[func_cache][expiry]", TestedBackends) {
  World<TestType> w;
  PriceLookup lookup;
  auto price = w.cache.func_cache("price", lookup, FuncCacheOptions{.expire = 100ms});
  auto acme = w.cache.tenant("acme");
  w.sync(price(acme, "a", 1));
  w.sync(price(acme, "a", 1));
  CHECK(*lookup.runs == 1);
  w.sleep(250ms);
  w.sync(price(acme, "a", 1));
  CHECK(*lookup.runs == 2);
}

TEMPLATE_LIST_TEST_CASE("a function that throws caches nothing", "[func_cache]", TestedBackends) {
  World<TestType> w;
  auto attempts = std::make_shared<int>(0);
  auto flaky = w.cache.func_cache("flaky", [attempts](int x) -> asio::awaitable<int> {
    if (++*attempts == 1) throw std::runtime_error("backend of the function is down");
    co_return x * 2;
  });
  auto acme = w.cache.tenant("acme");
  CHECK_THROWS_AS(w.sync(flaky(acme, 21)), std::runtime_error);
  CHECK(w.sync(flaky(acme, 21)) == 42);
  CHECK(w.sync(flaky(acme, 21)) == 42);
  CHECK(*attempts == 2);
}

TEMPLATE_LIST_TEST_CASE("a memoized result is stored under a key every replica computes alike",
                        "[func_cache][keys]", TestedBackends) {
  // The documented schema (docs/func_cache_keys.md): <prefix>:{<tenant>:<ns>}:f:<name>:=<canonical
  // JSON args>, or :#<sha256 of them> past 64 bytes. A literal, so a change of encoding fails here.
  World<TestType> w("stable");
  PriceLookup lookup;
  auto price = w.cache.func_cache("price", lookup);
  CHECK(w.sync(price(w.cache.tenant("acme"), "sku-1", 3)) == 15.5);
  const std::string key = R"(stable:{acme:default}:f:price:=["sku-1",3])";
  CHECK(w.sync(w.cache.backend().get(key)) == std::optional<std::string>("15.5"));
}

TEMPLATE_LIST_TEST_CASE("memoized results round-trip structured types", "[func_cache][typed]",
                        TestedBackends) {
  World<TestType> w;
  auto runs = std::make_shared<int>(0);
  auto split = w.cache.func_cache(
      "split",
      [runs](std::vector<int> xs, std::map<std::string, int> m) -> asio::awaitable<std::vector<std::string>> {
        ++*runs;
        std::vector<std::string> out;
        for (int x : xs) out.push_back(std::to_string(x + m.at("add")));
        co_return out;
      });
  const std::vector<int> xs{1, 2};
  const std::map<std::string, int> m{{"add", 10}};
  auto acme = w.cache.tenant("acme");
  CHECK(w.sync(split(acme, xs, m)) == std::vector<std::string>{"11", "12"});
  CHECK(w.sync(split(acme, xs, m)) == std::vector<std::string>{"11", "12"});
  CHECK(*runs == 1);
}

TEMPLATE_LIST_TEST_CASE("arguments that cannot be encoded are rejected before the function runs",
                        "[func_cache][validation]", TestedBackends) {
  World<TestType> w;
  PriceLookup lookup;
  auto price = w.cache.func_cache("price", lookup);
  CHECK_THROWS_AS(price(w.cache.tenant("acme"), std::string("\xff"), 1), std::invalid_argument);
  CHECK(*lookup.runs == 0);
  CHECK_THROWS_AS(w.cache.func_cache("bad:name", lookup), invalid_name);
  CHECK_THROWS_AS(w.cache.func_cache("", lookup), invalid_name);
}

TEMPLATE_LIST_TEST_CASE("a result that cannot be encoded fails its callers and is not cached",
                        "[func_cache][validation]", TestedBackends) {
  World<TestType> w;
  auto runs = std::make_shared<int>(0);
  auto ratio = w.cache.func_cache("ratio", [runs](int a, int b) -> asio::awaitable<double> {
    ++*runs;
    co_return b == 0 ? std::numeric_limits<double>::infinity() : static_cast<double>(a) / b;
  });
  auto acme = w.cache.tenant("acme");
  // Stored, it would read back as null and never decode: every call would run again and fail
  // with decode_error. Rejected, each call fails saying why, and nothing is stored.
  auto failure = [&] {
    try {
      w.sync(ratio(acme, 1, 0));
    } catch (const decode_error& e) {
      return std::string("decode_error: ") + e.what();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(failure(), Catch::Contains("cannot encode") && Catch::Contains("NaN and infinities"));
  CHECK_THAT(failure(), Catch::Contains("cannot encode"));
  CHECK(*runs == 2);
  CHECK(w.sync(ratio(acme, 1, 2)) == 0.5);
  CHECK(w.sync(ratio(acme, 1, 2)) == 0.5);
  CHECK(*runs == 3);
}

TEMPLATE_LIST_TEST_CASE("a cached result that does not hold the new result type is recomputed, not converted",
                        "[func_cache][typed]", TestedBackends) {
  // The same name, its result type changed: a cached 2.75 is not an int, a cached -5 is not
  // an unsigned long long. Each is recomputed and overwritten, never read back as 2 or 2^64 - 5.
  World<TestType> w;
  auto acme = w.cache.tenant("acme");
  auto old_ratio = w.cache.func_cache("ratio", [](int a) -> asio::awaitable<double> { co_return a + 0.75; });
  auto old_delta = w.cache.func_cache("delta", [](int a) -> asio::awaitable<long long> { co_return -a; });
  CHECK(w.sync(old_ratio(acme, 2)) == 2.75);
  CHECK(w.sync(old_delta(acme, 5)) == -5);
  auto runs = std::make_shared<int>(0);
  auto ratio = w.cache.func_cache("ratio", [runs](int a) -> asio::awaitable<int> {
    ++*runs;
    co_return a * 10;
  });
  auto delta = w.cache.func_cache("delta", [runs](int a) -> asio::awaitable<unsigned long long> {
    ++*runs;
    co_return static_cast<unsigned long long>(a) * 100;
  });
  CHECK(w.sync(ratio(acme, 2)) == 20);
  CHECK(w.sync(delta(acme, 5)) == 500u);
  CHECK(*runs == 2);
  CHECK(w.sync(ratio(acme, 2)) == 20);  // the recomputed results replaced the old ones
  CHECK(w.sync(delta(acme, 5)) == 500u);
  CHECK(*runs == 2);
}

// --- batches ----------------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("a committed batch applies all its operations in order", "[batch]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  CHECK(w.sync(s.set_key("old", "x")));
  CHECK(w.sync(s.set_key("kept", "y")));
  auto batch = s.batch();
  SetOptions active{.indices = indices("active")};
  batch.set_key("a", "1", active).set_key("b", "2").delete_key("old").set("typed", 42);
  batch.push_to_queue("q", "first").push_to_queue("q", "second").refresh_key("kept", 1h);
  batch.set_key("b", "3");  // later operations win
  CHECK(batch.size() == 8);
  CHECK(w.sync(s.get_key("a")) == std::nullopt);  // nothing happens before commit
  w.sync(batch.commit());
  CHECK(batch.size() == 0);
  CHECK(w.sync(s.get_key("a")) == std::optional<std::string>("1"));
  CHECK(w.sync(s.get_key("b")) == std::optional<std::string>("3"));
  CHECK(w.sync(s.get_key("old")) == std::nullopt);
  CHECK(w.sync(s.template get<int>("typed")) == std::optional<int>(42));
  CHECK(w.sync(s.list_keys_by_index("active")) == std::vector<std::string>{"a"});
  CHECK(w.sync(s.pop_from_queue("q")) == std::optional<std::string>("first"));
  CHECK(w.sync(s.pop_from_queue("q")) == std::optional<std::string>("second"));
}

TEMPLATE_LIST_TEST_CASE("a batch dropped or discarded without commit applies nothing", "[batch]",
                        TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  {
    auto batch = s.batch();
    batch.set_key("a", "1").push_to_queue("q", "m");
  }  // rolled-back transaction: the batch goes out of scope
  auto discarded = s.batch();
  discarded.set_key("b", "2");
  discarded.discard();
  w.sync(discarded.commit());
  CHECK(w.sync(s.get_key("a")) == std::nullopt);
  CHECK(w.sync(s.get_key("b")) == std::nullopt);
  CHECK(w.sync(s.pop_from_queue("q")) == std::nullopt);
}

TEMPLATE_LIST_TEST_CASE("a batch rejects bad input when the operation is queued", "[batch][validation]",
                        TestedBackends) {
  World<TestType> w;
  auto batch = w.cache.tenant("acme").batch();
  SetOptions never{.expire = Duration(0)};
  CHECK_THROWS_AS(batch.set_key("k", "v", never), std::invalid_argument);
  CHECK_THROWS_AS(batch.cache_clear("a:b"), invalid_name);
  CHECK_THROWS_AS(batch.refresh_key("k", Duration(-1)), std::invalid_argument);
  CHECK(batch.size() == 0);
}

TEMPLATE_LIST_TEST_CASE("a batch writes only into its own scope", "[batch][tenancy]", TestedBackends) {
  World<TestType> w;
  CHECK(w.sync(w.cache.tenant("beta").set_key("k", "beta")));
  auto batch = w.cache.tenant("acme").batch();
  batch.set_key("k", "acme").delete_key("other");
  w.sync(batch.commit());
  CHECK(w.sync(w.cache.tenant("beta").get_key("k")) == std::optional<std::string>("beta"));
  CHECK(w.sync(w.cache.tenant("acme").get_key("k")) == std::optional<std::string>("acme"));
}

TEMPLATE_LIST_TEST_CASE("concurrent first calls with the same arguments run the function once",
                        "[func_cache][concurrency]", TestedBackends) {
  World<TestType> w;
  auto runs = std::make_shared<std::atomic<int>>(0);
  auto slow = w.cache.func_cache("slow", [runs](int x) -> asio::awaitable<int> {
    ++*runs;
    asio::steady_timer t(co_await asio::this_coro::executor, 50ms);
    co_await t.async_wait(asio::use_awaitable);
    co_return x + 1;
  });
  auto acme = w.cache.tenant("acme");
  std::atomic<int> correct{0};
  w.run_concurrently(32, [&](int) -> asio::awaitable<void> {
    const int r = co_await slow(acme, 41);
    if (r == 42) ++correct;
  });
  CHECK(correct == 32);
  CHECK(*runs == 1);
}
