// Conformance: indices, FIFO queues and distributed locks, each with tenant isolation.

#include "conformance/world.hpp"

#include <boost/asio/detached.hpp>

#include <atomic>
#include <mutex>
#include <set>
#include <vector>

using namespace corocache;
using namespace corocache::test;
using Names = std::vector<std::string>;

// --- indices ----------------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("an index lists exactly the live keys set with it", "[indices]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme").ns("users");
  SetOptions active{.indices = indices("active")};
  SetOptions active_and_admin{.indices = indices("active", "admin")};
  CHECK(w.sync(s.set_key("u1", "1", active)));
  CHECK(w.sync(s.set_key("u2", "2", active_and_admin)));
  CHECK(w.sync(s.set_key("u3", "3")));
  CHECK(w.sync(s.set_key("a:b\nc", "4", active)));  // names with any bytes are listed as given
  CHECK(w.sync(s.list_keys_by_index("active")) == Names{"a:b\nc", "u1", "u2"});
  CHECK(w.sync(s.list_keys_by_index("admin")) == Names{"u2"});
  CHECK(w.sync(s.list_keys_by_index("nobody")).empty());
}

TEMPLATE_LIST_TEST_CASE("a deleted key disappears from its index", "[indices]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  SetOptions active{.indices = indices("active")};
  CHECK(w.sync(s.set_key("u1", "1", active)));
  CHECK(w.sync(s.set_key("u2", "2", active)));
  CHECK(w.sync(s.delete_key("u1")));
  CHECK(w.sync(s.list_keys_by_index("active")) == Names{"u2"});
}

TEMPLATE_LIST_TEST_CASE("an expired key disappears from its index", "[indices][expiry]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  SetOptions short_lived{.expire = 100ms, .indices = indices("active")};
  SetOptions long_lived{.indices = indices("active")};
  CHECK(w.sync(s.set_key("short", "1", short_lived)));
  CHECK(w.sync(s.set_key("long", "2", long_lived)));
  w.sleep(250ms);
  CHECK(w.sync(s.list_keys_by_index("active")) == Names{"long"});
}

TEMPLATE_LIST_TEST_CASE("a refreshed key stays listed past its original expiry", "[indices][expiry]",
                        TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  SetOptions short_lived{.expire = 150ms, .indices = indices("active")};
  CHECK(w.sync(s.set_key("k", "1", short_lived)));
  CHECK(w.sync(s.refresh_key("k", 10s)));
  w.sleep(300ms);
  CHECK(w.sync(s.list_keys_by_index("active")) == Names{"k"});
}

TEMPLATE_LIST_TEST_CASE("setting a key again replaces its index memberships", "[indices]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  SetOptions in_a{.indices = indices("a")};
  SetOptions in_b{.indices = indices("b")};
  CHECK(w.sync(s.set_key("k", "1", in_a)));
  CHECK(w.sync(s.set_key("k", "2", in_b)));
  CHECK(w.sync(s.list_keys_by_index("a")).empty());
  CHECK(w.sync(s.list_keys_by_index("b")) == Names{"k"});
  CHECK(w.sync(s.set_key("k", "3")));  // a plain set leaves no membership behind
  CHECK(w.sync(s.list_keys_by_index("b")).empty());
  CHECK(w.sync(s.get_key("k")) == std::optional<std::string>("3"));
}

TEMPLATE_LIST_TEST_CASE("a failed nx set leaves the existing key's indices alone", "[indices][nx]",
                        TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  SetOptions in_a{.indices = indices("a")};
  SetOptions nx_in_b{.nx = true, .indices = indices("b")};
  CHECK(w.sync(s.set_key("k", "1", in_a)));
  CHECK_FALSE(w.sync(s.set_key("k", "2", nx_in_b)));
  CHECK(w.sync(s.list_keys_by_index("a")) == Names{"k"});
  CHECK(w.sync(s.list_keys_by_index("b")).empty());
}

TEMPLATE_LIST_TEST_CASE("an indexed key is read like any other key", "[indices]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  SetOptions active{.indices = indices("active")};
  CHECK(w.sync(s.set_key("k", "value", active)));
  CHECK(w.sync(s.get_key("k")) == std::optional<std::string>("value"));
  CHECK(w.sync(s.refresh_key("k", 1h)));
  CHECK(w.sync(s.get_key("k")) == std::optional<std::string>("value"));
}

