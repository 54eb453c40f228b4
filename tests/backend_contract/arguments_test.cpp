// Backend contract, arguments: every argument the contract rejects is rejected by every
// backend with the same exception type and message, when awaited (creating the awaitable
// does not throw), before any I/O, and without side effects; the edge values the contract
// allows are accepted everywhere.

#include "backend_contract/bench.hpp"

using namespace corocache;
using namespace corocache::test;

// Creating the awaitable must not throw (an eager throw escapes and fails the case); awaiting
// it must throw invalid_backend_argument with exactly `message`.
#define CHECK_REJECTED(bench, expr, message)                          \
  {                                                                   \
    auto op_ = (expr);                                                \
    CHECK((bench).rejection(std::move(op_)) == std::string(message)); \
  }

TEMPLATE_TEST_CASE("every key argument must not be empty", "[contract][arguments]", CONTRACT_FLAVOURS) {
  Bench<TestType> w;
  auto& b = w.backend;
  CHECK_REJECTED(w, b.set("", "v", ttl(1s)), "corocache: set: key must not be empty");
  CHECK_REJECTED(w, b.set(w.keys.value("k"), "v", indexed({w.keys.index("i"), ""})),
                 "corocache: set: index key must not be empty");
  CHECK_REJECTED(w, b.get(""), "corocache: get: key must not be empty");
  CHECK_REJECTED(w, b.erase(""), "corocache: erase: key must not be empty");
  CHECK_REJECTED(w, b.expire("", 1s), "corocache: expire: key must not be empty");
  CHECK_REJECTED(w, b.index_members(""), "corocache: index_members: index key must not be empty");
  CHECK_REJECTED(w, b.erase_index(""), "corocache: erase_index: index key must not be empty");
  CHECK_REJECTED(w, b.push("", "v"), "corocache: push: queue key must not be empty");
  CHECK_REJECTED(w, b.pop("", 0ms), "corocache: pop: queue key must not be empty");
  CHECK_REJECTED(w, b.try_lock("", "token", 1s), "corocache: try_lock: lock key must not be empty");
  CHECK_REJECTED(w, b.unlock("", "token"), "corocache: unlock: lock key must not be empty");
  CHECK(w.requests() == 0);
}

TEMPLATE_TEST_CASE("expiries and lock ttls must be positive", "[contract][arguments]", CONTRACT_FLAVOURS) {
  Bench<TestType> w;
  auto& b = w.backend;
  const std::string k = w.keys.value("k");
  CHECK_REJECTED(w, b.set(k, "v", ttl(0ms)), "corocache: set: ttl must be > 0, got 0 ms");
  CHECK_REJECTED(w, b.set(k, "v", ttl(-5ms)), "corocache: set: ttl must be > 0, got -5 ms");
  CHECK_REJECTED(w, b.set(k, "v", nx(0ms)), "corocache: set: ttl must be > 0, got 0 ms");
  // Stores that take RedisBackend's script path: the same rule, the same message.
  CHECK_REJECTED(w, b.set(k, "v", indexed({w.keys.index("i")}, 0ms)),
                 "corocache: set: ttl must be > 0, got 0 ms");
  CHECK_REJECTED(w, b.set(k, "v", reads(1, -1ms)), "corocache: set: ttl must be > 0, got -1 ms");
  CHECK_REJECTED(w, b.expire(k, 0ms), "corocache: expire: ttl must be > 0, got 0 ms");
  CHECK_REJECTED(w, b.expire(k, -1s), "corocache: expire: ttl must be > 0, got -1000 ms");
  CHECK_REJECTED(w, b.try_lock(w.keys.lock("l"), "token", 0ms),
                 "corocache: try_lock: ttl must be > 0, got 0 ms");
  CHECK_REJECTED(w, b.try_lock(w.keys.lock("l"), "token", -1ms),
                 "corocache: try_lock: ttl must be > 0, got -1 ms");
  // Arguments are checked in the order of the signature: the key before the ttl.
  CHECK_REJECTED(w, b.set("", "v", ttl(0ms)), "corocache: set: key must not be empty");
  CHECK(w.requests() == 0);
}

