// The README's examples, compiled (by g++ 12 and clang 14 in CI) and run on the memory
// backend, so the user's reference cannot drift from what the library accepts.

#include "support/run.hpp"

#include <corocache/cache.hpp>
#include <corocache/memory/backend.hpp>
#include <corocache/testing.hpp>

#include <catch2/catch.hpp>

#include <optional>
#include <stdexcept>
#include <string>

namespace readme_examples_test {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

struct Profile {
  std::string name;
  int visits = 0;
};
void to_json(nlohmann::json& j, const Profile& p) { j = {{"name", p.name}, {"visits", p.visits}}; }
void from_json(const nlohmann::json& j, Profile& p) {
  j.at("name").get_to(p.name);
  j.at("visits").get_to(p.visits);
}

asio::awaitable<double> expensive_lookup(std::string sku, int qty) {
  co_return static_cast<double>(sku.size() * qty);
}

// --- "Write once, test on memory, ship on Redis" ---------------------------------------
template <class Backend>
asio::awaitable<std::string> greeting(corocache::Cache<Backend>& cache, std::string user) {
  auto users = cache.tenant("acme").ns("users");
  auto cached = co_await users.get_key(user);
  if (cached) co_return *cached;
  std::string fresh = "hello, " + user;
  corocache::SetOptions ten_minutes{.expire = 10min};
  co_await users.set_key(user, fresh, ten_minutes);
  co_return fresh;
}

// --- "API reference" --------------------------------------------------------------------
template <class B>
class PriceService {
 public:
  explicit PriceService(const corocache::Cache<B>& cache)
      : price_(cache.func_cache("price", [](std::string sku, int qty) -> asio::awaitable<double> {
          co_return co_await expensive_lookup(sku, qty);
        })) {}
  asio::awaitable<double> unit_price(const corocache::Scope<B>& scope, std::string sku) const {
    return price_(scope, std::move(sku), 1);
  }