TEMPLATE_LIST_TEST_CASE("indices are private to their tenant and namespace", "[indices][tenancy]",
                        TestedBackends) {
  World<TestType> w;
  SetOptions active{.indices = indices("active")};
  CHECK(w.sync(w.cache.tenant("acme").set_key("a", "1", active)));
  CHECK(w.sync(w.cache.tenant("beta").set_key("b", "2", active)));
  CHECK(w.sync(w.cache.tenant("acme").ns("other").set_key("c", "3", active)));
  CHECK(w.sync(w.cache.global().set_key("g", "4", active)));
  CHECK(w.sync(w.cache.tenant("acme").list_keys_by_index("active")) == Names{"a"});
  CHECK(w.sync(w.cache.tenant("beta").list_keys_by_index("active")) == Names{"b"});
  CHECK(w.sync(w.cache.tenant("acme").ns("other").list_keys_by_index("active")) == Names{"c"});
  CHECK(w.sync(w.cache.global().list_keys_by_index("active")) == Names{"g"});
}

// --- queues -----------------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("a queue hands out elements first in, first out", "[queues]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  for (const char* m : {"msg-1", "msg-2", "msg-3"}) w.sync(s.push_to_queue("emails", m));
  CHECK(w.sync(s.pop_from_queue("emails")) == std::optional<std::string>("msg-1"));
  w.sync(s.push_to_queue("emails", std::string("msg-\0-4", 7)));
  CHECK(w.sync(s.pop_from_queue("emails")) == std::optional<std::string>("msg-2"));
  CHECK(w.sync(s.pop_from_queue("emails")) == std::optional<std::string>("msg-3"));
  CHECK(w.sync(s.pop_from_queue("emails")) == std::optional<std::string>(std::string("msg-\0-4", 7)));
  CHECK(w.sync(s.pop_from_queue("emails")) == std::nullopt);
}

TEMPLATE_LIST_TEST_CASE("queues are private to their tenant and namespace", "[queues][tenancy]",
                        TestedBackends) {
  World<TestType> w;
  w.sync(w.cache.tenant("acme").push_to_queue("q", "acme"));
  w.sync(w.cache.global().push_to_queue("q", "global"));
  CHECK(w.sync(w.cache.tenant("beta").pop_from_queue("q")) == std::nullopt);
  CHECK(w.sync(w.cache.tenant("acme").ns("other").pop_from_queue("q")) == std::nullopt);
  CHECK(w.sync(w.cache.tenant("acme").pop_from_queue("q")) == std::optional<std::string>("acme"));
  CHECK(w.sync(w.cache.global().pop_from_queue("q")) == std::optional<std::string>("global"));
}

TEMPLATE_LIST_TEST_CASE("a queue and a value of the same name do not interfere", "[queues][keys]",
                        TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  CHECK(w.sync(s.set_key("jobs", "a value")));
  w.sync(s.push_to_queue("jobs", "a job"));
  CHECK(w.sync(s.get_key("jobs")) == std::optional<std::string>("a value"));
  CHECK(w.sync(s.pop_from_queue("jobs")) == std::optional<std::string>("a job"));
}

TEMPLATE_LIST_TEST_CASE("a waiting pop receives an element pushed while it waits", "[queues][wait]",
                        TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  std::optional<std::string> received;
  w.run_threads(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        asio::co_spawn(
            ex,
            [&]() -> asio::awaitable<void> {
              asio::steady_timer t(ex, 100ms);
              co_await t.async_wait(asio::use_awaitable);
              co_await s.push_to_queue("jobs", "late job");
            },
            asio::detached);
        received = co_await s.pop_from_queue("jobs", 5s);
      },
      1);
  CHECK(received == std::optional<std::string>("late job"));
}

TEMPLATE_LIST_TEST_CASE("a waiting pop on an empty queue gives up after its wait", "[queues][wait]",
                        TestedBackends) {
  World<TestType> w;
  const auto start = std::chrono::steady_clock::now();
  CHECK(w.sync(w.cache.tenant("acme").pop_from_queue("empty", 300ms)) == std::nullopt);
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(waited >= 250ms);
  CHECK(waited < 5s);
}

