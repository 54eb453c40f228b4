// Conformance: invalidate_index, index names of any bytes, batches that invalidate an index
// or clear a memoized function, memoized functions that take their scope, the Memoized type,
// and Cache::close.

#include "conformance/world.hpp"

#include <algorithm>
#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace corocache;
using namespace corocache::test;

namespace {
using Names = std::vector<std::string>;

/// Index names that a segment could not be: separators, braces (the hash tag), the bytes
/// the key escapes and their escaped forms, glob characters, NUL, invalid UTF-8, empty.
Names awkward_index_names() {
  return {"a:b",
          "a:b:c",
          ":",
          "",
          "{x}",
          "}{",
          "a\nb",
          "a\\nb",
          "a\\",
          "\\n",
          "\n",
          "\\",
          "*",
          "a b",
          "v:k",
          "i:a:b",
          "~reserved",
          "\xff\xfe",
          std::string("\0x", 2),
          std::string(200, 'i')};
}

/// A memoized function that counts its real runs.
struct Counted {
  std::shared_ptr<std::atomic<int>> runs = std::make_shared<std::atomic<int>>(0);
  asio::awaitable<int> operator()(int x) const {
    ++*runs;
    co_return 2 * x;
  }
};
}  // namespace

TEMPLATE_LIST_TEST_CASE("invalidate_index removes exactly the live values the index lists",
                        "[indices][invalidation]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  auto beta = w.cache.tenant("beta");
  w.sync(s.set_key("a", "1", in_indices("x", "y")));
  w.sync(s.set_key("b", "2", in_indices("x")));
  w.sync(s.set_key("c", "3", in_indices("y")));
  w.sync(s.set_key("d", "4"));
  w.sync(s.set_key("e", "5", in_indices("x")));
  w.sync(s.set_key("e", "5 again"));  // re-stored without the index: no longer listed
  w.sync(beta.set_key("a", "beta", in_indices("x")));

  CHECK(w.sync(s.invalidate_index("x")) == 2);
  CHECK(w.sync(s.get_key("a")) == std::nullopt);
  CHECK(w.sync(s.get_key("b")) == std::nullopt);
  CHECK(w.sync(s.get_key("c")) == std::optional<std::string>("3"));
  CHECK(w.sync(s.get_key("d")) == std::optional<std::string>("4"));
  CHECK(w.sync(s.get_key("e")) == std::optional<std::string>("5 again"));
  CHECK(w.sync(s.list_keys_by_index("x")).empty());
  CHECK(w.sync(s.list_keys_by_index("y")) == Names{"c"});  // `a` left its other index too
  CHECK(w.sync(beta.list_keys_by_index("x")) == Names{"a"});
  CHECK(w.sync(beta.get_key("a")) == std::optional<std::string>("beta"));

  CHECK(w.sync(s.invalidate_index("x")) == 0);
  CHECK(w.sync(s.invalidate_index("never-used")) == 0);
  CHECK(w.sync(s.with_timeout(5s).invalidate_index("y")) == 1);
  CHECK(w.sync(s.get_key("c")) == std::nullopt);
}

TEMPLATE_LIST_TEST_CASE("invalidate_index does not count values that expired", "[indices][expiry]",
                        TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  w.sync(s.set_key("short", "1", expire_in(50ms).with_indices("x")));
  w.sync(s.set_key("long", "2", expire_in(1h).with_indices("x")));
  w.sleep(150ms);
  CHECK(w.sync(s.invalidate_index("x")) == 1);
  CHECK(w.sync(s.get_key("long")) == std::nullopt);
}