 private:
  corocache::Memoized<B, double(std::string, int)> price_;  // Params may start with const Scope<B>&
};

template <class Backend>
asio::awaitable<void> reference(corocache::Cache<Backend>& cache) {
  auto acme = cache.tenant("acme");
  auto users = acme.ns("users");
  auto glob = cache.global();
  (void)glob;

  bool stored = co_await users.set_key("u1", "payload");
  corocache::SetOptions nx{.expire = 10s, .nx = true};
  bool first = co_await users.set_key("u1", "x", nx);
  std::optional<std::string> v = co_await users.get_key("u1");
  bool refreshed = co_await users.refresh_key("u1", 1h);
  bool existed = co_await users.delete_key("u1");
  CHECK(stored);
  CHECK_FALSE(first);
  CHECK(v == std::optional<std::string>("payload"));
  CHECK(refreshed);
  CHECK(existed);

  corocache::SetOptions five_minutes{.expire = 5min};
  const Profile ada{"Ada", 3};
  co_await users.set("profile:7", ada, five_minutes);
  std::optional<Profile> p = co_await users.get("profile:7", corocache::as<Profile>);
  std::optional<Profile> same = co_await users.template get<Profile>("profile:7");
  CHECK(p->visits == 3);
  CHECK(same->name == "Ada");

  corocache::SetOptions active{.indices = corocache::indices("active")};
  co_await users.set_key("u2", "payload", active);
  std::vector<std::string> keys = co_await users.list_keys_by_index("active");
  CHECK(keys == std::vector<std::string>{"u2"});
  std::size_t gone = co_await users.invalidate_index("active");
  CHECK(gone == 1);
  auto u2 = co_await users.get_key("u2");
  CHECK_FALSE(u2);
  co_await users.set_key("u2", "payload", active);  // listed again, for the batch below

  corocache::SetOptions once{.expire = 15min, .max_reads = 1};
  co_await users.set_key("reset-token", "t0k3n", once);
  auto read1 = co_await users.get_key("reset-token");
  auto read2 = co_await users.get_key("reset-token");
  CHECK(read1 == std::optional<std::string>("t0k3n"));
  CHECK_FALSE(read2);

  co_await acme.push_to_queue("emails", "msg-1");
  std::optional<std::string> m = co_await acme.pop_from_queue("emails");
  std::optional<std::string> w = co_await acme.pop_from_queue("emails", 50ms);
  CHECK(m == std::optional<std::string>("msg-1"));
  CHECK_FALSE(w);

  std::optional<corocache::Lock> lk = co_await acme.attempt_distributed_lock("nightly-job", 30s);
  if (lk) {
    bool released = co_await acme.release_distributed_lock(*lk);
    CHECK(released);
  }
  CHECK(lk.has_value());

  auto price = cache.func_cache("price",
                                [](std::string sku, int qty) -> asio::awaitable<double> {
                                  co_return co_await expensive_lookup(sku, qty);
                                },
                                {.expire = 2min});
  double d = co_await price(acme, "sku-1", 3);
  co_await price.cache_clear(acme);
  CHECK(d == 15.0);

  co_await acme.set_key("rate", "3");
  auto quote = cache.func_cache(
      "quote",
      [](const corocache::Scope<corocache::MemoryBackend>& scope, int qty) -> asio::awaitable<std::string> {
        auto rate = co_await scope.get_key("rate");  // the caller's tenant and namespace
        co_return std::to_string(qty) + " x " + rate.value_or("list price");
      });
  std::string q = co_await quote(acme, 2);
  CHECK(q == "2 x 3");
  auto quoted = co_await cache.backend().get("myapp:{acme:default}:f:quote:=[2]");
  CHECK(quoted == std::optional<std::string>(R"("2 x 3")"));

  PriceService<Backend> service(cache);
  double unit = co_await service.unit_price(acme, "sku-22");
  CHECK(unit == 6.0);

  co_await users.set_key("u1", "Ada");
  co_await price(users, "sku-1", 1);
  auto batch = users.batch();
  batch.set_key("u3", "Linus").delete_key("u1").push_to_queue("audit", "u3 created");
  batch.invalidate_index("active").cache_clear(price);
  co_await batch.commit();
  auto u1 = co_await users.get_key("u1");
  auto u2_after = co_await users.get_key("u2");
  auto u3 = co_await users.get_key("u3");
  auto cleared = co_await cache.backend().get(R"(myapp:{acme:users}:f:price:=["sku-1",1])");
  CHECK_FALSE(u1);
  CHECK_FALSE(u2_after);
  CHECK(u3 == std::optional<std::string>("Linus"));
  CHECK_FALSE(cleared);

  std::size_t n = co_await users.invalidate_prefix("session:");
  std::size_t removed = co_await users.invalidate_if(
      [](std::string_view, std::string_view value) { return value.empty(); }, /*limit=*/100);
  CHECK(n == 0);
  CHECK(removed == 0);
  co_await users.flush();
  co_await users.flush_tenant();
  co_await cache.flush_all();

  auto hurried = users.with_timeout(50ms);
  auto late = co_await hurried.get_key("u1");
  CHECK_FALSE(late);
}

// --- "Compilers: g++ 12 and coroutines": the safe forms ---------------------------------
template <class Backend>
asio::awaitable<bool> cached_flag(corocache::Scope<Backend> s) {
  auto v = co_await s.get_key("k");
  if (v) co_return true;
  co_return false;
}

template <class Backend>
asio::awaitable<void> safe_forms(corocache::Cache<Backend>& cache) {
  auto s = cache.tenant("acme").ns("g12");
  co_await s.set_key("k", "v", corocache::expire_in(10min).with_indices("a"));
  co_await s.set_key("k2", "v2", 10min);
  co_await s.set_key("k3", "v3", corocache::in_indices("a", "b"));
  const bool again = co_await s.set_key("k", "x", corocache::only_if_absent());
  co_await s.set_key("once", "t", corocache::read_limit(1).with_expire(15min));
  const Profile ada{"Ada", 3};
  co_await s.set("p", ada);
  co_await s.set("p5", ada, 5min);
  auto in_a = co_await s.list_keys_by_index("a");
  auto in_b = co_await s.list_keys_by_index("b");
  auto v = co_await s.get_key("k");
  const bool ok = v == "v";
  auto once1 = co_await s.get_key("once");
  auto once2 = co_await s.get_key("once");
  auto p = co_await s.get("p5", corocache::as<Profile>);
  const bool flag = co_await cached_flag(s);
  CHECK_FALSE(again);
  CHECK(in_a == std::vector<std::string>{"k", "k3"});
  CHECK(in_b == std::vector<std::string>{"k3"});
  CHECK(ok);
  CHECK(once1 == std::optional<std::string>("t"));
  CHECK_FALSE(once2);
  CHECK(p->name == "Ada");
  CHECK(flag);
}

}  // namespace

