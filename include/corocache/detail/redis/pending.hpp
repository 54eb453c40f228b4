#pragma once
// Bookkeeping of a Connection's requests, free of I/O: the request state (PendingOp), the
// FIFO that matches replies to requests (ReplyQueue) and the deadline-ordered list that
// drives the connection's single deadline timer (DeadlineList). Everything here is touched
// only on the connection's strand, except PendingOp's reference count.

#include <corocache/backend.hpp>
#include <corocache/detail/redis/reply.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/recycling_allocator.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace corocache::detail::redis {

using Clock = std::chrono::steady_clock;

/// One request from the moment exec() submits it until its caller has read the result.
/// Reference counted (the awaiting exec() operation, the reply queue, a cancellation handler and
/// a cancellation task each hold a reference) and allocated through Asio's recycling
/// allocator, so a steady stream of requests does not hit the heap for it.
struct PendingOp {
  using Handler = boost::asio::async_result<boost::asio::use_awaitable_t<>,
                                            void(std::exception_ptr, Reply)>::handler_type;

  // --- set by exec() before submission, then read on the strand ---
  std::string bytes;           // encoded commands; moved into the write buffer when written
  std::uint32_t replies = 1;   // replies the commands produce
  Duration timeout{};          // the request's timeout
  Clock::time_point deadline;  // when the caller stops waiting (set when queued)
  void* owner = nullptr;       // the ConnectionImpl (for the cancellation handler)

  // --- strand only ---
  std::uint64_t id = 0;          // position in the reply queue (ReplyQueue::front_id based)
  bool queued = false;           // live in the reply queue (neither completed nor abandoned)
  bool written = false;          // its bytes went to a write buffer
  bool got_error_reply = false;  // an earlier reply of a multi-command request was an error
  PendingOp* dl_prev = nullptr;  // DeadlineList links
  PendingOp* dl_next = nullptr;
  bool in_deadlines = false;

  // --- result: written on the strand, handed to the handler as its arguments ---
  Reply reply;
  boost::system::error_code ec;
  std::string what;

  // The awaiting coroutine's completion handler, stored as its concrete type (exec() is
  // only ever awaited through use_awaitable): no type erasure, no allocation for it. It
  // receives the result by value, so nothing reads the op after it ran.
  std::optional<Handler> handler;

  static PendingOp* create() {
    boost::asio::recycling_allocator<PendingOp> alloc;
    PendingOp* p = alloc.allocate(1);
    return ::new (static_cast<void*>(p)) PendingOp();
  }
  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      boost::asio::recycling_allocator<PendingOp> alloc;
      this->~PendingOp();
      alloc.deallocate(this, 1);
    }
  }

 private:
  std::atomic<int> refs_{1};
};