TEMPLATE_LIST_TEST_CASE("index names may hold any bytes, each naming an index of its own", "[indices][names]",
                        TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  const Names names = awkward_index_names();
  for (std::size_t i = 0; i < names.size(); ++i)
    CHECK(w.sync(s.set_key("k" + std::to_string(i), "v", in_indices(names[i]))));
  for (std::size_t i = 0; i < names.size(); ++i) {
    INFO("index name #" << i);
    CHECK(w.sync(s.list_keys_by_index(names[i])) == Names{"k" + std::to_string(i)});
  }
  // Invalidating one removes its value only; the others keep theirs until their turn.
  for (std::size_t i = 0; i < names.size(); ++i) {
    INFO("index name #" << i);
    CHECK(w.sync(s.invalidate_index(names[i])) == 1);
    CHECK(w.sync(s.get_key("k" + std::to_string(i))) == std::nullopt);
    if (i + 1 < names.size()) {
      CHECK(w.sync(s.get_key("k" + std::to_string(i + 1))) == std::optional<std::string>("v"));
      CHECK(w.sync(s.list_keys_by_index(names[i + 1])) == Names{"k" + std::to_string(i + 1)});
    }
  }
}

TEMPLATE_LIST_TEST_CASE("a value listed in several awkwardly named indices is listed by each",
                        "[indices][names]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  w.sync(s.set_key("k", "v", in_indices("a\nb", "a\\nb", "a:b", "")));
  CHECK(w.sync(s.list_keys_by_index("a\nb")) == Names{"k"});
  CHECK(w.sync(s.list_keys_by_index("a\\nb")) == Names{"k"});
  CHECK(w.sync(s.list_keys_by_index("a")).empty());
  CHECK(w.sync(s.list_keys_by_index("b")).empty());
  // Deleting the value takes it out of all of them.
  CHECK(w.sync(s.delete_key("k")));
  CHECK(w.sync(s.list_keys_by_index("a:b")).empty());
  CHECK(w.sync(s.list_keys_by_index("")).empty());
  CHECK(w.sync(s.invalidate_index("a\nb")) == 0);
}

TEMPLATE_LIST_TEST_CASE("a batch invalidates an index in order with its other operations", "[batch][indices]",
                        TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  w.sync(s.set_key("old", "1", in_indices("grp")));
  w.sync(s.set_key("other", "1", in_indices("keep")));
  auto batch = s.batch();
  batch.set_key("x", "2", in_indices("grp")).invalidate_index("grp").set_key("y", "3", in_indices("grp"));
  batch.invalidate_index("a:b\n{c}");
  CHECK(batch.size() == 4);
  CHECK(w.sync(s.get_key("old")) == std::optional<std::string>("1"));  // nothing before commit
  w.sync(batch.commit());
  CHECK(w.sync(s.get_key("old")) == std::nullopt);
  CHECK(w.sync(s.get_key("x")) == std::nullopt);  // stored, then invalidated
  CHECK(w.sync(s.get_key("y")) == std::optional<std::string>("3"));
  CHECK(w.sync(s.list_keys_by_index("grp")) == Names{"y"});
  CHECK(w.sync(s.list_keys_by_index("keep")) == Names{"other"});
}

TEMPLATE_LIST_TEST_CASE("a batch clears a memoized function of its scope only", "[batch][func_cache]",
                        TestedBackends) {
  World<TestType> w;
  Counted counted;
  auto twice = w.cache.func_cache("twice", counted);
  auto twice_more = w.cache.func_cache("twice2", counted);  // a name that starts like the other
  auto acme = w.cache.tenant("acme");
  auto beta = w.cache.tenant("beta");
  CHECK(w.sync(twice(acme, 1)) == 2);
  CHECK(w.sync(twice(acme, 2)) == 4);
  CHECK(w.sync(twice(beta, 1)) == 2);
  CHECK(w.sync(twice_more(acme, 1)) == 2);
  CHECK(*counted.runs == 4);

  auto batch = acme.batch();
  batch.set_key("k", "v").cache_clear(twice);
  w.sync(batch.commit());
  CHECK(w.sync(acme.get_key("k")) == std::optional<std::string>("v"));
  CHECK(w.sync(twice(acme, 1)) == 2);
  CHECK(w.sync(twice(acme, 2)) == 4);
  CHECK(*counted.runs == 6);  // both of acme's results were recomputed
  CHECK(w.sync(twice(beta, 1)) == 2);
  CHECK(w.sync(twice_more(acme, 1)) == 2);
  CHECK(*counted.runs == 6);  // beta's and the other function's stayed

  // By name.
  auto by_name = acme.batch();
  by_name.cache_clear("twice2").cache_clear("twice");
  w.sync(by_name.commit());
  CHECK(w.sync(twice_more(acme, 1)) == 2);
  CHECK(*counted.runs == 7);
}