TEMPLATE_TEST_CASE("a pop's wait must not be negative", "[contract][arguments]", CONTRACT_FLAVOURS) {
  Bench<TestType> w;
  CHECK_REJECTED(w, w.backend.pop(w.keys.queue("q"), -1ms), "corocache: pop: wait must be >= 0, got -1 ms");
  CHECK_REJECTED(w, w.backend.pop(w.keys.queue("q"), Duration::min()),
                 "corocache: pop: wait must be >= 0, got " + std::to_string(Duration::min().count()) + " ms");
  CHECK(w.requests() == 0);
}

TEMPLATE_TEST_CASE("lock tokens must not be empty", "[contract][arguments]", CONTRACT_FLAVOURS) {
  Bench<TestType> w;
  CHECK_REJECTED(w, w.backend.try_lock(w.keys.lock("l"), "", 1s),
                 "corocache: try_lock: token must not be empty");
  CHECK_REJECTED(w, w.backend.unlock(w.keys.lock("l"), ""), "corocache: unlock: token must not be empty");
  CHECK(w.requests() == 0);
}

TEMPLATE_TEST_CASE("prefix removal needs a prefix, conditional removal a predicate", "[contract][arguments]",
                   CONTRACT_FLAVOURS) {
  Bench<TestType> w;
  auto& b = w.backend;
  CHECK_REJECTED(
      w, b.erase_prefix(""),
      "corocache: erase_prefix: prefix must not be empty (it would match every key of the backend)");
  CHECK_REJECTED(w, b.erase_if("", any_entry(), -1),
                 "corocache: erase_if: prefix must not be empty (it would match every key of the backend)");
  CHECK_REJECTED(w, b.erase_if(w.keys.base, EntryPredicate{}, -1),
                 "corocache: erase_if: predicate must not be empty");
  // Checked before the limit is looked at: a limit of 0 does not make a null predicate valid.
  CHECK_REJECTED(w, b.erase_if(w.keys.base, EntryPredicate{}, 0),
                 "corocache: erase_if: predicate must not be empty");
  CHECK(w.requests() == 0);
}

TEMPLATE_TEST_CASE("every operation of a batch obeys the rules of its single form", "[contract][arguments]",
                   CONTRACT_FLAVOURS) {
  Bench<TestType> w;
  auto& b = w.backend;
  const std::string k = w.keys.value("k");
  {
    std::vector<BatchOp> ops;
    ops.emplace_back(batch_op::Store{k, "v", ttl(1s)});
    ops.emplace_back(batch_op::Store{k, "v", ttl(0ms)});
    CHECK_REJECTED(w, b.commit(std::move(ops)),
                   "corocache: commit: operation 1 (store): ttl must be > 0, got 0 ms");
  }
  {
    std::vector<BatchOp> ops;
    ops.emplace_back(batch_op::Store{"", "v", ttl(1s)});
    CHECK_REJECTED(w, b.commit(std::move(ops)),
                   "corocache: commit: operation 0 (store): key must not be empty");
  }
  {
    std::vector<BatchOp> ops;
    ops.emplace_back(batch_op::Store{k, "v", indexed({""})});
    CHECK_REJECTED(w, b.commit(std::move(ops)),
                   "corocache: commit: operation 0 (store): index key must not be empty");
  }
  {
    std::vector<BatchOp> ops;
    ops.emplace_back(batch_op::Erase{k});
    ops.emplace_back(batch_op::Erase{""});
    CHECK_REJECTED(w, b.commit(std::move(ops)),
                   "corocache: commit: operation 1 (erase): key must not be empty");
  }
  {
    std::vector<BatchOp> ops;
    ops.emplace_back(batch_op::Expire{k, -1ms});
    CHECK_REJECTED(w, b.commit(std::move(ops)),
                   "corocache: commit: operation 0 (expire): ttl must be > 0, got -1 ms");
  }
  {
    std::vector<BatchOp> ops;
    ops.emplace_back(batch_op::Expire{"", 1s});
    CHECK_REJECTED(w, b.commit(std::move(ops)),
                   "corocache: commit: operation 0 (expire): key must not be empty");
  }
  {
    std::vector<BatchOp> ops;
    ops.emplace_back(batch_op::Push{w.keys.queue("q"), "a"});
    ops.emplace_back(batch_op::Push{w.keys.queue("q"), "b"});
    ops.emplace_back(batch_op::Push{"", "c"});
    CHECK_REJECTED(w, b.commit(std::move(ops)),
                   "corocache: commit: operation 2 (push): queue key must not be empty");
  }
  CHECK(w.requests() == 0);
}

