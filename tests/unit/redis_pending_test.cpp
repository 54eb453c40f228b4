// The request bookkeeping of a connection, without I/O: FIFO reply matching with holes and
// abandoned entries, and the deadline-ordered list.
#include <corocache/detail/redis/pending.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

using corocache::detail::redis::Clock;
using corocache::detail::redis::DeadlineList;
using corocache::detail::redis::PendingOp;
using corocache::detail::redis::PendingRef;
using corocache::detail::redis::ReplyQueue;

namespace {

struct Ops {
  std::vector<PendingRef> refs;
  PendingOp* make(int deadline_ms, std::uint32_t replies = 1) {
    refs.push_back(PendingRef::adopt(PendingOp::create()));
    PendingOp* op = refs.back().get();
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
    op->add_ref();
    q.push_back(op);
    pushed.push_back(op);
  }
  CHECK(q.size() == 100);
  CHECK(q.has_unwritten());
  for (auto* op : pushed) CHECK(q.find(op, op->id) == &q[static_cast<std::size_t>(op->id - q.front_id())]);
  CHECK(q.find(pushed[0], pushed[0]->id + 1) == nullptr);  // wrong id
  q.mark_all_written();
  CHECK_FALSE(q.has_unwritten());
  CHECK(q.is_written(pushed[99]->id));
  q.pop_front();
  CHECK(q.written() == 99);
  CHECK(q.find(pushed[0], pushed[0]->id) == nullptr);  // gone
  CHECK_FALSE(pushed[0]->queued);
  while (!q.empty()) q.pop_front();
}

TEST_CASE("a request's state is freed when its last reference goes") {
  // Two references (caller and queue): either may go first.
  auto* op = PendingOp::create();
  op->add_ref();
  op->release();
  op->release();  // freed here (ASan would report a leak or double free otherwise)
  SUCCEED();
}