TEMPLATE_LIST_TEST_CASE("each pushed element goes to exactly one of many consumers", "[queues][concurrency]",
                        TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  constexpr int elements = 200;
  for (int i = 0; i < elements; ++i) w.sync(s.push_to_queue("work", std::to_string(i)));
  std::mutex mutex;
  std::multiset<std::string> seen;
  w.run_concurrently(8, [&](int) -> asio::awaitable<void> {
    for (;;) {
      const auto item = co_await s.pop_from_queue("work");
      if (!item) break;
      std::lock_guard lock(mutex);
      seen.insert(*item);
    }
  });
  CHECK(seen.size() == elements);
  CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == elements);
}

// --- locks ------------------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("a lock is exclusive until its owner releases it", "[locks]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  auto first = w.sync(s.attempt_distributed_lock("nightly-job", 30s));
  REQUIRE(first.has_value());
  CHECK(first->name() == "nightly-job");
  CHECK(first->token().size() == 32);
  CHECK_FALSE(w.sync(s.attempt_distributed_lock("nightly-job", 30s)).has_value());
  CHECK(w.sync(s.release_distributed_lock(*first)));
  CHECK_FALSE(w.sync(s.release_distributed_lock(*first)));  // already released
  auto second = w.sync(s.attempt_distributed_lock("nightly-job", 30s));
  REQUIRE(second.has_value());
  CHECK(second->token() != first->token());
}

TEMPLATE_LIST_TEST_CASE("a lock expires after its ttl", "[locks][expiry]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  REQUIRE(w.sync(s.attempt_distributed_lock("job", 100ms)).has_value());
  w.sleep(250ms);
  CHECK(w.sync(s.attempt_distributed_lock("job", 30s)).has_value());
}

TEMPLATE_LIST_TEST_CASE("a stale owner cannot release the lock of the next owner", "[locks][expiry]",
                        TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  auto stale = w.sync(s.attempt_distributed_lock("job", 100ms));
  REQUIRE(stale.has_value());
  w.sleep(250ms);
  auto current = w.sync(s.attempt_distributed_lock("job", 30s));
  REQUIRE(current.has_value());
  CHECK_FALSE(w.sync(s.release_distributed_lock(*stale)));
  CHECK_FALSE(w.sync(s.attempt_distributed_lock("job", 30s)).has_value());  // still held
  CHECK(w.sync(s.release_distributed_lock(*current)));
}

TEMPLATE_LIST_TEST_CASE("of 64 concurrent lock attempts on two threads exactly one succeeds",
                        "[locks][concurrency]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  std::atomic<int> owners{0};
  w.run_concurrently(64, [&](int) -> asio::awaitable<void> {
    const auto lock = co_await s.attempt_distributed_lock("contended", 30s);
    if (lock) ++owners;
  });
  CHECK(owners == 1);
}

TEMPLATE_LIST_TEST_CASE("locks are private to their tenant and cannot be released from another scope",
                        "[locks][tenancy]", TestedBackends) {
  World<TestType> w;
  auto acme = w.cache.tenant("acme");
  auto beta = w.cache.tenant("beta");
  auto lock = w.sync(acme.attempt_distributed_lock("job", 30s));
  REQUIRE(lock.has_value());
  auto other = w.sync(beta.attempt_distributed_lock("job", 30s));
  CHECK(other.has_value());  // same name, other tenant: a different lock
  CHECK(w.sync(w.cache.global().attempt_distributed_lock("job", 30s)).has_value());
  CHECK_THROWS_AS(beta.release_distributed_lock(*lock), std::invalid_argument);
  CHECK_THROWS_AS(acme.ns("other").release_distributed_lock(*lock), std::invalid_argument);
  CHECK_FALSE(w.sync(acme.attempt_distributed_lock("job", 30s)).has_value());  // still held
  CHECK(w.sync(acme.release_distributed_lock(*lock)));
}

TEMPLATE_LIST_TEST_CASE("a lock and a value of the same name do not interfere", "[locks][keys]",
                        TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  CHECK(w.sync(s.set_key("job", "value")));
  auto lock = w.sync(s.attempt_distributed_lock("job", 30s));
  REQUIRE(lock.has_value());
  CHECK(w.sync(s.get_key("job")) == std::optional<std::string>("value"));
  CHECK(w.sync(s.delete_key("job")));
  CHECK_FALSE(w.sync(s.attempt_distributed_lock("job", 30s)).has_value());
}
