// Backend contract, semantics: the behaviour of each operation (backend.hpp), asserted on
// the backend directly, so a backend that behaves differently from the others fails here
// even where the facade would hide it. Not run against NullBackend: it stores nothing by
// design (tests/unit/null_backend_test.cpp covers what it does instead).

#include "backend_contract/bench.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>

#include <algorithm>

using namespace corocache;
using namespace corocache::test;

namespace {
std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}
std::vector<std::string> strings(std::initializer_list<std::string> l) { return std::vector<std::string>(l); }
}  // namespace

TEMPLATE_TEST_CASE("a value is stored, read, replaced and erased", "[contract][values]", STORING_FLAVOURS) {
  Bench<TestType> w;
  auto& b = w.backend;
  const std::string k = w.keys.value("k");
  const std::string binary("\0\x01\xff\r\n$*:{}", 11);
  CHECK(w.sync(b.get(k)) == std::nullopt);
  CHECK(w.sync(b.set(k, "one", ttl(60s))));
  CHECK(w.sync(b.get(k)) == std::optional<std::string>("one"));
  CHECK(w.sync(b.set(k, binary, ttl(60s))));
  CHECK(w.sync(b.get(k)) == std::optional<std::string>(binary));
  CHECK(w.sync(b.erase(k)));
  CHECK_FALSE(w.sync(b.erase(k)));
  CHECK(w.sync(b.get(k)) == std::nullopt);
}

TEMPLATE_TEST_CASE("nx stores only when no live value exists", "[contract][values]", STORING_FLAVOURS) {
  Bench<TestType> w;
  auto& b = w.backend;
  const std::string k = w.keys.value("k");
  CHECK(w.sync(b.set(k, "first", nx(60s))));
  CHECK_FALSE(w.sync(b.set(k, "second", nx(60s))));
  CHECK(w.sync(b.get(k)) == std::optional<std::string>("first"));
  // An expired value does not count as live.
  const std::string short_lived = w.keys.value("short");
  CHECK(w.sync(b.set(short_lived, "old", ttl(50ms))));
  CHECK(w.eventually([&] { return w.sync(b.get(short_lived)) == std::nullopt; }));
  CHECK(w.sync(b.set(short_lived, "new", nx(60s))));
  CHECK(w.sync(b.get(short_lived)) == std::optional<std::string>("new"));
}

TEMPLATE_TEST_CASE("values expire after their ttl, and expire gives a live value a new one",
                   "[contract][values]", STORING_FLAVOURS) {
  Bench<TestType> w;
  auto& b = w.backend;
  const std::string k = w.keys.value("k");
  const std::string missing = w.keys.value("missing");
  CHECK_FALSE(w.sync(b.expire(missing, 60s)));
  CHECK(w.sync(b.get(missing)) == std::nullopt);  // expire did not create it
  CHECK(w.sync(b.set(k, "v", ttl(60s))));
  CHECK(w.sync(b.expire(k, 100ms)));
  CHECK(w.eventually([&] { return w.sync(b.get(k)) == std::nullopt; }));
  CHECK_FALSE(w.sync(b.expire(k, 60s)));  // an expired value is missing
  CHECK_FALSE(w.sync(b.erase(k)));
}

TEMPLATE_TEST_CASE("a read-limited value goes with its last read", "[contract][values]", STORING_FLAVOURS) {
  Bench<TestType> w;
  auto& b = w.backend;
  const std::string k = w.keys.value("k");
  CHECK(w.sync(b.set(k, "v", reads(2))));
  CHECK(w.sync(b.get(k)) == std::optional<std::string>("v"));
  CHECK(w.sync(b.get(k)) == std::optional<std::string>("v"));
  CHECK(w.sync(b.get(k)) == std::nullopt);
  CHECK_FALSE(w.sync(b.erase(k)));
}

