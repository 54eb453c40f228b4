// Conformance: key/value, expiry, nx, typed values, tenant isolation and bad input.

#include "conformance/world.hpp"

#include <atomic>
#include <limits>
#include <map>
#include <vector>

using namespace corocache;
using namespace corocache::test;

namespace shop {
struct Profile {
  std::string name;
  int age = 0;
  std::vector<std::string> tags;
  bool operator==(const Profile&) const = default;
};
void to_json(nlohmann::json& j, const Profile& p) {
  j = {{"name", p.name}, {"age", p.age}, {"tags", p.tags}};
}
void from_json(const nlohmann::json& j, Profile& p) {
  j.at("name").get_to(p.name);
  j.at("age").get_to(p.age);
  j.at("tags").get_to(p.tags);
}
}  // namespace shop

TEMPLATE_LIST_TEST_CASE("a stored value is read back until it is deleted", "[values]", TestedBackends) {
  World<TestType> w;
  auto users = w.cache.tenant("acme").ns("users");
  CHECK(w.sync(users.set_key("u1", "payload")));
  CHECK(w.sync(users.get_key("u1")) == std::optional<std::string>("payload"));
  CHECK(w.sync(users.delete_key("u1")));
  CHECK_FALSE(w.sync(users.get_key("u1")).has_value());
  CHECK_FALSE(w.sync(users.delete_key("u1")));
}

TEMPLATE_LIST_TEST_CASE("an unknown key is a miss, not an error", "[values]", TestedBackends) {
  World<TestType> w;
  CHECK(w.sync(w.cache.tenant("acme").get_key("never-set")) == std::nullopt);
}

TEMPLATE_LIST_TEST_CASE("set_key overwrites the value and its expiry", "[values][expiry]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  SetOptions short_lived{.expire = 150ms};
  CHECK(w.sync(s.set_key("k", "old", short_lived)));
  CHECK(w.sync(s.set_key("k", "new")));
  w.sleep(300ms);
  CHECK(w.sync(s.get_key("k")) == std::optional<std::string>("new"));
}

TEMPLATE_LIST_TEST_CASE("values of any bytes round-trip, including empty and large ones", "[values]",
                        TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  const std::string binary("\0\x01\xff\r\n$*:{}", 11);
  const std::string large(1 << 20, 'x');
  CHECK(w.sync(s.set_key("binary", binary)));
  CHECK(w.sync(s.set_key("empty", "")));
  CHECK(w.sync(s.set_key("large", large)));
  CHECK(w.sync(s.get_key("binary")) == std::optional<std::string>(binary));
  CHECK(w.sync(s.get_key("empty")) == std::optional<std::string>(""));
  CHECK(w.sync(s.get_key("large")) == std::optional<std::string>(large));
}

TEMPLATE_LIST_TEST_CASE("key names may hold any bytes, ':' and braces included, without aliasing",
                        "[values][keys]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  const std::vector<std::string> names = {
      "a:b", "a",     "b",  "{acme:users}", "}:v:x", std::string("nul\0byte", 8), "nul", "*",
      "?",   "[a-z]", "\\", "sp ace\n",     ""};
  for (const auto& name : names) CHECK(w.sync(s.set_key(name, "value of " + name)));
  for (const auto& name : names) {
    INFO("name: " << name);
    CHECK(w.sync(s.get_key(name)) == std::optional<std::string>("value of " + name));
  }
  // A name that looks like another scope's key stays in this scope.
  CHECK(w.sync(w.cache.tenant("acme").ns("users").get_key("x")) == std::nullopt);
}

TEMPLATE_LIST_TEST_CASE("a value is never returned after its expiry", "[values][expiry]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  SetOptions o{.expire = 100ms};
  CHECK(w.sync(s.set_key("k", "v", o)));
  CHECK(w.sync(s.get_key("k")).has_value());
  w.sleep(250ms);
  CHECK(w.sync(s.get_key("k")) == std::nullopt);
  CHECK_FALSE(w.sync(s.delete_key("k")));
}

TEMPLATE_LIST_TEST_CASE("refresh_key extends a live key and reports a missing one", "[values][expiry]",
                        TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  SetOptions o{.expire = 200ms};
  CHECK(w.sync(s.set_key("k", "v", o)));
  CHECK(w.sync(s.refresh_key("k", 10s)));
  w.sleep(350ms);
  CHECK(w.sync(s.get_key("k")) == std::optional<std::string>("v"));
  CHECK_FALSE(w.sync(s.refresh_key("missing", 10s)));

  CHECK(w.sync(s.refresh_key("k", 100ms)));  // refresh can shorten, too
  w.sleep(250ms);
  CHECK(w.sync(s.get_key("k")) == std::nullopt);
  CHECK_FALSE(w.sync(s.refresh_key("k", 10s)));  // an expired key cannot be revived
}

