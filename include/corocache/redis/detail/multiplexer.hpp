#pragma once
// The I/O-free core of a pipelined Redis connection: request FIFO, write batching, reply
// matching, abandonment, deadlines, what fails when the link drops, max_pending accounting,
// stall detection and the idle health check. It takes events (submit, cancel, bytes written,
// reply parsed, reply too large, link up/down, timer tick) and answers with results (ops to
// complete, bytes to write, whether to drop the link). Time is always passed in; nothing
// here reads a clock, touches a socket or knows about Asio handlers. docs/redis_connection.md
// describes how the I/O layer (connection.hpp) drives it.

#include <corocache/errors.hpp>
#include <corocache/redis/detail/pending.hpp>

#include <boost/asio/error.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace corocache::detail::redis {

struct MultiplexerConfig {
  std::size_t max_pending = 65536;   // live + abandoned-but-written requests on the current link
  Duration stall_timeout{};          // 0: no stall detection
  Duration health_check_interval{};  // 0: no PING while idle
};

/// How a reply loop writes what the callers it resumed queue, when it writes in chunks: this
/// many requests per chunk (docs/redis_connection.md, "Write policy"). Whether a loop writes
/// in chunks or once at its end is the I/O layer's measured choice (mode_chooser.hpp).
struct WritePolicy {
  static constexpr std::size_t chunks_in_flight = 4;
  static constexpr std::size_t min_chunk = 4;
  static std::size_t loop_chunk(std::size_t written_in_flight) noexcept {
    return std::max(min_chunk, written_in_flight / chunks_in_flight);
  }
};

class Multiplexer {
 public:
  enum class Submit : std::uint8_t {
    queued,     // waits for the next write (the I/O layer schedules one)
    write_now,  // a reply-loop chunk is full: write it now
    overloaded  // max_pending reached; the op was not taken
  };
  enum class ReplyKind : std::uint8_t {
    more,        // part of a multi-reply request; nothing to hand out yet
    completed,   // `op` is done (op->ec set if it failed, e.g. reply_too_large)
    discarded,   // the reply belonged to an abandoned or internal request
    unsolicited  // nothing was waiting for a reply: a protocol error, drop the link
  };
  struct Delivery {
    ReplyKind kind;
    PendingOp* op = nullptr;
  };
  struct Tick {
    bool drop_link = false;  // stalled: the oldest written request got no byte in time
    bool write = false;      // a health-check PING is in the write buffer
  };

  explicit Multiplexer(MultiplexerConfig config) : config_(config) {}

  const MultiplexerConfig& config() const noexcept { return config_; }
  /// Requests counting against max_pending: live ones plus abandoned ones still owed a
  /// reply on the current link.
  std::size_t in_use() const noexcept { return queue_.size() - queue_.holes(); }
  bool link_up() const noexcept { return link_up_; }
  bool idle() const noexcept { return queue_.empty(); }
  std::size_t written() const noexcept { return queue_.written(); }
  bool has_unwritten() const noexcept { return queue_.has_unwritten(); }
  bool in_batch() const noexcept { return batch_; }
  const ReplyQueue& queue() const noexcept { return queue_; }
  /// The earliest deadline of a live request (time_point::max() if none).
  Clock::time_point next_deadline() const noexcept {
    return deadlines_.empty() ? Clock::time_point::max() : deadlines_.front()->deadline;
  }
  /// How often on_tick() must run while the link is up for stall and health checks (zero:
  /// never). A stall is then reported between stall_timeout and stall_timeout + period.
  Duration check_period() const noexcept {
    Duration p = Duration::max();
    if (config_.stall_timeout > Duration::zero()) p = std::min(p, config_.stall_timeout / 4);
    if (config_.health_check_interval > Duration::zero()) p = std::min(p, config_.health_check_interval / 4);
    if (p == Duration::max()) return Duration::zero();
    return std::max(p, Duration(1));
  }

  // --- submission ---------------------------------------------------------------------------