TEMPLATE_TEST_CASE("an index lists the values whose latest store named it", "[contract][indices]",
                   STORING_FLAVOURS) {
  Bench<TestType> w;
  auto& b = w.backend;
  const std::string i = w.keys.index("i"), j = w.keys.index("j");
  const std::string k1 = w.keys.value("k1"), k2 = w.keys.value("k2"), k3 = w.keys.value("k3");
  CHECK(w.sync(b.set(k1, "1", indexed({i}))));
  CHECK(w.sync(b.set(k2, "2", indexed({i, j}))));
  CHECK(w.sync(b.set(k3, "3", indexed({i}))));
  CHECK(sorted(w.sync(b.index_members(i))) == sorted(strings({k1, k2, k3})));
  // A store replaces the memberships; an erase removes them.
  CHECK(w.sync(b.set(k1, "1b", indexed({j}))));
  CHECK(w.sync(b.erase(k3)));
  CHECK(sorted(w.sync(b.index_members(i))) == strings({k2}));
  CHECK(sorted(w.sync(b.index_members(j))) == sorted(strings({k1, k2})));
  // erase_index removes the live members and the index.
  CHECK(w.sync(b.erase_index(j)) == 2);
  CHECK(w.sync(b.get(k1)) == std::nullopt);
  CHECK(w.sync(b.get(k2)) == std::nullopt);
  CHECK(w.sync(b.index_members(j)).empty());
  CHECK(w.sync(b.index_members(i)).empty());
  CHECK(w.sync(b.erase_index(j)) == 0);
}

TEMPLATE_TEST_CASE("a queue hands out its elements oldest first, once each", "[contract][queues]",
                   STORING_FLAVOURS) {
  Bench<TestType> w;
  auto& b = w.backend;
  const std::string q = w.keys.queue("q"), other = w.keys.queue("other");
  w.sync(b.push(q, "a"));
  w.sync(b.push(q, ""));
  w.sync(b.push(q, "c"));
  w.sync(b.push(other, "x"));
  CHECK(w.sync(b.pop(q, 0ms)) == std::optional<std::string>("a"));
  CHECK(w.sync(b.pop(q, 0ms)) == std::optional<std::string>(""));
  CHECK(w.sync(b.pop(q, 0ms)) == std::optional<std::string>("c"));
  CHECK(w.sync(b.pop(q, 0ms)) == std::nullopt);
  CHECK(w.sync(b.pop(other, 0ms)) == std::optional<std::string>("x"));
}

TEMPLATE_TEST_CASE("a waiting pop gets an element pushed while it waits", "[contract][queues]",
                   STORING_FLAVOURS) {
  using namespace boost::asio::experimental::awaitable_operators;
  Bench<TestType> w;
  auto& b = w.backend;
  const std::string q = w.keys.queue("q");
  auto push_later = [&]() -> asio::awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor, 100ms);
    co_await timer.async_wait(asio::use_awaitable);
    co_await b.push(q, "late");
  };
  auto both = [&]() -> asio::awaitable<std::optional<std::string>> {
    std::optional<std::string> popped = co_await (b.pop(q, 10s) && push_later());
    co_return popped;
  };
  CHECK(w.sync(both()) == std::optional<std::string>("late"));
  CHECK(w.sync(b.pop(q, 0ms)) == std::nullopt);
}

TEMPLATE_TEST_CASE("a lock has one holder until released by its token or expired", "[contract][locks]",
                   STORING_FLAVOURS) {
  Bench<TestType> w;
  auto& b = w.backend;
  const std::string l = w.keys.lock("l");
  CHECK(w.sync(b.try_lock(l, "alice", 60s)));
  CHECK_FALSE(w.sync(b.try_lock(l, "bob", 60s)));
  CHECK_FALSE(w.sync(b.try_lock(l, "alice", 60s)));  // not reentrant
  CHECK_FALSE(w.sync(b.unlock(l, "bob")));
  CHECK(w.sync(b.unlock(l, "alice")));
  CHECK_FALSE(w.sync(b.unlock(l, "alice")));
  CHECK(w.sync(b.try_lock(l, "bob", 100ms)));
  CHECK(w.eventually([&] { return w.sync(b.try_lock(l, "carol", 60s)); }));
  CHECK_FALSE(w.sync(b.unlock(l, "bob")));  // bob's lock expired: carol's stays
  CHECK(w.sync(b.unlock(l, "carol")));
}