TEMPLATE_LIST_TEST_CASE("a memoized function may take the calling scope first", "[func_cache][scope]",
                        TestedBackends) {
  World<TestType> w;
  auto runs = std::make_shared<std::atomic<int>>(0);
  // The function reads a per-tenant rate through the scope it is given.
  auto priced = w.cache.func_cache(
      "priced", [runs](const Scope<TestType>& scope, int qty) -> asio::awaitable<std::string> {
        ++*runs;
        const auto rate = co_await scope.get_key("rate");
        co_return scope.tenant() + ":" + std::to_string(qty) + "x" + rate.value_or("none");
      });
  auto acme = w.cache.tenant("acme");
  auto beta = w.cache.tenant("beta");
  w.sync(acme.set_key("rate", "3"));
  w.sync(beta.set_key("rate", "5"));
  CHECK(w.sync(priced(acme, 2)) == "acme:2x3");
  CHECK(w.sync(priced(beta, 2)) == "beta:2x5");
  CHECK(*runs == 2);
  // The scope is not part of the key beyond tenant and namespace: a timed copy of acme
  // shares acme's result.
  CHECK(w.sync(priced(acme.with_timeout(5s), 2)) == "acme:2x3");
  CHECK(*runs == 2);
  const std::string key = w.cache.options().prefix + ":{acme:default}:f:priced:=[2]";
  CHECK(w.sync(w.cache.backend().get(key)) == std::optional<std::string>(R"("acme:2x3")"));
  // Another namespace is another scope: computed again, with that namespace's data.
  CHECK(w.sync(priced(acme.ns("other"), 2)) == "acme:2xnone");
  CHECK(*runs == 3);

  // By value, and a function that takes the scope and nothing else.
  auto tenant_of = w.cache.func_cache(
      "tenant_of", [](Scope<TestType> scope) -> asio::awaitable<std::string> { co_return scope.tenant(); });
  CHECK(w.sync(tenant_of(beta)) == "beta");
  CHECK(w.sync(w.cache.backend().get(w.cache.options().prefix + ":{beta:default}:f:tenant_of:=[]")) ==
        std::optional<std::string>(R"("beta")"));
}

namespace {
/// A service holding memoized functions as members, by their named type.
template <class B>
struct PriceService {
  Memoized<B, int(int)> doubled;
  Memoized<B, std::string(const Scope<B>&, std::string)> greet;

  PriceService(const Cache<B>& cache, std::shared_ptr<std::atomic<int>> runs)
      : doubled(cache.func_cache("doubled",
                                 [runs](int x) -> asio::awaitable<int> {
                                   ++*runs;
                                   co_return 2 * x;
                                 })),
        greet(
            cache.func_cache("greet", [](const Scope<B>& s, std::string who) -> asio::awaitable<std::string> {
              co_return "hello " + who + " from " + s.tenant();
            })) {}
};
}  // namespace

TEMPLATE_LIST_TEST_CASE("Memoized names a memoized function's type, e.g. for a class member",
                        "[func_cache][type]", TestedBackends) {
  World<TestType> w;
  auto runs = std::make_shared<std::atomic<int>>(0);
  PriceService<TestType> service(w.cache, runs);
  auto acme = w.cache.tenant("acme");
  CHECK(w.sync(service.doubled(acme, 21)) == 42);
  CHECK(w.sync(service.doubled(acme, 21)) == 42);
  CHECK(*runs == 1);
  CHECK(w.sync(service.greet(acme, "ada")) == "hello ada from acme");
  CHECK(service.doubled.name() == "doubled");
  // The converted function reads the same results as the one it came from.
  Counted counted;
  auto original = w.cache.func_cache("shared", counted);
  CHECK(w.sync(original(acme, 5)) == 10);
  Memoized<TestType, int(int)> converted = original;
  CHECK(w.sync(converted(acme, 5)) == 10);
  CHECK(*counted.runs == 1);
  w.sync(converted.cache_clear(acme));
  CHECK(w.sync(original(acme, 5)) == 10);
  CHECK(*counted.runs == 2);
}