TEMPLATE_LIST_TEST_CASE("nx stores only when no live value exists", "[values][nx]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  SetOptions nx{.expire = 150ms, .nx = true};
  CHECK(w.sync(s.set_key("k", "first", nx)));
  CHECK_FALSE(w.sync(s.set_key("k", "second", nx)));
  CHECK(w.sync(s.get_key("k")) == std::optional<std::string>("first"));
  w.sleep(300ms);
  CHECK(w.sync(s.set_key("k", "after-expiry", nx)));  // an expired value counts as absent
  CHECK(w.sync(s.get_key("k")) == std::optional<std::string>("after-expiry"));
}

TEMPLATE_LIST_TEST_CASE("of 64 concurrent nx sets on two threads exactly one wins",
                        "[values][nx][concurrency]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  std::atomic<int> winners{0};
  w.run_concurrently(64, [&](int i) -> asio::awaitable<void> {
    SetOptions nx{.nx = true};
    const bool won = co_await s.set_key("race", "writer-" + std::to_string(i), nx);
    if (won) ++winners;
  });
  CHECK(winners == 1);
  const auto stored = w.sync(s.get_key("race"));
  REQUIRE(stored.has_value());
  CHECK(stored->starts_with("writer-"));
}

TEMPLATE_LIST_TEST_CASE("typed values round-trip through nlohmann::json", "[values][typed]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  const shop::Profile profile{"Ada", 36, {"admin", "ops"}};
  SetOptions o{.expire = 5min};
  CHECK(w.sync(s.set("profile:7", profile, o)));
  CHECK(w.sync(s.template get<shop::Profile>("profile:7")) == std::optional<shop::Profile>(profile));

  const std::vector<int> numbers{1, 2, 3};
  const std::map<std::string, double> prices{{"a", 1.5}, {"b", -2.25}};
  CHECK(w.sync(s.set("numbers", numbers)));
  CHECK(w.sync(s.set("prices", prices)));
  CHECK(w.sync(s.template get<std::vector<int>>("numbers")) == std::optional<std::vector<int>>(numbers));
  CHECK(w.sync(s.template get<std::map<std::string, double>>("prices")) == std::optional(prices));
  CHECK(w.sync(s.template get<int>("missing")) == std::nullopt);
}