  /// Queues `op` (bytes, replies, timeout set). `now()` is called for its deadline, except
  /// inside a reply batch, where end_batch() stamps all arrivals with one time.
  template <class NowFn>
  Submit submit(PendingOp* op, NowFn&& now) {
    if (in_use() >= config_.max_pending) return Submit::overloaded;
    queue_.push_back(op, op->replies, op->server_wait, false, op->control);
    if (!batch_) {
      stamp(op, now());
      return Submit::queued;
    }
    batch_arrivals_ = true;
    // In a reply loop the bytes go to the write buffer at once, while the caller's freshly
    // encoded request is still in cache; a full chunk is written while the loop goes on.
    if (link_up_ && !writing_ && queue_.written() + 1 == queue_.size()) {
      append(op);
      queue_.mark_all_written();
      if (++chunk_ == chunk_limit_) {
        chunk_ = 0;
        return Submit::write_now;
      }
    }
    return Submit::queued;
  }

  /// The caller gave up. A written request is abandoned only if `may_abandon_written`
  /// (Asio's total cancellation must leave no observable side effect, and a written request
  /// may already have run). Returns the op (ec = `why`) if it was abandoned, else null.
  PendingOp* cancel(PendingOp* op, bool may_abandon_written,
                    boost::system::error_code why = boost::asio::error::operation_aborted) {
    if (!op->queued) return nullptr;
    ReplyQueue::Entry* e = queue_.find(op);
    if (!e) return nullptr;
    if (queue_.is_written(op->id)) {
      if (!may_abandon_written) return nullptr;
      queue_.abandon_written(*e);
    } else {
      queue_.make_hole(*e);
    }
    deadlines_.erase(op);
    op->ec = why;
    drop_front_holes();
    return op;
  }

  // --- reply batches --------------------------------------------------------------------------

  /// A batch of replies is about to be handed out (callers may resume and submit inline).
  /// `chunked`: what they submit is written every WritePolicy::loop_chunk requests while
  /// the batch goes on; otherwise all of it once the batch ends.
  void begin_batch(bool chunked = true) noexcept {
    // Replies in this batch's bytes can only answer requests written before they came: one
    // that would match a request written during the batch arrived before it was asked for.
    replies_end_id_ = queue_.front_id() + queue_.written();
    batch_ = true;
    chunk_ = 0;
    chunk_limit_ = chunked ? WritePolicy::loop_chunk(queue_.written()) : SIZE_MAX;
    batch_first_id_ = queue_.end_id();
  }
  /// Ends the batch; requests queued during it get their deadline from one `now()`.
  template <class NowFn>
  void end_batch(NowFn&& now) {
    batch_ = false;
    replies_end_id_ = no_reply_bound;
    if (!std::exchange(batch_arrivals_, false)) return;
    const Clock::time_point t = now();
    const std::uint64_t front = queue_.front_id();
    for (std::uint64_t id = std::max(batch_first_id_, front); id < queue_.end_id(); ++id) {
      PendingOp* op = queue_[static_cast<std::size_t>(id - front)].op;
      if (op && !op->in_deadlines) stamp(op, t);
    }
  }

  // --- writing --------------------------------------------------------------------------------

  /// Moves every unwritten request's bytes to the write buffer and returns what is to be
  /// sent; empty when nothing is, the link is down or a write is already under way.
  std::string_view prepare_write() {
    if (writing_ || !link_up_) return {};
    for (std::size_t i = queue_.written(); i < queue_.size(); ++i)
      if (PendingOp* op = queue_[i].op) append(op);
    queue_.mark_all_written();
    if (buf_.empty()) return {};
    writing_ = true;
    sent_ = 0;
    return buf_;
  }
  bool writing() const noexcept { return writing_; }
  /// Something is waiting to be written (queued requests or bytes already buffered).
  bool wants_write() const noexcept { return !writing_ && (queue_.has_unwritten() || !buf_.empty()); }
  /// The part of the write buffer not yet sent.
  std::string_view unsent() const noexcept { return std::string_view(buf_).substr(sent_); }
  /// `n` more bytes were sent. True when the whole buffer is out (the write is over).
  bool on_written(std::size_t n) noexcept {
    sent_ += n;
    if (sent_ < buf_.size()) return false;
    finish_write();
    return true;
  }
  /// A write ended without sending everything (the link is gone): forget the buffer.
  void on_write_aborted() noexcept { finish_write(); }

  // --- replies --------------------------------------------------------------------------------

  /// Some bytes arrived from the server (progress for stall detection).
  void on_bytes_received() noexcept { ++rx_count_; }