TEMPLATE_TEST_CASE("the contract's errors are std::invalid_argument, thrown when awaited",
                   "[contract][arguments]", CONTRACT_FLAVOURS) {
  Bench<TestType> w;
  auto op = w.backend.set("", "v", ttl(0ms));  // nothing thrown yet: the awaitable is lazy
  CHECK_THROWS_AS(w.sync(std::move(op)), std::invalid_argument);
}

// NullBackend keeps nothing that a rejected operation could have changed.
#if defined(STORING_FLAVOURS)
TEMPLATE_TEST_CASE("a rejected operation changes nothing", "[contract][arguments]", STORING_FLAVOURS) {
  Bench<TestType> w;
  auto& b = w.backend;
  const std::string k = w.keys.value("k");
  const std::string q = w.keys.queue("q");
  const std::string l = w.keys.lock("l");
  REQUIRE(w.sync(b.set(k, "old", ttl(60s))));
  // A store with a bad ttl neither replaces the value nor removes it.
  CHECK(w.rejection(b.set(k, "new", ttl(0ms))) != "accepted");
  CHECK(w.sync(b.get(k)) == std::optional<std::string>("old"));
  CHECK(w.rejection(b.expire(k, 0ms)) != "accepted");
  CHECK(w.sync(b.get(k)) == std::optional<std::string>("old"));
  // An empty prefix wipes nothing.
  CHECK(w.rejection(b.erase_prefix("")) != "accepted");
  CHECK(w.rejection(b.erase_if("", any_entry(), -1)) != "accepted");
  CHECK(w.sync(b.get(k)) == std::optional<std::string>("old"));
  // A lock attempt with a bad ttl takes nothing.
  CHECK(w.rejection(b.try_lock(l, "alice", 0ms)) != "accepted");
  CHECK(w.sync(b.try_lock(l, "bob", 60s)));
  // A batch with one bad operation applies none of the others.
  std::vector<BatchOp> ops;
  ops.emplace_back(batch_op::Store{k, "batched", ttl(60s)});
  ops.emplace_back(batch_op::Push{q, "m"});
  ops.emplace_back(batch_op::Expire{k, 0ms});
  CHECK(w.rejection(b.commit(std::move(ops))) != "accepted");
  CHECK(w.sync(b.get(k)) == std::optional<std::string>("old"));
  CHECK(w.sync(b.pop(q, 0ms)) == std::nullopt);
}
#endif

