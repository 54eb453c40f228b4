// Conformance: read-limited keys, prefix and predicate invalidation, flush and flush_all.

#include "conformance/world.hpp"

#include <boost/asio/detached.hpp>

#include <atomic>
#include <vector>

using namespace corocache;
using namespace corocache::test;
using Names = std::vector<std::string>;

// --- read-limited keys ------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("a read-limited key disappears after its last read", "[max_reads]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  SetOptions three_reads{.max_reads = 3};
  CHECK(w.sync(s.set_key("token", "secret", three_reads)));
  for (int i = 0; i < 3; ++i) CHECK(w.sync(s.get_key("token")) == std::optional<std::string>("secret"));
  CHECK(w.sync(s.get_key("token")) == std::nullopt);
  CHECK_FALSE(w.sync(s.delete_key("token")));
}

TEMPLATE_LIST_TEST_CASE("a one-time token is read once and leaves its index", "[max_reads][indices]",
                        TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  SetOptions once{.indices = indices("tokens"), .max_reads = 1};
  CHECK(w.sync(s.set_key("t1", "x", once)));
  CHECK(w.sync(s.list_keys_by_index("tokens")) == Names{"t1"});
  CHECK(w.sync(s.get_key("t1")) == std::optional<std::string>("x"));
  CHECK(w.sync(s.list_keys_by_index("tokens")).empty());
}

TEMPLATE_LIST_TEST_CASE("setting a read-limited key again resets its reads", "[max_reads]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  SetOptions twice{.max_reads = 2};
  CHECK(w.sync(s.set_key("k", "a", twice)));
  CHECK(w.sync(s.get_key("k")).has_value());
  CHECK(w.sync(s.set_key("k", "b", twice)));
  CHECK(w.sync(s.get_key("k")) == std::optional<std::string>("b"));
  CHECK(w.sync(s.get_key("k")) == std::optional<std::string>("b"));
  CHECK(w.sync(s.get_key("k")) == std::nullopt);
  CHECK(w.sync(s.set_key("k", "unlimited")));
  for (int i = 0; i < 5; ++i) CHECK(w.sync(s.get_key("k")).has_value());
}

TEMPLATE_LIST_TEST_CASE("of 64 concurrent readers of a 5-read key exactly 5 get the value",
                        "[max_reads][concurrency]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  SetOptions five{.max_reads = 5};
  CHECK(w.sync(s.set_key("k", "v", five)));
  std::atomic<int> hits{0};
  w.run_concurrently(64, [&](int) -> asio::awaitable<void> {
    const auto value = co_await s.get_key("k");
    if (value) ++hits;
  });
  CHECK(hits == 5);
}

// --- invalidation -----------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("invalidate_prefix removes exactly the names with that prefix in its scope",
                        "[invalidation][tenancy]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme").ns("users");
  for (const char* name : {"user:1", "user:2", "user:3", "users", "admin:1", "use"})
    CHECK(w.sync(s.set_key(name, "v")));
  CHECK(w.sync(w.cache.tenant("acme").set_key("user:9", "other ns")));
  CHECK(w.sync(w.cache.tenant("beta").ns("users").set_key("user:1", "other tenant")));
  w.sync(s.push_to_queue("user:q", "queued"));

  CHECK(w.sync(s.invalidate_prefix("user:")) == 3);
  CHECK(w.sync(s.get_key("user:1")) == std::nullopt);
  CHECK(w.sync(s.get_key("users")).has_value());
  CHECK(w.sync(s.get_key("admin:1")).has_value());
  CHECK(w.sync(s.get_key("use")).has_value());
  CHECK(w.sync(w.cache.tenant("acme").get_key("user:9")).has_value());
  CHECK(w.sync(w.cache.tenant("beta").ns("users").get_key("user:1")).has_value());
  CHECK(w.sync(s.pop_from_queue("user:q")) == std::optional<std::string>("queued"));  // values only
  CHECK(w.sync(s.invalidate_prefix("nothing-here")) == 0);
}