  /// Whether the next reply belongs to a request with the control limits (Request::control).
  bool next_reply_is_control() noexcept {
    drop_front_holes();
    return queue_.written() > 0 && queue_.front_id() < replies_end_id_ && queue_.front().control;
  }

  /// Matches one reply to the oldest written request.
  Delivery on_reply(Reply&& reply) {
    drop_front_holes();
    if (queue_.written() == 0 || queue_.front_id() >= replies_end_id_) return {ReplyKind::unsolicited};
    auto& entry = queue_.front();
    --entry.replies_left;
    PendingOp* op = entry.op;
    if (op && !op->got_error_reply) {
      // Multi-command request: keep the first error reply, else the last reply.
      op->got_error_reply = reply.is_error() && entry.replies_left > 0;
      op->reply = std::move(reply);
    }
    if (entry.replies_left > 0) return {ReplyKind::more};
    queue_.pop_front();
    if (!op) return {ReplyKind::discarded};
    deadlines_.erase(op);
    return {ReplyKind::completed, op};
  }

  /// The reader skipped one whole reply over the limits: it fails only its own request.
  Delivery on_reply_too_large() {
    drop_front_holes();
    if (queue_.written() == 0 || queue_.front_id() >= replies_end_id_) return {ReplyKind::unsolicited};
    auto& entry = queue_.front();
    --entry.replies_left;
    PendingOp* op = entry.op;
    if (op) {
      deadlines_.erase(op);
      op->ec = make_error_code(errc::reply_too_large);
      if (entry.replies_left > 0)
        queue_.abandon_written(entry);  // its remaining replies are read and discarded
      else
        queue_.pop_front();
      return {ReplyKind::completed, op};
    }
    if (entry.replies_left == 0) queue_.pop_front();
    return {ReplyKind::discarded};
  }

  // --- link -----------------------------------------------------------------------------------

  void on_link_up() noexcept {
    link_up_ = true;
    progress_id_ = 0;
    activity_end_id_ = 0;
  }

  /// The link is gone: every written request fails with `reason` (connection_lost: it may
  /// have run; abandoned ones stop counting), unwritten ones wait for the next link.
  /// `fail(op)` receives each failed op (op->ec set).
  template <class Fail>
  void on_link_down(boost::system::error_code reason, Fail&& fail) {
    link_up_ = false;
    while (queue_.written() > 0) {
      PendingOp* op = queue_.front().op;
      queue_.pop_front();
      if (op) {
        deadlines_.erase(op);
        op->ec = reason;
        fail(op);
      }
    }
    drop_front_holes();
    if (!writing_) finish_write();  // bytes in the buffer belonged to the failed requests
  }

  /// Fails every request still queued (after on_link_down: the unwritten ones) with `ec`.
  template <class Fail>
  void fail_queued(boost::system::error_code ec, Fail&& fail) {
    while (!queue_.empty()) {
      PendingOp* op = queue_.front().op;
      queue_.pop_front();
      if (op) {
        deadlines_.erase(op);
        op->ec = ec;
        fail(op);
      }
    }
  }

  // --- time -----------------------------------------------------------------------------------

  /// Expires deadlines (`fail(op)` for each: timeout, or not_connected if it was never
  /// written while no link was up) and runs the stall and health checks. A request at the
  /// end of its send window (PendingOp::send_within) fails only if it is unwritten with no
  /// link up. Written, it waits on until its call's deadline; unwritten behind a write under
  /// way on a live link, it gets another window.
  template <class Fail>
  Tick on_tick(Clock::time_point now, Fail&& fail) {
    while (!deadlines_.empty() && deadlines_.front()->deadline <= now) {
      PendingOp* op = deadlines_.front();
      deadlines_.erase(op);
      ReplyQueue::Entry* e = queue_.find(op);
      if (!e) continue;
      const bool written = queue_.is_written(op->id);
      if (op->deadline < op->call_deadline && (written || link_up_)) {
        op->deadline =
            written ? op->call_deadline : std::min(op->call_deadline, saturating_add(now, op->send_within));
        deadlines_.insert(op);
        continue;
      }
      op->ec = make_error_code(written || link_up_ ? errc::timeout : errc::not_connected);
      if (written)
        queue_.abandon_written(*e);
      else
        queue_.make_hole(*e);
      fail(op);
    }
    drop_front_holes();
    Tick tick;
    if (!link_up_) return tick;
    tick.drop_link = stalled(now);
    if (!tick.drop_link) tick.write = health_check(now);
    return tick;
  }