/// Owning reference to a PendingOp.
class PendingRef {
 public:
  PendingRef() = default;
  static PendingRef adopt(PendingOp* p) noexcept {
    PendingRef r;
    r.p_ = p;
    return r;
  }
  static PendingRef share(PendingOp* p) noexcept {
    p->add_ref();
    return adopt(p);
  }
  PendingRef(PendingRef&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  PendingRef& operator=(PendingRef&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  PendingRef(const PendingRef&) = delete;
  PendingRef& operator=(const PendingRef&) = delete;
  ~PendingRef() { reset(); }
  void reset() noexcept {
    if (p_) std::exchange(p_, nullptr)->release();
  }
  PendingOp* get() const noexcept { return p_; }
  PendingOp* operator->() const noexcept { return p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  PendingOp* p_ = nullptr;
};

/// The requests of one connection in the order their bytes go out (= the order replies come
/// back). A prefix of it has been written; the rest waits for the next write. An entry
/// whose caller gave up keeps its place: unwritten, it becomes a hole that is never sent;
/// written, it still owns `replies_left` replies that are read and discarded.
/// Ids are consecutive, so the entry of a live request is found in O(1).
class ReplyQueue {
 public:
  struct Entry {
    PendingOp* op = nullptr;         // owning reference; null: abandoned (or a hole)
    std::uint32_t replies_left = 0;  // 0 with op == null: a hole (consumes no reply)
  };

  ReplyQueue() : ring_(16) {}
  ReplyQueue(const ReplyQueue&) = delete;
  ReplyQueue& operator=(const ReplyQueue&) = delete;
  ~ReplyQueue() {
    while (!empty()) pop_front();
  }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::size_t written() const noexcept { return written_; }
  bool has_unwritten() const noexcept { return written_ < size_; }
  std::uint64_t front_id() const noexcept { return front_id_; }

  /// Appends (taking over one reference of `op`) and sets op->id.
  void push_back(PendingOp* op) {
    if (size_ == ring_.size()) grow();
    op->id = front_id_ + size_;
    op->queued = true;
    ring_[(head_ + size_) & (ring_.size() - 1)] = Entry{op, op->replies};
    ++size_;
  }
  Entry& operator[](std::size_t i) noexcept { return ring_[(head_ + i) & (ring_.size() - 1)]; }
  Entry& front() noexcept { return (*this)[0]; }

  /// The entry of a live op, or null if `op` is no longer queued under `id`.
  Entry* find(const PendingOp* op, std::uint64_t id) noexcept {
    if (id < front_id_ || id - front_id_ >= size_) return nullptr;
    Entry& e = (*this)[static_cast<std::size_t>(id - front_id_)];
    return e.op == op ? &e : nullptr;
  }
  bool is_written(std::uint64_t id) const noexcept { return id - front_id_ < written_; }

  /// Removes the first entry, dropping its reference if it still has one.
  void pop_front() noexcept {
    Entry& e = front();
    if (e.op) {
      e.op->queued = false;
      e.op->release();
    }
    e = Entry{};
    head_ = (head_ + 1) & (ring_.size() - 1);
    --size_;
    ++front_id_;
    if (written_ > 0) --written_;
  }
  /// Everything queued counts as written from now on.
  void mark_all_written() noexcept { written_ = size_; }
  /// The written prefix is forgotten after a link drop (its entries are popped first).
  void reset_written() noexcept { written_ = 0; }

 private:
  void grow() {
    std::vector<Entry> bigger(ring_.size() * 2);
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = (*this)[i];
    ring_.swap(bigger);
    head_ = 0;
  }

  std::vector<Entry> ring_;  // capacity is a power of two
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  std::size_t written_ = 0;
  std::uint64_t front_id_ = 1;
};

/// Live requests ordered by deadline (an intrusive doubly linked list). Requests mostly
/// arrive with the same timeout, hence in deadline order: insertion walks back from the
/// tail and is O(1) in that case; removal is always O(1). No per-request timer exists: the
/// connection arms one timer for the earliest deadline.
class DeadlineList {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  PendingOp* front() const noexcept { return head_; }

  void insert(PendingOp* op) noexcept {
    PendingOp* after = tail_;
    while (after && after->deadline > op->deadline) after = after->dl_prev;
    op->dl_prev = after;
    op->dl_next = after ? after->dl_next : head_;
    if (op->dl_next)
      op->dl_next->dl_prev = op;
    else
      tail_ = op;
    if (after)
      after->dl_next = op;
    else
      head_ = op;
    op->in_deadlines = true;
  }

  void erase(PendingOp* op) noexcept {
    if (!op->in_deadlines) return;
    if (op->dl_prev)
      op->dl_prev->dl_next = op->dl_next;
    else
      head_ = op->dl_next;
    if (op->dl_next)
      op->dl_next->dl_prev = op->dl_prev;
    else
      tail_ = op->dl_prev;
    op->dl_prev = op->dl_next = nullptr;
    op->in_deadlines = false;
  }

 private:
  PendingOp* head_ = nullptr;
  PendingOp* tail_ = nullptr;
};

}  // namespace corocache::detail::redis
