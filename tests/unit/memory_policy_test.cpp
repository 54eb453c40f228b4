// The memory backend's eviction policies (S3-FIFO, LRU) and the ghost queue, as plain
// synchronous code: no Asio, no backend.

#include <corocache/memory/detail/ghost.hpp>
#include <corocache/memory/detail/s3fifo.hpp>
#include "support/lru.hpp"

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>

namespace memory_policy_test {

namespace {

using corocache::detail::memory::GhostQueue;
using corocache::detail::memory::Lru;
using corocache::detail::memory::PolicyHook;
using corocache::detail::memory::S3Fifo;

struct Node : PolicyHook {
  int key = 0;
};

/// A cache of int keys holding at most `capacity` entries, managed by Policy.
template <class Policy>
class Sim {
 public:
  explicit Sim(std::size_t capacity) : capacity_(capacity) {}

  /// True on a hit.
  bool access(int key) {
    if (auto it = nodes_.find(key); it != nodes_.end()) {
      policy.touch(*it->second);
      return true;
    }
    if (nodes_.size() >= capacity_) {
      auto* victim = static_cast<Node*>(policy.evict());
      REQUIRE(victim != nullptr);
      nodes_.erase(victim->key);
    }
    auto n = std::make_unique<Node>();
    n->key = key;
    n->fingerprint = static_cast<std::uint32_t>(key) * 2654435761u + 1;
    policy.insert(*n);
    nodes_.emplace(key, std::move(n));
    return false;
  }
  bool cached(int key) const { return nodes_.count(key) != 0; }

  Policy policy;

 private:
  std::size_t capacity_;
  std::map<int, std::unique_ptr<Node>> nodes_;
};

}  // namespace

TEST_CASE("S3-FIFO evicts entries that were never hit before entries that were") {
  Sim<S3Fifo> sim(10);
  for (int k = 0; k < 10; ++k) sim.access(k);
  for (int k = 0; k < 5; ++k) REQUIRE(sim.access(k));
  for (int k = 10; k < 15; ++k) REQUIRE_FALSE(sim.access(k));
  for (int k = 0; k < 5; ++k) CHECK(sim.cached(k));
  for (int k = 5; k < 10; ++k) CHECK_FALSE(sim.cached(k));
  for (int k = 10; k < 15; ++k) CHECK(sim.cached(k));
  CHECK(sim.policy.main_size() == 5);
  CHECK(sim.policy.small_size() == 5);
}

TEST_CASE("S3-FIFO admits a recently evicted key straight into the main queue") {
  Sim<S3Fifo> sim(10);
  for (int k = 0; k < 10; ++k) sim.access(k);
  sim.access(100);  // evicts 0, never hit, into the ghost queue
  REQUIRE_FALSE(sim.cached(0));
  const std::size_t main_before = sim.policy.main_size();
  sim.access(0);
  CHECK(sim.policy.main_size() == main_before + 1);
}

TEST_CASE("S3-FIFO does not remember explicitly removed entries as ghosts") {
  S3Fifo policy;
  Node a;
  a.fingerprint = 42;
  policy.insert(a);
  policy.remove(a);
  CHECK(policy.size() == 0);
  policy.insert(a);
  CHECK(policy.small_size() == 1);
  CHECK(policy.main_size() == 0);
}

TEST_CASE("a one-off scan does not flush S3-FIFO's hot entries, but flushes LRU's") {
  Sim<S3Fifo> s3(100);
  Sim<Lru> lru(100);
  for (int round = 0; round < 3; ++round) {
    for (int k = 0; k < 50; ++k) {
      s3.access(k);
      lru.access(k);
    }
  }
  for (int k = 1000; k < 3000; ++k) {
    s3.access(k);
    lru.access(k);
  }
  int s3_hits = 0;
  int lru_hits = 0;
  for (int k = 0; k < 50; ++k) {
    s3_hits += s3.access(k) ? 1 : 0;
    lru_hits += lru.access(k) ? 1 : 0;
  }
  CHECK(s3_hits == 50);
  CHECK(lru_hits == 0);
}

TEST_CASE("S3-FIFO evicts an expired entry before promoting or keeping live ones") {
  S3Fifo policy;
  Node a, b, c;
  a.key = 1;
  b.key = 2;
  c.key = 3;
  for (Node* n : {&a, &b, &c}) {
    policy.insert(*n);
    policy.touch(*n);
  }
  // Without dead entries all three are promoted, then the oldest loses its counter first.
  PolicyHook* victim = policy.evict([&](const PolicyHook& h) { return &h == &b; });
  CHECK(victim == &b);
  CHECK(policy.size() == 2);
  CHECK(b.list == 0);
}

TEST_CASE("S3-FIFO lets a main-queue entry with hits survive another round") {
  S3Fifo policy;
  Node a, b, c;
  policy.insert(a);
  policy.insert(b);
  policy.insert(c);
  policy.touch(a);
  policy.touch(b);
  CHECK(policy.evict() == &c);  // a and b were hit: promoted to main; c was not
  CHECK(policy.main_size() == 2);
  policy.touch(a);
  policy.touch(a);
  CHECK(policy.evict() == &b);  // a goes round again (counter 2 -> 1), b has no hits
  CHECK(policy.evict() == &a);  // a's last round: 1 -> 0, then evicted
  CHECK(policy.evict() == nullptr);
}

TEST_CASE("LRU evicts the least recently used entry") {
  Lru policy;
  Node a, b, c;
  policy.insert(a);
  policy.insert(b);
  policy.insert(c);
  policy.touch(a);
  CHECK(policy.evict() == &b);
  CHECK(policy.evict() == &c);
  policy.remove(a);
  CHECK(policy.evict() == nullptr);
}

TEST_CASE("the ghost queue remembers only recent evictions, once each") {
  GhostQueue ghost;
  CHECK_FALSE(ghost.take(7));  // no capacity: remembers nothing
  ghost.set_capacity(16);
  for (std::uint32_t fp = 1; fp <= 100; ++fp) ghost.add(fp);
  CHECK_FALSE(ghost.take(1));  // 99 evictions ago: forgotten
  CHECK(ghost.take(100));
  CHECK_FALSE(ghost.take(100));  // taken once
  CHECK_FALSE(ghost.take(12345));
}

}  // namespace memory_policy_test