TEST_CASE("the README's write-once example runs on the memory backend", "[readme]") {
  std::string result = corocache::testing::run([](asio::any_io_executor ex) -> asio::awaitable<std::string> {
    corocache::Cache<corocache::MemoryBackend> cache{corocache::MemoryBackend{ex}, {.prefix = "test"}};
    co_return co_await greeting(cache, "ada");
  });
  CHECK(result == "hello, ada");
}

TEST_CASE("the README's io.run() returns once the cache is closed", "[readme]") {
  asio::io_context io;
  corocache::Cache<corocache::MemoryBackend> cache{corocache::MemoryBackend{io.get_executor()},
                                                   {.prefix = "test"}};
  std::string result;
  asio::co_spawn(io, greeting(cache, "ada"), [&](std::exception_ptr e, std::string s) {
    if (e) std::rethrow_exception(e);
    result = std::move(s);
  });
  cache.close();
  io.run_for(10s);  // returns at once when nothing is left to run
  CHECK(io.stopped());
  CHECK(result == "hello, ada");
}

TEST_CASE("the README's API reference examples run on the memory backend", "[readme]") {
  corocache::test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    corocache::MemoryBackend mem{ex, {.max_entries = 100'000}};
    corocache::Cache<corocache::MemoryBackend> cache{std::move(mem), {.prefix = "myapp"}};
    co_await reference(cache);
  });
}

TEST_CASE("the README's g++ 12 safe forms run on the memory backend", "[readme]") {
  corocache::test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    corocache::Cache<corocache::MemoryBackend> cache{corocache::MemoryBackend{ex}, {.prefix = "myapp"}};
    co_await safe_forms(cache);
  });
}

TEST_CASE("the README's manual clock example expires a value with no sleep", "[readme]") {
  std::optional<std::string> still_seen;
  corocache::MemoryStats stats_seen;
  bool gone_seen = false;
  // --- README "Test expiry without sleeping" (the asserts are the README's comments) ---
  corocache::testing::ManualClock clock;
  corocache::testing::run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    corocache::Cache<corocache::MemoryBackend> cache{corocache::testing::memory_backend(ex, clock),
                                                     {.prefix = "test"}};
    auto users = cache.tenant("acme").ns("users");
    corocache::SetOptions ten_minutes{.expire = 10min};
    co_await users.set_key("ada", "hello, ada", ten_minutes);
    clock.advance(10min - 1ms);
    auto still = co_await users.get_key("ada");  // "hello, ada"
    clock.advance(1ms);                          // exactly 10 minutes: expired, no sleep
    cache.backend().sweep_now();                 // the sweep, run on demand
    auto stats = cache.backend().stats();        // stats.entries == 0, stats.expirations == 1
    auto gone = co_await users.get_key("ada");   // std::nullopt
    still_seen = still;
    stats_seen = stats;
    gone_seen = !gone;
  });
  CHECK(still_seen == std::optional<std::string>("hello, ada"));
  CHECK(stats_seen.entries == 0);
  CHECK(stats_seen.expirations == 1);
  CHECK(gone_seen);
}

}  // namespace readme_examples_test