TEMPLATE_TEST_CASE("erase_prefix removes every kind of key under the prefix and nothing else",
                   "[contract][bulk]", STORING_FLAVOURS) {
  Bench<TestType> w;
  auto& b = w.backend;
  const std::string in = w.keys.scope("n"),
                    out = w.keys.scope("n2");  // "...{t:n}:" is no prefix of "...{t:n2}:"
  CHECK(w.sync(b.set(w.keys.value("a"), "1", ttl(60s))));
  CHECK(w.sync(b.set(w.keys.value("b"), "2", reads(5))));
  w.sync(b.push(w.keys.queue("q"), "m1"));
  w.sync(b.push(w.keys.queue("q"), "m2"));
  CHECK(w.sync(b.try_lock(w.keys.lock("l"), "t", 60s)));
  CHECK(w.sync(b.set(w.keys.value("a", "n2"), "kept", ttl(60s))));
  w.sync(b.push(w.keys.queue("q", "n2"), "kept"));
  CHECK(w.sync(b.try_lock(w.keys.lock("l", "n2"), "t", 60s)));
  // Two values, one queue, one lock.
  CHECK(w.sync(b.erase_prefix(in)) == 4);
  CHECK(w.sync(b.get(w.keys.value("a"))) == std::nullopt);
  CHECK(w.sync(b.get(w.keys.value("b"))) == std::nullopt);
  CHECK(w.sync(b.pop(w.keys.queue("q"), 0ms)) == std::nullopt);
  CHECK(w.sync(b.try_lock(w.keys.lock("l"), "u", 60s)));
  CHECK(w.sync(b.get(w.keys.value("a", "n2"))) == std::optional<std::string>("kept"));
  CHECK(w.sync(b.pop(w.keys.queue("q", "n2"), 0ms)) == std::optional<std::string>("kept"));
  CHECK_FALSE(w.sync(b.try_lock(w.keys.lock("l", "n2"), "u", 60s)));
  CHECK(w.sync(b.erase_prefix(out + "nothing-here:")) == 0);
}

TEMPLATE_TEST_CASE("erase_prefix takes index memberships with the values", "[contract][bulk][indices]",
                   STORING_FLAVOURS) {
  Bench<TestType> w;
  auto& b = w.backend;
  // One scope (one hash tag: a Cluster's call keeps its keys in one slot).
  const std::string i = w.keys.index("i"), outside = w.keys.value("v");
  CHECK(w.sync(b.set(w.keys.value("a"), "1", indexed({i}))));
  CHECK(w.sync(b.set(outside, "2", indexed({i}))));
  w.sync(b.erase_prefix(w.keys.value("a")));  // the value a only, not the index nor v
  CHECK(w.sync(b.index_members(i)) == strings({outside}));
}