TEMPLATE_LIST_TEST_CASE("a value that does not decode as the requested type is a decode_error",
                        "[values][typed]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  CHECK(w.sync(s.set_key("not-json", "{oops")));
  CHECK(w.sync(s.set("a-string", std::string("text"))));
  CHECK_THROWS_AS(w.sync(s.template get<int>("not-json")), decode_error);
  CHECK_THROWS_AS(w.sync(s.template get<shop::Profile>("a-string")), decode_error);
  CHECK_THROWS_AS(w.sync(s.template get<int>("a-string")), std::invalid_argument);
}

TEMPLATE_LIST_TEST_CASE("tenants, namespaces and the global scope never see each other's values",
                        "[values][tenancy]", TestedBackends) {
  World<TestType> w;
  auto acme = w.cache.tenant("acme");
  auto acme_users = acme.ns("users");
  auto beta = w.cache.tenant("beta");
  auto global = w.cache.global();
  CHECK(w.sync(acme.set_key("k", "acme")));
  CHECK(w.sync(acme_users.set_key("k", "acme-users")));
  CHECK(w.sync(beta.set_key("k", "beta")));
  CHECK(w.sync(global.set_key("k", "global")));

  CHECK(w.sync(acme.get_key("k")) == std::optional<std::string>("acme"));
  CHECK(w.sync(acme_users.get_key("k")) == std::optional<std::string>("acme-users"));
  CHECK(w.sync(beta.get_key("k")) == std::optional<std::string>("beta"));
  CHECK(w.sync(global.get_key("k")) == std::optional<std::string>("global"));
  CHECK(w.sync(w.cache.tenant("gamma").get_key("k")) == std::nullopt);

  // Deleting or refreshing in one scope leaves the others alone.
  CHECK(w.sync(beta.delete_key("k")));
  CHECK(w.sync(acme.get_key("k")) == std::optional<std::string>("acme"));
  CHECK(w.sync(global.get_key("k")) == std::optional<std::string>("global"));
  CHECK_FALSE(w.sync(beta.refresh_key("k", 1h)));
  CHECK(acme.tenant() == "acme");
  CHECK(acme_users.namespace_name() == "users");
  CHECK(acme.namespace_name() == "default");
}

TEMPLATE_LIST_TEST_CASE("bad tenant, namespace and prefix names are rejected before any I/O",
                        "[values][validation]", TestedBackends) {
  World<TestType> w;
  for (const char* bad : {"", "a:b", "a{b", "a}b", "a*", "a?b", "a[b]", "a\\b", "a b", "~global"}) {
    INFO("name: '" << bad << "'");
    CHECK_THROWS_AS(w.cache.tenant(bad), invalid_name);
    CHECK_THROWS_AS(w.cache.tenant("acme").ns(bad), invalid_name);
    CHECK_THROWS_AS(
        Cache<TestType>(BackendFactory<TestType>::make(w.io.get_executor()), CacheOptions{.prefix = bad}),
        invalid_name);
  }
  CHECK_THROWS_AS(w.cache.tenant(std::string("a\0b", 3)), invalid_name);
  CHECK_THROWS_AS(w.cache.tenant(std::string("a\nb")), std::invalid_argument);
  // Nothing was stored by the rejected call.
  CHECK(w.sync(w.cache.tenant("acme").get_key("k")) == std::nullopt);
}

TEMPLATE_LIST_TEST_CASE("a zero or negative expiry or ttl is rejected before any I/O", "[values][validation]",
                        TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  for (Duration bad : {Duration(0), Duration(-1), Duration(-5000)}) {
    SetOptions o{.expire = bad};
    CHECK_THROWS_AS(s.set_key("k", "v", o), std::invalid_argument);
    CHECK_THROWS_AS(s.set("k", 1, o), std::invalid_argument);
    CHECK_THROWS_AS(s.refresh_key("k", bad), std::invalid_argument);
    CHECK_THROWS_AS(s.attempt_distributed_lock("l", bad), std::invalid_argument);
    CHECK_THROWS_AS(
        w.cache.func_cache(
            "f", [](int x) -> asio::awaitable<int> { co_return x; }, FuncCacheOptions{.expire = bad}),
        std::invalid_argument);
  }
  CHECK_THROWS_AS(s.pop_from_queue("q", Duration(-1)), std::invalid_argument);
  CHECK(w.sync(s.get_key("k")) == std::nullopt);
}

TEMPLATE_LIST_TEST_CASE("a value that cannot be encoded as JSON is rejected before any I/O",
                        "[values][validation]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  CHECK_THROWS_AS(s.set("k", std::string("\xff\xfe not utf-8")), std::invalid_argument);
  // nlohmann would print NaN and infinities as null: a value that never decodes as a double.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  CHECK_THROWS_AS(s.set("k", nan), std::invalid_argument);
  CHECK_THROWS_AS(s.set("k", -inf, 1min), std::invalid_argument);
  CHECK_THROWS_AS(s.set("k", std::numeric_limits<float>::infinity()), std::invalid_argument);
  CHECK_THROWS_AS(s.set("k", std::vector<double>{1.0, nan}), std::invalid_argument);
  CHECK_THROWS_AS(s.set("k", std::map<std::string, double>{{"x", inf}}), std::invalid_argument);
  auto batch = s.batch();
  batch.set("other", 1.5);
  CHECK_THROWS_AS(batch.set("k", nan), std::invalid_argument);
  w.sync(batch.commit());  // the batch keeps what was queued before the bad value
  CHECK(w.sync(s.get_key("k")) == std::nullopt);
  CHECK(w.sync(s.template get<double>("other")) == 1.5);
  // The largest finite double is a value like any other.
  const bool stored = w.sync(s.set("k", std::numeric_limits<double>::max()));
  CHECK(stored);
  CHECK(w.sync(s.template get<double>("k")) == std::numeric_limits<double>::max());
}

TEMPLATE_LIST_TEST_CASE("a waiting pop waits its own wait on a scope with a shorter timeout",
                        "[values][timeout]", TestedBackends) {
  World<TestType> w;
  auto hurried = w.cache.tenant("acme").with_timeout(1s);
  const auto start = std::chrono::steady_clock::now();
  // The scope's timeout bounds the trip (a fresh blocking connection on Redis), not the
  // wait the pop asked for, which is longer.
  const auto popped = w.sync(hurried.pop_from_queue("empty", 1500ms));
  CHECK_FALSE(popped.has_value());
  CHECK(std::chrono::steady_clock::now() - start >= 1500ms);
  // Fast calls on the same scope are unaffected.
  CHECK(w.sync(hurried.set_key("k", "v")));
  CHECK(w.sync(hurried.get_key("k")) == std::optional<std::string>("v"));
}