TEMPLATE_LIST_TEST_CASE("glob characters in an invalidation prefix are literal", "[invalidation][keys]",
                        TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  const Names names = {"a*1", "ab1", "a?1", "ax1", "[ab]1", "a1", "b1", "\\x", "x", "a]1", "a[1"};
  for (const auto& name : names) CHECK(w.sync(s.set_key(name, "v")));
  CHECK(w.sync(s.invalidate_prefix("a*")) == 1);
  CHECK(w.sync(s.invalidate_prefix("a?")) == 1);
  CHECK(w.sync(s.invalidate_prefix("[ab]")) == 1);
  CHECK(w.sync(s.invalidate_prefix("\\")) == 1);
  CHECK(w.sync(s.invalidate_prefix("a]")) == 1);
  CHECK(w.sync(s.invalidate_prefix("a[")) == 1);
  for (const char* kept : {"ab1", "ax1", "a1", "b1", "x"}) {
    INFO("kept: " << kept);
    CHECK(w.sync(s.get_key(kept)).has_value());
  }
}

TEMPLATE_LIST_TEST_CASE("invalidated keys leave their indices", "[invalidation][indices]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  SetOptions active{.indices = indices("active")};
  for (const char* name : {"tmp:1", "tmp:2", "keep"}) CHECK(w.sync(s.set_key(name, "v", active)));
  CHECK(w.sync(s.invalidate_prefix("tmp:")) == 2);
  CHECK(w.sync(s.list_keys_by_index("active")) == Names{"keep"});
}

TEMPLATE_LIST_TEST_CASE("invalidate_if removes the values its predicate accepts, up to a limit",
                        "[invalidation]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  for (int i = 0; i < 10; ++i) CHECK(w.sync(s.set_key("k" + std::to_string(i), i % 2 ? "odd" : "even")));
  CHECK(w.sync(w.cache.tenant("beta").set_key("k1", "odd")));

  CHECK(w.sync(s.invalidate_if([](std::string_view, std::string_view value) { return value == "odd"; }, 2)) ==
        2);
  CHECK(w.sync(s.invalidate_if([](std::string_view, std::string_view value) { return value == "odd"; })) ==
        3);
  CHECK(w.sync(s.invalidate_if([](std::string_view name, std::string_view) { return name == "k4"; }, -1)) ==
        1);
  CHECK(w.sync(s.invalidate_if([](std::string_view, std::string_view) { return true; }, 0)) == 0);
  int live = 0;
  for (int i = 0; i < 10; ++i) live += w.sync(s.get_key("k" + std::to_string(i))).has_value();
  CHECK(live == 4);  // k0 k2 k6 k8
  CHECK(w.sync(w.cache.tenant("beta").get_key("k1")) == std::optional<std::string>("odd"));
  CHECK_THROWS_AS(s.invalidate_if(nullptr), std::invalid_argument);
}

TEMPLATE_LIST_TEST_CASE("invalidate_if reads read-limited values without consuming them",
                        "[invalidation][max_reads]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  SetOptions once{.max_reads = 1};
  CHECK(w.sync(s.set_key("t", "keep me", once)));
  CHECK(w.sync(s.invalidate_if([](std::string_view, std::string_view v) { return v == "drop"; })) == 0);
  CHECK(w.sync(s.get_key("t")) == std::optional<std::string>("keep me"));
}

