#pragma once
// Bookkeeping of a connection's requests, free of I/O: the state of one request
// (PendingOp), the FIFO that matches replies to requests (ReplyQueue) and the
// deadline-ordered list that drives the connection's single deadline timer (DeadlineList).
// The multiplexer (multiplexer.hpp) owns these; the I/O layer extends PendingOp with the
// caller's completion handler. Everything here is touched only on the connection's strand.

#include <corocache/backend.hpp>
#include <corocache/redis/detail/reply.hpp>

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace corocache::detail::redis {

using Clock = std::chrono::steady_clock;

/// `now + d`, saturated at Clock::time_point::max() (a huge or Duration::max() timeout
/// means "effectively forever", never a signed overflow).
inline Clock::time_point saturating_add(Clock::time_point now, Duration d) noexcept {
  if (d <= Duration::zero()) return now;
  const auto room = Clock::time_point::max() - now;  // >= 0 for any real `now`
  if (d >= std::chrono::duration_cast<Duration>(room)) return Clock::time_point::max();
  return now + std::chrono::duration_cast<Clock::duration>(d);
}

/// One request from submission until its result is handed out. The multiplexer never owns
/// it: it keeps a pointer from submit() until it hands the op back (completed, failed or
/// abandoned), and the owner keeps the op alive meanwhile.
struct PendingOp {
  // --- set before submission ---
  std::string bytes;          // encoded commands; moved into the write buffer when written
  std::uint32_t replies = 1;  // replies the commands produce
  Duration timeout{};         // the request's timeout (> 0)
  Duration server_wait{};     // how long the server may hold its reply on purpose (Request)
  Duration send_within{};     // how long it may wait unwritten with no link (Request; 0: timeout)
  bool control = false;       // its reply has the control limits (Request)

  // --- multiplexer state ---
  Clock::time_point deadline{};       // the next deadline: the send limit, then the call's
  Clock::time_point call_deadline{};  // when the caller stops waiting (stamped when queued)
  std::uint64_t id = 0;               // position in the reply queue
  bool queued = false;                // live in the reply queue (neither completed nor abandoned)
  bool written = false;               // its bytes went to the write buffer
  bool got_error_reply = false;       // an earlier reply of a multi-command request was an error
  bool in_deadlines = false;
  PendingOp* dl_prev = nullptr;  // DeadlineList links
  PendingOp* dl_next = nullptr;

  // --- result ---
  Reply reply;
  boost::system::error_code ec;
};

/// The requests of one connection in the order their bytes go out (= the order replies come
/// back). A prefix of it has been written; the rest waits for the next write. An entry
/// whose caller gave up keeps its place: unwritten, it becomes a hole that is never sent;
/// written, it still owns `replies_left` replies that are read and discarded. Holes are
/// counted by the queue itself, so "requests in use" (size() - holes()) is derived from its
/// content. Ids are consecutive, so the entry of a live request is found in O(1).
class ReplyQueue {
 public:
  struct Entry {
    PendingOp* op = nullptr;         // null: abandoned, internal (health check) or a hole
    Duration patience{};             // its server_wait (stall detection allows it)
    std::uint32_t replies_left = 0;  // replies still to be read for this entry
    bool hole = false;               // abandoned before it was written: never sent
    bool ping = false;               // the health check's PING (internal)
    bool control = false;            // its replies have the control limits (kept when abandoned)
  };

  ReplyQueue() : ring_(16) {}
  ReplyQueue(const ReplyQueue&) = delete;
  ReplyQueue& operator=(const ReplyQueue&) = delete;

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::size_t written() const noexcept { return written_; }
  std::size_t holes() const noexcept { return holes_; }
  bool has_unwritten() const noexcept { return written_ < size_; }
  std::uint64_t front_id() const noexcept { return front_id_; }
  std::uint64_t end_id() const noexcept { return front_id_ + size_; }

  /// Appends `op` (null: an internal request that owns `replies` replies; `ping`: the health
  /// check's) and sets op->id.
  void push_back(PendingOp* op, std::uint32_t replies, Duration patience, bool ping = false,
                 bool control = false) {
    if (size_ == ring_.size()) grow();
    if (op) {
      op->id = end_id();
      op->queued = true;
    }
    // Field by field: from `Entry{...}` g++ 12 builds a temporary on the stack with narrow
    // stores and copies it with wide loads, which stall on store forwarding.
    Entry& e = ring_[(head_ + size_) & (ring_.size() - 1)];
    e.op = op;
    e.patience = patience;
    e.replies_left = replies;
    e.hole = false;
    e.ping = ping;
    e.control = control;
    ++size_;
  }
  Entry& operator[](std::size_t i) noexcept { return ring_[(head_ + i) & (ring_.size() - 1)]; }
  const Entry& operator[](std::size_t i) const noexcept { return ring_[(head_ + i) & (ring_.size() - 1)]; }
  Entry& front() noexcept { return (*this)[0]; }

  /// The entry of a live op, or null if `op` is no longer queued under its id.
  Entry* find(const PendingOp* op) noexcept {
    const std::uint64_t id = op->id;
    if (id < front_id_ || id - front_id_ >= size_) return nullptr;
    Entry& e = (*this)[static_cast<std::size_t>(id - front_id_)];
    return e.op == op ? &e : nullptr;
  }
  bool is_written(std::uint64_t id) const noexcept { return id - front_id_ < written_; }

  /// Forgets the op of a written entry: its replies are still read, then discarded.
  void abandon_written(Entry& e) noexcept {
    e.op->queued = false;
    e.op = nullptr;
  }
  /// Makes an unwritten live entry a hole.
  void make_hole(Entry& e) noexcept {
    if (e.op) e.op->queued = false;
    e = Entry{};
    e.hole = true;
    ++holes_;
  }

  /// Removes the first entry (the caller has taken its op, if any).
  void pop_front() noexcept {
    Entry& e = front();
    if (e.op) e.op->queued = false;
    if (e.hole) --holes_;
    e = Entry{};
    head_ = (head_ + 1) & (ring_.size() - 1);
    --size_;
    ++front_id_;
    if (written_ > 0) --written_;
  }
  /// Everything queued counts as written from now on.
  void mark_all_written() noexcept { written_ = size_; }

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
  std::size_t holes_ = 0;
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