TEMPLATE_TEST_CASE("the edge values the contract allows are accepted", "[contract][arguments]",
                   CONTRACT_FLAVOURS) {
  Bench<TestType> w;
  auto& b = w.backend;
  const std::string k = w.keys.value("forever");
  const std::string l = w.keys.lock("forever");
  // Duration::max() saturates: "effectively never".
  const bool stored = w.sync(b.set(k, "v", ttl(Duration::max())));
  const bool refreshed = w.sync(b.expire(k, Duration::max()));
  const bool locked = w.sync(b.try_lock(l, "token", Duration::max()));
  const bool unlocked = w.sync(b.unlock(l, "token"));
  CHECK(locked);
  CHECK(unlocked);
  // An empty value, an empty batch, a limit of 0 or below, a wait of 0.
  const std::string e = w.keys.value("empty");
  const bool stored_empty = w.sync(b.set(e, "", ttl(60s)));
  w.sync(b.commit(std::vector<BatchOp>()));
  CHECK(w.sync(b.erase_if(w.keys.base, any_entry(), 0)) == 0);
  CHECK(w.sync(b.pop(w.keys.queue("q"), 0ms)) == std::nullopt);
  if constexpr (TestType::stores) {
    CHECK(stored);
    CHECK(refreshed);
    CHECK(stored_empty);
    CHECK(w.sync(b.get(k)) == std::optional<std::string>("v"));
    CHECK(w.sync(b.get(e)) == std::optional<std::string>(""));
    CHECK(w.sync(b.erase_if(w.keys.base, any_entry(), -1)) == 2);
  } else {
    CHECK_FALSE(stored);
    CHECK_FALSE(refreshed);
    CHECK_FALSE(stored_empty);
    CHECK(w.sync(b.erase_if(w.keys.base, any_entry(), -1)) == 0);
  }
}

#if defined(COROCACHE_CONTRACT_REDIS)
// A limit of one backend (docs/backend_contract.md): on a Redis Cluster every key of one call
// shares a slot. Checked before any I/O there; one server (every other deployment) takes
// the same calls.
TEST_CASE("on a Redis Cluster a call's keys must share a slot, refused before any I/O") {
  Bench<RedisFlavour> w;
  auto& b = w.backend;
  const bool cluster = deployment_option() == "cluster";
  const std::string k = w.keys.value("k"), other_index = w.keys.index("i", "n2");
  const std::string same_index = w.keys.index("i");
  const std::string cross_slot = "operation 0's first key in slot";
  const std::string rule = ": on a Redis Cluster the keys of one call must share a slot";

  const std::uint64_t before = w.requests();
  const std::string store = w.rejection(b.set(k, "v", indexed({same_index, other_index})));
  std::vector<BatchOp> spread;
  spread.emplace_back(batch_op::Store{k, "v", ttl(60s)});
  spread.emplace_back(batch_op::Erase{w.keys.value("x", "n2")});
  const std::string batch = w.rejection(b.commit(std::move(spread)));
  std::vector<BatchOp> untagged;
  untagged.emplace_back(batch_op::ErasePrefix{w.keys.base});
  const std::string prefix = w.rejection(b.commit(std::move(untagged)));
  if (cluster) {
    CHECK_THAT(store, Catch::StartsWith("corocache: set: index key 1 is in hash slot") &&
                          Catch::Contains(", the key in slot") && Catch::Contains(rule));
    CHECK_THAT(batch, Catch::StartsWith("corocache: commit: operation 1 (erase): the key is in hash slot") &&
                          Catch::Contains(cross_slot) && Catch::Contains(rule));
    CHECK_THAT(prefix, Catch::StartsWith("corocache: commit: operation 0 (erase_prefix): the prefix has no "
                                         "{hash tag}"));
    CHECK(w.requests() == before);
    CHECK(w.sync(b.get(k)) == std::nullopt);  // nothing of the refused calls was applied
  } else {
    CHECK(store == "accepted");
    CHECK(batch == "accepted");
    CHECK(prefix == "accepted");
  }
  // Within one slot, every deployment takes them.
  CHECK(w.sync(b.set(k, "v", indexed({same_index}))));
  std::vector<BatchOp> one_slot;
  one_slot.emplace_back(batch_op::Store{w.keys.value("j"), "w", indexed({same_index})});
  one_slot.emplace_back(batch_op::Push{w.keys.queue("q"), "x"});
  one_slot.emplace_back(batch_op::ErasePrefix{w.keys.value("k")});
  w.sync(b.commit(std::move(one_slot)));
  CHECK(w.sync(b.index_members(same_index)) == std::vector<std::string>{w.keys.value("j")});
}
#endif