TEMPLATE_LIST_TEST_CASE("close() lets io_context::run return while the cache lives", "[close]",
                        TestedBackends) {
  asio::io_context io;
  Cache<TestType> cache(BackendFactory<TestType>::make(io.get_executor()),
                        CacheOptions{.prefix = unique_prefix()});
  auto s = cache.tenant("acme");
  bool worked = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await s.set_key("k", "v", 1min);
        const auto v = co_await s.get_key("k");
        worked = v == std::optional<std::string>("v");
        co_await cache.flush_all();
        cache.close();
        cache.close();  // idempotent
      },
      asio::detached);
  io.run_for(20s);
  CHECK(worked);
  CHECK(io.stopped());  // it ran out of work, not out of time
}

// A lock attempt that close() cuts short has an unknown outcome, so its release is retried
// in the background; a closed backend must end those retries at once.
TEMPLATE_LIST_TEST_CASE("close() lets io_context::run return while a cut-short lock attempt is released",
                        "[close][locks]", TestedBackends) {
  asio::io_context io;
  Cache<TestType> cache(BackendFactory<TestType>::make(io.get_executor()),
                        CacheOptions{.prefix = unique_prefix()});
  auto s = cache.tenant("acme");
  bool attempted = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        try {
          const auto lock = co_await s.attempt_distributed_lock("job", 50s);
          static_cast<void>(lock);
        } catch (const std::exception&) {  // shut_down on Redis; the memory backend answers first
        }
        attempted = true;
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        cache.close();  // runs while the attempt above waits for its reply
        co_return;
      },
      asio::detached);
  io.run_for(20s);  // the retries would last min(ttl, 1 min)
  CHECK(attempted);
  CHECK(io.stopped());
}

TEMPLATE_LIST_TEST_CASE("batches that invalidate an index run alongside stores into it on two threads",
                        "[batch][indices][threads]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  Counted counted;
  auto twice = w.cache.func_cache("twice", counted);
  w.run_concurrently(48, [&](int i) -> asio::awaitable<void> {
    const std::string name = "k" + std::to_string(i);
    co_await s.set_key(name, "v", in_indices("grp", "all"));
    const int doubled = co_await twice(s, i % 3);
    if (doubled != 2 * (i % 3)) throw std::logic_error("wrong memoized result");
    if (i % 4 == 0) {
      auto batch = s.batch();
      batch.set_key("b" + name, "v", in_indices("grp")).invalidate_index("grp").cache_clear(twice);
      co_await batch.commit();
    }
  });
  // A batch applies as a whole and in order: what it stored before its own invalidation
  // never survives it, whatever ran in between on the other thread.
  for (int i = 0; i < 48; i += 4) {
    INFO("batch " << i);
    CHECK(w.sync(s.get_key("bk" + std::to_string(i))) == std::nullopt);
  }
  // Every survivor is listed by both indices, every invalidated value by neither.
  const auto all = w.sync(s.list_keys_by_index("all"));
  const auto grp = w.sync(s.list_keys_by_index("grp"));
  CHECK(all == grp);
  std::size_t alive = 0;
  for (int i = 0; i < 48; ++i) {
    const std::string name = "k" + std::to_string(i);
    const bool live = w.sync(s.get_key(name)).has_value();
    alive += live ? 1 : 0;
    CHECK(live == (std::find(all.begin(), all.end(), name) != all.end()));
  }
  CHECK(alive == all.size());
}