// --- flush ------------------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("flush empties one namespace and nothing else", "[flush][tenancy]", TestedBackends) {
  World<TestType> w;
  auto users = w.cache.tenant("acme").ns("users");
  auto orders = w.cache.tenant("acme").ns("orders");
  SetOptions active{.indices = indices("active")};
  CHECK(w.sync(users.set_key("k", "v", active)));
  w.sync(users.push_to_queue("q", "m"));
  REQUIRE(w.sync(users.attempt_distributed_lock("l", 30s)).has_value());
  CHECK(w.sync(orders.set_key("k", "v")));
  CHECK(w.sync(w.cache.tenant("beta").ns("users").set_key("k", "v")));

  w.sync(users.flush());
  CHECK(w.sync(users.get_key("k")) == std::nullopt);
  CHECK(w.sync(users.list_keys_by_index("active")).empty());
  CHECK(w.sync(users.pop_from_queue("q")) == std::nullopt);
  CHECK(w.sync(users.attempt_distributed_lock("l", 30s)).has_value());
  CHECK(w.sync(orders.get_key("k")).has_value());
  CHECK(w.sync(w.cache.tenant("beta").ns("users").get_key("k")).has_value());
}

TEMPLATE_LIST_TEST_CASE("flush_tenant empties every namespace of one tenant only", "[flush][tenancy]",
                        TestedBackends) {
  World<TestType> w;
  auto acme = w.cache.tenant("acme");
  CHECK(w.sync(acme.set_key("k", "v")));
  CHECK(w.sync(acme.ns("users").set_key("k", "v")));
  CHECK(w.sync(w.cache.tenant("acme2").set_key("k", "v")));  // a tenant whose name extends acme
  CHECK(w.sync(w.cache.global().set_key("k", "v")));
  w.sync(acme.ns("users").flush_tenant());
  CHECK(w.sync(acme.get_key("k")) == std::nullopt);
  CHECK(w.sync(acme.ns("users").get_key("k")) == std::nullopt);
  CHECK(w.sync(w.cache.tenant("acme2").get_key("k")).has_value());
  CHECK(w.sync(w.cache.global().get_key("k")).has_value());
}

TEMPLATE_LIST_TEST_CASE("flush_all empties every tenant of the cache", "[flush]", TestedBackends) {
  World<TestType> w;
  CHECK(w.sync(w.cache.tenant("acme").set_key("k", "v")));
  CHECK(w.sync(w.cache.tenant("beta").ns("x").set_key("k", "v")));
  CHECK(w.sync(w.cache.global().set_key("k", "v")));
  w.sync(w.cache.global().push_to_queue("q", "m"));
  w.sync(w.cache.flush_all());
  CHECK(w.sync(w.cache.tenant("acme").get_key("k")) == std::nullopt);
  CHECK(w.sync(w.cache.tenant("beta").ns("x").get_key("k")) == std::nullopt);
  CHECK(w.sync(w.cache.global().get_key("k")) == std::nullopt);
  CHECK(w.sync(w.cache.global().pop_from_queue("q")) == std::nullopt);
  CHECK(w.sync(w.cache.tenant("acme").set_key("k", "v")));  // usable afterwards
}

TEMPLATE_LIST_TEST_CASE("flush_all leaves keys of other prefixes alone", "[flush]", TestedBackends) {
  // Two caches with different prefixes share one backend through raw backend keys: the
  // facade of the second is simulated by writing its key directly.
  World<TestType> w("app");
  CHECK(w.sync(w.cache.backend().set("app2:{acme:default}:v:k", "other app", StoreParams{1h, false, 0, {}})));
  CHECK(w.sync(w.cache.backend().set("unrelated", "x", StoreParams{1h, false, 0, {}})));
  CHECK(w.sync(w.cache.tenant("acme").set_key("k", "v")));
  w.sync(w.cache.flush_all());
  CHECK(w.sync(w.cache.tenant("acme").get_key("k")) == std::nullopt);
  CHECK(w.sync(w.cache.backend().get("app2:{acme:default}:v:k")) == std::optional<std::string>("other app"));
  CHECK(w.sync(w.cache.backend().get("unrelated")) == std::optional<std::string>("x"));
  w.sync(w.cache.backend().erase("app2:{acme:default}:v:k"));
  w.sync(w.cache.backend().erase("unrelated"));
}
