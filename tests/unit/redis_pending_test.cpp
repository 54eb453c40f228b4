// The request bookkeeping of a connection, without I/O: FIFO reply matching with holes and
// abandoned entries, and the deadline-ordered list.
#include <corocache/redis/detail/pending.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <vector>

namespace redis_pending_test {

using corocache::detail::redis::Clock;
using corocache::detail::redis::DeadlineList;
using corocache::detail::redis::PendingOp;
using corocache::detail::redis::ReplyQueue;
using namespace std::chrono_literals;

namespace {

struct Ops {
  std::vector<std::unique_ptr<PendingOp>> all;
  PendingOp* make(int deadline_ms, std::uint32_t replies = 1) {
    all.push_back(std::make_unique<PendingOp>());
    PendingOp* op = all.back().get();
    op->replies = replies;
    op->deadline = Clock::time_point{} + std::chrono::milliseconds(deadline_ms);
    return op;
  }
};

std::vector<PendingOp*> order(DeadlineList& list) {
  std::vector<PendingOp*> out;
  for (auto* p = list.front(); p; p = p->dl_next) out.push_back(p);
  return out;
}

}  // namespace

TEST_CASE("the deadline list keeps requests ordered by deadline and removes any of them") {
  Ops ops;
  auto* a = ops.make(10);
  auto* b = ops.make(20);
  auto* c = ops.make(30);
  auto* early = ops.make(5);
  auto* mid = ops.make(25);
  DeadlineList list;
  for (auto* p : {a, b, c, early, mid}) list.insert(p);
  CHECK(order(list) == std::vector<PendingOp*>{early, a, b, mid, c});
  list.erase(b);
  list.erase(early);
  list.erase(b);  // twice is harmless
  CHECK(order(list) == std::vector<PendingOp*>{a, mid, c});
  list.erase(c);
  list.erase(a);
  list.erase(mid);
  CHECK(list.empty());
}

TEST_CASE("equal deadlines keep their arrival order") {
  Ops ops;
  auto* a = ops.make(10);
  auto* b = ops.make(10);
  auto* c = ops.make(10);
  DeadlineList list;
  for (auto* p : {a, b, c}) list.insert(p);
  CHECK(order(list) == std::vector<PendingOp*>{a, b, c});
  for (auto* p : {a, b, c}) list.erase(p);
}

TEST_CASE("the reply queue finds live requests by id and tracks the written prefix") {
  Ops ops;
  ReplyQueue q;
  std::vector<PendingOp*> pushed;
  for (int i = 0; i < 100; ++i) {  // grows past its initial capacity
    auto* op = ops.make(0, 1 + i % 3);
    q.push_back(op, op->replies, 1s);
    pushed.push_back(op);
  }
  CHECK(q.size() == 100);
  CHECK(q.has_unwritten());
  for (auto* op : pushed) CHECK(q.find(op) == &q[static_cast<std::size_t>(op->id - q.front_id())]);
  q.mark_all_written();
  CHECK_FALSE(q.has_unwritten());
  CHECK(q.is_written(pushed[99]->id));
  q.pop_front();
  CHECK(q.written() == 99);
  CHECK(q.find(pushed[0]) == nullptr);  // gone
  CHECK_FALSE(pushed[0]->queued);
  while (!q.empty()) q.pop_front();
}

TEST_CASE("holes and abandoned entries: the queue counts what it holds") {
  Ops ops;
  ReplyQueue q;
  auto* a = ops.make(0);
  auto* b = ops.make(0);
  auto* c = ops.make(0);
  for (auto* op : {a, b}) q.push_back(op, 1, 1s);
  q.mark_all_written();
  q.push_back(c, 1, 1s);
  q.abandon_written(*q.find(a));  // written: still owed a reply
  CHECK_FALSE(a->queued);
  CHECK(q.holes() == 0);
  q.make_hole(*q.find(c));  // unwritten: never sent
  CHECK(q.holes() == 1);
  CHECK(q.size() - q.holes() == 2);
  CHECK(q.find(c) == nullptr);
  while (!q.empty()) q.pop_front();
  CHECK(q.holes() == 0);
}

TEST_CASE("saturating_add never overflows") {
  using corocache::Duration;
  using corocache::detail::redis::saturating_add;
  const auto now = Clock::now();
  CHECK(saturating_add(now, Duration::max()) == Clock::time_point::max());
  CHECK(saturating_add(now, 5ms) == now + 5ms);
  CHECK(saturating_add(now, Duration(-5)) == now);
}

}  // namespace redis_pending_test