TEMPLATE_TEST_CASE("erase_if removes the live values its predicate accepts, up to the limit",
                   "[contract][bulk]", STORING_FLAVOURS) {
  Bench<TestType> w;
  auto& b = w.backend;
  const std::string prefix = w.keys.value("");
  for (const char* name : {"a", "b", "c", "d"}) CHECK(w.sync(b.set(w.keys.value(name), "drop", ttl(60s))));
  CHECK(w.sync(b.set(w.keys.value("keep"), "keep", reads(1))));
  CHECK(w.sync(b.set(w.keys.value("x", "n2"), "drop", ttl(60s))));  // outside the prefix
  w.sync(b.push(w.keys.queue("q"), "drop"));                        // not a value
  std::vector<std::string> seen;
  EntryPredicate drop = [&seen](std::string_view key, std::string_view value) {
    seen.emplace_back(key);
    return value == "drop";
  };
  CHECK(w.sync(b.erase_if(prefix, drop, 1)) == 1);
  CHECK(w.sync(b.erase_if(prefix, drop, -1)) == 3);
  CHECK(w.sync(b.erase_if(prefix, drop, -1)) == 0);
  // The predicate saw full keys, only under the prefix; reading for it consumed no read.
  CHECK(std::all_of(seen.begin(), seen.end(), [&](const std::string& k) { return k.starts_with(prefix); }));
  CHECK(std::find(seen.begin(), seen.end(), w.keys.value("keep")) != seen.end());
  CHECK(w.sync(b.get(w.keys.value("keep"))) == std::optional<std::string>("keep"));
  CHECK(w.sync(b.get(w.keys.value("x", "n2"))) == std::optional<std::string>("drop"));
  CHECK(w.sync(b.pop(w.keys.queue("q"), 0ms)) == std::optional<std::string>("drop"));
  for (const char* name : {"a", "b", "c", "d"}) CHECK(w.sync(b.get(w.keys.value(name))) == std::nullopt);
}

TEMPLATE_TEST_CASE("commit applies a batch's operations in order", "[contract][batch]", STORING_FLAVOURS) {
  Bench<TestType> w;
  auto& b = w.backend;
  const std::string a = w.keys.value("a"), c = w.keys.value("c"), gone = w.keys.value("gone");
  const std::string i = w.keys.index("i"), q = w.keys.queue("q");
  CHECK(w.sync(b.set(gone, "old", ttl(60s))));
  CHECK(w.sync(b.set(c, "old", ttl(60s))));
  std::vector<BatchOp> ops;
  ops.emplace_back(batch_op::Store{a, "1", ttl(60s)});
  ops.emplace_back(batch_op::Store{a, "2", indexed({i})});
  ops.emplace_back(batch_op::Push{q, "x"});
  ops.emplace_back(batch_op::Push{q, "y"});
  ops.emplace_back(batch_op::Erase{gone});
  ops.emplace_back(batch_op::Expire{c, 100ms});
  ops.emplace_back(batch_op::Store{c, "nx", nx(60s)});  // c is still live: not stored
  w.sync(b.commit(std::move(ops)));
  CHECK(w.sync(b.get(a)) == std::optional<std::string>("2"));
  CHECK(w.sync(b.index_members(i)) == strings({a}));
  CHECK(w.sync(b.get(gone)) == std::nullopt);
  CHECK(w.sync(b.pop(q, 0ms)) == std::optional<std::string>("x"));
  CHECK(w.sync(b.pop(q, 0ms)) == std::optional<std::string>("y"));
  CHECK(w.sync(b.get(c)) == std::optional<std::string>("old"));
  CHECK(w.eventually([&] { return w.sync(b.get(c)) == std::nullopt; }));
}

TEMPLATE_TEST_CASE("of concurrent nx stores and lock attempts exactly one wins", "[contract][atomicity]",
                   STORING_FLAVOURS) {
  Bench<TestType> w;
  auto& b = w.backend;
  constexpr int n = 16;
  int stores_done = 0, stored = 0, attempts_done = 0, locked = 0;
  // All in flight at once (on Redis: pipelined on one connection); one io thread, so the
  // counters need no lock.
  for (int i = 0; i < n; ++i) {
    asio::co_spawn(w.io, b.set(w.keys.value("k"), std::to_string(i), nx(60s)),
                   [&](std::exception_ptr e, bool ok) {
                     ++stores_done;
                     if (!e && ok) ++stored;
                   });
    asio::co_spawn(w.io, b.try_lock(w.keys.lock("l"), "token" + std::to_string(i), 60s),
                   [&](std::exception_ptr e, bool ok) {
                     ++attempts_done;
                     if (!e && ok) ++locked;
                   });
  }
  CHECK(w.eventually([&] { return stores_done == n && attempts_done == n; }));
  CHECK(stored == 1);
  CHECK(locked == 1);
}