 private:
  void stamp(PendingOp* op, Clock::time_point now) noexcept {
    op->call_deadline = saturating_add(now, op->timeout);
    op->deadline = op->send_within > Duration::zero() && op->send_within < op->timeout
                       ? saturating_add(now, op->send_within)
                       : op->call_deadline;
    deadlines_.insert(op);
  }

  void append(PendingOp* op) {
    if (buf_.empty() && op->bytes.size() > buf_.capacity()) {
      buf_.swap(op->bytes);  // a large lone request: no copy
    } else {
      buf_ += op->bytes;
    }
    std::string().swap(op->bytes);
    op->written = true;
  }

  void finish_write() noexcept {
    writing_ = false;
    sent_ = 0;
    buf_.clear();
    if (buf_.capacity() > 1024 * 1024) std::string().swap(buf_);
  }

  void drop_front_holes() noexcept {
    while (!queue_.empty() && queue_.front().hole) queue_.pop_front();
  }

  // The oldest written request has seen no byte from the server for its limit. Progress is
  // sampled at ticks: a new oldest request or any byte restarts the wait.
  bool stalled(Clock::time_point now) noexcept {
    if (queue_.written() == 0) {
      progress_id_ = 0;
      return false;
    }
    const auto& head = queue_[0];
    if (progress_id_ != queue_.front_id() || progress_rx_ != rx_count_) {
      progress_id_ = queue_.front_id();
      progress_rx_ = rx_count_;
      progress_at_ = now;
      return false;
    }
    Duration limit = config_.stall_timeout;
    if (limit > Duration::zero())  // a blocking command's wait, then the usual limit
      limit = head.patience >= Duration::max() - limit ? Duration::max() : limit + head.patience;
    else if (head.ping)
      limit = config_.health_check_interval;  // only the health check's PING is watched
    if (limit <= Duration::zero()) return false;
    return now >= saturating_add(progress_at_, limit);
  }

  // Sends a PING when nothing was queued and nothing arrived for a whole interval.
  bool health_check(Clock::time_point now) {
    if (config_.health_check_interval <= Duration::zero()) return false;
    if (!queue_.empty() || writing_) {
      activity_end_id_ = 0;
      return false;
    }
    if (activity_end_id_ != queue_.end_id() || activity_rx_ != rx_count_) {
      activity_end_id_ = queue_.end_id();
      activity_rx_ = rx_count_;
      activity_at_ = now;
      return false;
    }
    if (now < saturating_add(activity_at_, config_.health_check_interval)) return false;
    static constexpr std::string_view ping = "*1\r\n$4\r\nPING\r\n";
    queue_.push_back(nullptr, 1, Duration::zero(), true);
    queue_.mark_all_written();
    buf_.append(ping);
    activity_end_id_ = 0;
    progress_id_ = queue_.front_id();  // its wait starts now
    progress_rx_ = rx_count_;
    progress_at_ = now;
    return true;
  }

  MultiplexerConfig config_;
  ReplyQueue queue_;
  DeadlineList deadlines_;
  std::string buf_;  // bytes of written requests not yet sent
  std::size_t sent_ = 0;
  bool writing_ = false;  // buf_ is being sent; nothing may be appended until it is out
  bool link_up_ = false;

  static constexpr std::uint64_t no_reply_bound = ~std::uint64_t{0};
  std::uint64_t replies_end_id_ = no_reply_bound;  // see begin_batch()
  bool batch_ = false;
  bool batch_arrivals_ = false;
  std::uint64_t batch_first_id_ = 0;
  std::size_t chunk_ = 0;
  std::size_t chunk_limit_ = 0;

  std::uint64_t rx_count_ = 0;  // reads with data on the current link
  std::uint64_t progress_id_ = 0;
  std::uint64_t progress_rx_ = 0;
  Clock::time_point progress_at_{};
  std::uint64_t activity_end_id_ = 0;
  std::uint64_t activity_rx_ = 0;
  Clock::time_point activity_at_{};
};

}  // namespace corocache::detail::redis
