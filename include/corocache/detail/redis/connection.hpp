#pragma once
// One multiplexed, automatically pipelined connection to a Redis server.
//
// Asio owns the socket (TCP or unix); hiredis does the protocol (request.hpp encodes,
// reader.hpp decodes). Design:
//  - All state lives in a shared ConnectionImpl and is touched only on its strand; exec()
//    may be called from any thread and executor and resumes its caller on the caller's
//    executor.
//  - Requests are appended to a FIFO (ReplyQueue). Whatever queued up while a write was in
//    flight leaves in ONE write; what callers resumed by a batch of replies queue leaves in
//    a few chunks while the batch is handed out, so the server works meanwhile (consume()).
//    Replies complete the FIFO's entries in order. Abandoned entries (timed out, cancelled) keep
//    their place so their late replies are discarded, never given to the next caller.
//  - A batch is written inline when the socket takes it (async_write only for the rest);
//    replies are read by an async read, or, with RedisOptions::busy_poll, by non-blocking
//    reads from posted handlers for a while after each batch.
//  - One deadline timer per connection (not per request), armed for the earliest deadline
//    of a deadline-ordered intrusive list; it is re-armed lazily (a request that completes
//    early does not touch the timer).
//  - A supervisor coroutine connects (lazily, on first use), authenticates, SELECTs, and
//    reconnects with capped exponential backoff after a drop. Requests written when the
//    link drops fail with connection_lost; unwritten ones wait for the next link until
//    their deadline.
//  - Bounds: max_pending requests, max_reply_bytes per reply (also the declared length of
//    a bulk string), max_reply_elements per array, hiredis' nesting limit.

#include <corocache/backend.hpp>
#include <corocache/detail/redis/pending.hpp>
#include <corocache/detail/redis/reader.hpp>
#include <corocache/detail/redis/reply.hpp>
#include <corocache/detail/redis/request.hpp>
#include <corocache/errors.hpp>
#include <corocache/redis_options.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace corocache::detail::redis {

namespace asio = boost::asio;

/// Counters for tests and monitoring (monotonic since construction).
struct ConnectionStats {
  std::uint64_t connect_attempts = 0;  ///< connect attempts started
  std::uint64_t connects = 0;          ///< links that completed the handshake
  std::uint64_t writes = 0;            ///< write operations (each carries a batch)
  std::uint64_t requests = 0;          ///< requests accepted into the queue
};

class ConnectionImpl : public std::enable_shared_from_this<ConnectionImpl> {
 public:
  using Strand = asio::strand<asio::any_io_executor>;
  using Socket = asio::generic::stream_protocol::socket;

  ConnectionImpl(asio::any_io_executor ex, RedisOptions options)
      : options_(std::move(options)),
        strand_(asio::make_strand(ex)),
        socket_(strand_),
        deadline_timer_(strand_),
        wake_timer_(strand_),
        reader_(ReaderLimits{options_.max_reply_bytes, options_.max_reply_elements}),
        read_buf_(64 * 1024) {}

  const RedisOptions& options() const noexcept { return options_; }

  ConnectionStats stats() const noexcept {
    return {connect_attempts_.load(std::memory_order_relaxed), connects_.load(std::memory_order_relaxed),
            writes_.load(std::memory_order_relaxed), requests_.load(std::memory_order_relaxed)};
  }

  /// Called in exec()'s initiation (caller's context). `op` and `this` are alive until its
  /// handler has run: exec()'s suspended initiation holds a reference to both.
  void submit(PendingOp* op, PendingOp::Handler handler) {
    op->handler.emplace(std::move(handler));
    auto slot = op->handler->get_cancellation_slot();
    if (slot.is_connected()) slot.template emplace<CancelHandler>(op);
    if (closed_.load(std::memory_order_acquire)) {
      fail_op(op, make_error_code(errc::shut_down), "corocache redis: the connection was closed",
              /*post=*/true);
      return;
    }
    // A caller resumed by a reply (deliver() dispatches it inline) is already on the strand:
    // queue directly. asio::dispatch through strand<any_io_executor> would allocate an
    // operation per request even then. enqueue() never completes inline (its failures post).
    if (strand_.running_in_this_thread())
      enqueue(op);
    else  // exec()'s initiation keeps `this` and `op` alive until the handler runs
      asio::dispatch(strand_, [this, op] { enqueue(op); });
  }

  /// Fails everything with shut_down and stops all background work. Idempotent; any thread.
  void close() {
    if (closed_.exchange(true, std::memory_order_acq_rel)) return;
    asio::dispatch(strand_, [self = shared_from_this()] { self->do_close(); });
  }

 private:
  enum class Link { idle, connecting, up, down, closed };

  // Installed in the caller's cancellation slot. Asio destroys it (slot cleared) right
  // before the completion handler runs, in the handler's context; until then the op is
  // alive (we hold a reference) and so is the ConnectionImpl (the exec() frame holds it).
  struct CancelHandler {
    explicit CancelHandler(PendingOp* o) : op(PendingRef::share(o)) {}
    void operator()(asio::cancellation_type_t type) {
      if (type == asio::cancellation_type::none) return;
      auto* impl = static_cast<ConnectionImpl*>(op->owner);
      asio::post(impl->strand_, [self = impl->shared_from_this(), ref = PendingRef::share(op.get())] {
        self->cancel_op(ref.get());
      });
    }
    PendingRef op;
  };

  // --- request lifecycle (strand) -------------------------------------------------------

  void enqueue(PendingOp* op) {
    if (link_ == Link::closed) {
      fail_op(op, make_error_code(errc::shut_down), "corocache redis: the connection was closed", true);
      return;
    }
    if (pending_ >= options_.max_pending) {
      fail_op(op, make_error_code(errc::overloaded),
              "corocache redis: " + std::to_string(pending_) + " requests pending (max_pending)", true);
      return;
    }
    if (auth_failed_ && link_ != Link::up) {
      fail_op(op, make_error_code(errc::auth_failed), auth_error_, true);
      return;
    }
    op->add_ref();  // the queue's reference
    queue_.push_back(op);
    ++pending_;
    requests_.fetch_add(1, std::memory_order_relaxed);
    // The deadline needs a precise clock read (CLOCK_MONOTONIC_COARSE can lag by more than
    // a tick, which made deadlines fire early: tested, reverted), ~25 ns on the benchmark VM,
    // i.e. 5% of a pipelined GET. Callers resumed by a batch of replies re-queue inside the
    // reply loop, so their requests are stamped together with one clock read when the loop
    // ends (stamp_loop_arrivals). Their deadline can only be later than the call, by at most
    // the loop's run, during which the deadline timer could not have fired anyway.
    if (in_reply_loop_)
      loop_arrivals_ = true;
    else
      stamp_deadline(op, Clock::now());
    // In a reply loop the write comes when the chunk is full or the loop ends, in this same
    // handler, so the bytes can go to the write buffer now, while the caller's freshly
    // encoded request is still in cache (at the write, after up to hundreds of other
    // resumptions, it would not be).
    if (in_reply_loop_ && link_ == Link::up && !write_in_flight_ && queue_.written() + 1 == queue_.size()) {
      move_to_write_buffer(op);
      queue_.mark_all_written();
      // A chunk is ready: send it now, so the server works on it while the rest of the
      // loop runs (see consume()).
      if (++loop_chunk_ == loop_chunk_limit_) {
        loop_chunk_ = 0;
        start_write();
      }
    }
    if (link_ == Link::idle) start_supervisor();
    if (link_ == Link::up) schedule_flush();
  }

  // Completes `op` (already out of the queue and deadline list) with an error.
  void fail_op(PendingOp* op, boost::system::error_code ec, std::string what, bool post) {
    op->ec = ec;
    op->what = std::move(what);
    complete(op, post);
  }

  // Hands the result to the caller. `post` for completions that may run inside exec()'s
  // initiation or in the middle of bookkeeping; reply completions are dispatched (the
  // caller may resume inline, which the reply loop tolerates).
  void complete(PendingOp* op, bool post) {
    deadlines_.erase(op);
    Completion done{std::move(*op->handler), op, {}};
    op->handler.reset();
    if (op->ec) done.error = std::make_exception_ptr(boost::system::system_error(op->ec, op->what));
    if (post)  // never inline
      asio::post(std::move(done));
    else if (on_callers_thread(done.get_executor()))
      done();  // what dispatch would do, minus wrapping the call in a type-erased function
    else       // inline when the caller's executor (e.g. a strand) runs on this thread, else queued
      asio::dispatch(std::move(done));
  }

  // True when `ex` is a plain io_context executor whose context runs on this thread: then
  // dispatching to it runs the handler right here. (Other executors, e.g. strands, go
  // through asio::dispatch.)
  static bool on_callers_thread(const asio::any_io_executor& ex) noexcept {
    const auto* io = ex.target<asio::io_context::executor_type>();
    return io != nullptr && io->running_in_this_thread();
  }

  // Calls an op's handler with its result. Points to the op rather than holding the result,
  // so moving the completion through Asio's dispatch machinery does not move the reply each
  // time. No reference needed: the handler owns the awaiting coroutine stack, in which
  // exec()'s initiation holds a reference to the op, and the handler moves the reply into the
  // awaiting frame's result before it resumes the caller (which may free the op).
  struct Completion {
    PendingOp::Handler handler;
    PendingOp* op;
    std::exception_ptr error;

    using executor_type = asio::associated_executor_t<PendingOp::Handler>;
    executor_type get_executor() const noexcept { return asio::get_associated_executor(handler); }
    void operator()() { std::move(handler)(std::move(error), std::move(op->reply)); }
  };

  // Runs an erased handler on its associated executor (inline when already there).
  // (Boost 1.81's any_completion_handler cannot be passed to asio::dispatch itself, and
  // its move assignment recurses: only move-construct it.)
  static void invoke(asio::any_completion_handler<void()> h) {
    auto ex = asio::get_associated_executor(h);
    asio::dispatch(ex, [h = std::move(h)]() mutable { std::move(h)(); });
  }

  // The caller gave up (deadline or cancellation). Unwritten: never sent. Written: its
  // reply will be read and discarded.
  void abandon(ReplyQueue::Entry& entry, boost::system::error_code ec, std::string what) {
    PendingOp* op = entry.op;
    op->queued = false;
    if (queue_.is_written(op->id)) {
      entry.op = nullptr;  // replies_left stays: they are discarded on arrival
    } else {
      entry = ReplyQueue::Entry{};  // a hole
      --pending_;
    }
    fail_op(op, ec, std::move(what), true);
    op->release();  // the queue's reference
  }

  void cancel_op(PendingOp* op) {
    if (!op->queued) return;
    if (auto* e = queue_.find(op, op->id))
      abandon(*e, asio::error::operation_aborted, "corocache redis: request cancelled");
  }

  // --- deadlines: one timer, re-armed lazily -----------------------------------------------

  void stamp_deadline(PendingOp* op, Clock::time_point now) {
    op->deadline = now + op->timeout;
    deadlines_.insert(op);
    arm_deadline_timer(op->deadline);
  }

  // Gives the requests queued during a reply loop (ids from loop_first_id_ on, still live)
  // their deadlines.
  void stamp_loop_arrivals() {
    if (!std::exchange(loop_arrivals_, false)) return;
    const auto now = Clock::now();
    const std::uint64_t front = queue_.front_id();
    for (std::uint64_t id = std::max(loop_first_id_, front); id < front + queue_.size(); ++id) {
      PendingOp* op = queue_[static_cast<std::size_t>(id - front)].op;
      if (op && !op->in_deadlines) stamp_deadline(op, now);
    }
  }

  void arm_deadline_timer(Clock::time_point when) {
    if (timer_armed_ && timer_expiry_ <= when) return;
    timer_armed_ = true;
    timer_expiry_ = when;
    const auto epoch = ++timer_epoch_;
    deadline_timer_.expires_at(when);
    deadline_timer_.async_wait([self = shared_from_this(), epoch](boost::system::error_code) {
      if (epoch != self->timer_epoch_) return;  // superseded by an earlier deadline
      self->timer_armed_ = false;
      self->on_deadlines();
    });
  }

  void on_deadlines() {
    if (link_ == Link::closed) return;
    const auto now = Clock::now();
    while (!deadlines_.empty() && deadlines_.front()->deadline <= now) {
      PendingOp* op = deadlines_.front();
      deadlines_.erase(op);
      auto* e = queue_.find(op, op->id);
      if (!e) continue;
      if (queue_.is_written(op->id) || link_ == Link::up)
        abandon(*e, make_error_code(errc::timeout),
                "corocache redis: no reply before the request's deadline");
      else
        abandon(*e, make_error_code(errc::not_connected), not_connected_message());
    }
    drop_front_holes();
    if (!deadlines_.empty()) arm_deadline_timer(deadlines_.front()->deadline);
  }

  std::string endpoint_text() const {
    return options_.unix_socket.empty() ? options_.host + ":" + std::to_string(options_.port)
                                        : "unix:" + options_.unix_socket;
  }

  std::string not_connected_message() const {
    std::string m = "corocache redis: not connected to " + endpoint_text();
    if (!last_error_.empty()) m += " (" + last_error_ + ")";
    return m;
  }

  void drop_front_holes() {
    while (!queue_.empty() && queue_.front().op == nullptr && queue_.front().replies_left == 0)
      queue_.pop_front();
  }

  // --- writing ----------------------------------------------------------------------------

  void schedule_flush() {
    if (write_in_flight_ || flush_posted_ || (!queue_.has_unwritten() && write_buf_.empty())) return;
    if (in_reply_loop_) {
      flush_after_loop_ = true;  // the loop writes in chunks and the rest when it ends
      return;
    }
    // Deferred so requests submitted in the same burst leave in one write.
    flush_posted_ = true;
    asio::post(strand_, [self = shared_from_this()] {
      self->flush_posted_ = false;
      self->start_write();
    });
  }

  void start_write() {
    if (write_in_flight_ || link_ != Link::up) return;
    for (std::size_t i = queue_.written(); i < queue_.size(); ++i)
      if (PendingOp* op = queue_[i].op) move_to_write_buffer(op);
    queue_.mark_all_written();
    if (write_buf_.empty()) return;
    writes_.fetch_add(1, std::memory_order_relaxed);
    // Try the write now (the socket is non-blocking): a batch usually fits in the socket
    // buffer, and writing inline saves the reactor round trip an async_write completion
    // costs (a posted handler, and an extra epoll_wait before the reply can be read).
    boost::system::error_code ec;
    const std::size_t sent = socket_.write_some(asio::buffer(write_buf_), ec);
    if (!ec && sent == write_buf_.size()) {
      release_write_buffer();
      return;
    }
    // The rest (or all of it, when the socket would block or failed) goes through the
    // reactor; a real error comes back in on_written and takes the link down there.
    const std::size_t done = ec ? 0 : sent;
    write_in_flight_ = true;
    asio::async_write(socket_, asio::buffer(write_buf_) + done,
                      [self = shared_from_this(), gen = generation_](
                          boost::system::error_code ec, std::size_t) { self->on_written(gen, ec); });
  }

  // Appends a request's bytes to the write buffer and frees them (the caller of it marks the
  // queue written).
  void move_to_write_buffer(PendingOp* op) {
    if (write_buf_.empty() && op->bytes.size() > write_buf_.capacity()) {
      write_buf_.swap(op->bytes);  // a large lone request: no copy
    } else {
      write_buf_ += op->bytes;
      std::string().swap(op->bytes);
    }
    op->written = true;
  }

  void release_write_buffer() {
    write_buf_.clear();
    if (write_buf_.capacity() > 1024 * 1024) std::string().swap(write_buf_);
  }

  void on_written(std::uint64_t gen, boost::system::error_code ec) {
    write_in_flight_ = false;
    release_write_buffer();
    if (gen != generation_) {
      if (link_ == Link::up) start_write();  // a new link queued work behind the old write
      return;
    }
    if (ec) {
      link_down(errc::connection_lost, "write failed: " + ec.message());
      return;
    }
    if (queue_.has_unwritten()) start_write();
  }

  // --- reading ----------------------------------------------------------------------------

  void start_read() {
    socket_.async_read_some(asio::buffer(read_buf_),
                            [self = shared_from_this(), gen = generation_](
                                boost::system::error_code ec, std::size_t n) { self->on_read(gen, ec, n); });
  }

  void on_read(std::uint64_t gen, boost::system::error_code ec, std::size_t n) {
    if (gen != generation_) return;
    if (ec) {
      read_failed(ec);
      return;
    }
    consume(gen, n);
  }

  void read_failed(boost::system::error_code ec) {
    link_down(errc::connection_lost, ec == asio::error::eof ? std::string("the server closed the connection")
                                                            : "read failed: " + ec.message());
  }

  // A reply loop writes what its resumed callers queue in chunks of (requests in flight at
  // the loop's start) / loop_chunks_in_flight requests, and of at least min_loop_chunk.
  static constexpr std::size_t loop_chunks_in_flight = 4;
  static constexpr std::size_t min_loop_chunk = 4;

  // Hands out the replies in the `n` new bytes of read_buf_, writes what the resumed callers
  // queue, and waits for more.
  //
  // Resumed callers usually queue their next request at once. Writing them all when the loop
  // ends would leave the server idle for the whole loop and the client idle for the server's
  // whole batch: with N requests in flight, client and server would take turns. Instead the
  // loop writes every N/4 requests as they are queued, so the server works on one chunk
  // while the client resumes the callers of the next, and about four chunks circulate.
  // (Back-to-back runs against one write per loop: 2.4-3.2x the throughput at N=256 and
  // 1.3-1.7x at N=16. N/8 and N/2 did worse than N/4 at N=256, and N/2 gained nothing at
  // N=16: smaller chunks cost more system calls per request on both sides, larger ones
  // overlap less.)
  void consume(std::uint64_t gen, std::size_t n) {
    reader_.feed(read_buf_.data(), n);
    replies_end_id_ = queue_.front_id() + queue_.written();  // requests sent before these bytes came
    in_reply_loop_ = true;
    loop_chunk_ = 0;
    loop_chunk_limit_ = std::max(min_loop_chunk, queue_.written() / loop_chunks_in_flight);
    loop_first_id_ = queue_.front_id() + queue_.size();
    const bool link_kept = deliver_replies(gen);
    in_reply_loop_ = false;
    stamp_loop_arrivals();  // also after a failure: unwritten requests wait for the next link
    if (!link_kept) return;
    if (flush_after_loop_) {
      flush_after_loop_ = false;
      start_write();  // never ends the link: a failed write reports through on_written
    }
    await_replies();
  }

  // Hands every complete reply in the reader to its caller (who may resume inline); false
  // when the link went down meanwhile.
  bool deliver_replies(std::uint64_t gen) {
    Reply reply;
    for (;;) {
      const auto status = reader_.next(reply);
      if (status == Reader::Status::need_more) return true;
      if (status == Reader::Status::error) {
        link_down(errc::protocol_error, reader_.error_message());
        return false;
      }
      if (!deliver(std::move(reply), status == Reader::Status::too_large)) {
        link_down(errc::protocol_error, "a reply arrived for no request");
        return false;
      }
      // A resumed caller may have closed the connection (or anything else that ends the link).
      if (gen != generation_) return false;
    }
  }

  // --- busy polling (RedisOptions::busy_poll) -------------------------------------------------

  // While written requests await replies and the poll budget lasts, try non-blocking reads
  // from posted handlers (so other work on the executor still runs between tries) instead of
  // sleeping in the reactor: the reply is picked up without the wake-up a sleeping thread
  // needs. Otherwise (or once the budget is spent) a normal read waits in the reactor.
  void await_replies() {
    if (options_.busy_poll <= std::chrono::microseconds::zero() || queue_.written() == 0) {
      start_read();
      return;
    }
    poll_until_ = Clock::now() + options_.busy_poll;
    post_poll();
  }

  void post_poll() {
    asio::post(strand_, [self = shared_from_this(), gen = generation_] { self->poll_once(gen); });
  }

  void poll_once(std::uint64_t gen) {
    if (gen != generation_) return;
    boost::system::error_code ec;
    const std::size_t n = socket_.read_some(asio::buffer(read_buf_), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      if (Clock::now() < poll_until_)
        post_poll();
      else
        start_read();  // budget spent: sleep in the reactor
      return;
    }
    if (ec) {
      read_failed(ec);
      return;
    }
    consume(gen, n);
  }

  // Matches one reply to the front of the queue; false if nothing was waiting for one.
  // A too_large reply fails its request alone with reply_too_large (the link stays).
  bool deliver(Reply&& reply, bool too_large = false) {
    drop_front_holes();
    if (queue_.written() == 0 || queue_.front_id() >= replies_end_id_) return false;
    link_proven_ = true;
    auto& entry = queue_.front();
    --entry.replies_left;
    PendingOp* op = entry.op;
    if (op && too_large && !op->ec) {
      op->ec = make_error_code(errc::reply_too_large);
      op->what = "corocache redis: " + reader_.error_message();
      op->got_error_reply = true;  // the request's later replies change nothing
    } else if (op) {
      // Multi-command request: keep the first error reply, else the last reply.
      if (!op->got_error_reply) {
        op->got_error_reply = reply.is_error() && entry.replies_left > 0;
        op->reply = std::move(reply);
      }
    }
    if (entry.replies_left > 0) return true;
    if (op) {
      entry.op = nullptr;
      op->queued = false;
      queue_.pop_front();
      --pending_;
      complete(op, /*post=*/false);  // may resume the caller right here
      op->release();                 // the queue's reference
    } else {
      queue_.pop_front();
      --pending_;
    }
    return true;
  }

  // --- link lifecycle -----------------------------------------------------------------------

  // The link is unusable: close it, fail what was written on it, let the supervisor reconnect.
  void link_down(errc reason, std::string why) {
    if (link_ != Link::up && link_ != Link::connecting) return;
    ++generation_;
    boost::system::error_code ignored;
    socket_.close(ignored);
    reader_.reset();
    link_ = Link::down;
    last_error_ = why;
    // Bytes buffered but never written belong to the requests failed below; an async write
    // in flight still owns the buffer (on_written clears it).
    if (!write_in_flight_) release_write_buffer();
    const auto message = "corocache redis: " + endpoint_text() + ": " + why;
    fail_written(make_error_code(reason), message);
    wake_timer_.cancel();
  }

  void fail_written(boost::system::error_code ec, const std::string& message) {
    while (queue_.written() > 0) {
      auto& entry = queue_.front();
      if (entry.op || entry.replies_left > 0) --pending_;  // holes were uncounted already
      PendingOp* op = std::exchange(entry.op, nullptr);
      queue_.pop_front();
      if (op) {
        op->queued = false;
        fail_op(op, ec, message, true);
        op->release();
      }
    }
    queue_.reset_written();
    drop_front_holes();
  }

  void fail_unwritten(boost::system::error_code ec, const std::string& message) {
    while (!queue_.empty()) {
      auto& entry = queue_.front();
      PendingOp* op = std::exchange(entry.op, nullptr);
      queue_.pop_front();
      if (op) {
        --pending_;
        op->queued = false;
        fail_op(op, ec, message, true);
        op->release();
      }
    }
  }

  void do_close() {
    if (link_ == Link::closed) return;
    ++generation_;
    link_ = Link::closed;
    boost::system::error_code ignored;
    socket_.close(ignored);
    if (!write_in_flight_) release_write_buffer();
    const auto ec = make_error_code(errc::shut_down);
    const std::string message = "corocache redis: the connection was closed";
    fail_written(ec, message);
    fail_unwritten(ec, message);
    pending_ = 0;
    ++timer_epoch_;
    deadline_timer_.cancel();
    wake_timer_.cancel();
    if (resolver_) resolver_->cancel();
  }

  // --- supervisor: connect, handshake, wait for the drop, back off, repeat -----------------

  void start_supervisor() {
    link_ = Link::connecting;
    asio::co_spawn(strand_, supervise(shared_from_this()), asio::detached);
  }

  static asio::awaitable<void> supervise(std::shared_ptr<ConnectionImpl> self) {
    auto backoff = self->options_.reconnect_min;
    while (self->link_ != Link::closed) {
      self->link_ = Link::connecting;
      self->connect_attempts_.fetch_add(1, std::memory_order_relaxed);
      auto result = co_await self->connect_once();
      if (self->link_ == Link::closed) break;
      Duration delay{};
      if (!result) {
        // Up: serve until the link drops.
        self->link_ = Link::up;
        self->auth_failed_ = false;
        self->last_error_.clear();
        self->connects_.fetch_add(1, std::memory_order_relaxed);
        // Non-blocking, so start_write() and busy polling can try the socket directly.
        boost::system::error_code ignored;
        self->socket_.non_blocking(true, ignored);
        self->start_read();
        self->start_write();
        while (self->link_ == Link::up) {
          self->wake_timer_.expires_at(Clock::time_point::max());
          co_await self->wake_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        if (self->link_ == Link::closed) break;
        // Reconnect at once after a link that worked; back off after one that did not.
        delay = self->link_proven_ ? Duration::zero() : backoff;
        backoff = self->link_proven_ ? self->options_.reconnect_min
                                     : std::min(backoff * 2, self->options_.reconnect_max);
      } else {
        self->link_ = Link::down;
        boost::system::error_code ignored;
        self->socket_.close(ignored);
        self->last_error_ = result->message;
        if (result->code == errc::auth_failed) {
          // Rejected credentials or database: fail waiting requests now with a clear error,
          // and retry only at the slowest pace (no reconnect storm).
          self->auth_failed_ = true;
          self->auth_error_ = "corocache redis: " + self->endpoint_text() + ": " + result->message;
          self->fail_unwritten(make_error_code(errc::auth_failed), self->auth_error_);
          delay = self->options_.reconnect_max;
        } else {
          delay = backoff;
          backoff = std::min(backoff * 2, self->options_.reconnect_max);
        }
      }
      if (delay > Duration::zero() && self->link_ != Link::closed) {
        self->wake_timer_.expires_after(delay);
        co_await self->wake_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
      }
    }
  }

  struct ConnectFailure {
    errc code;
    std::string message;  // never contains the password
  };

  // One attempt, bounded by connect_timeout as a whole. Empty on success.
  asio::awaitable<std::optional<ConnectFailure>> connect_once() {
    using namespace asio::experimental::awaitable_operators;
    const auto deadline = Clock::now() + options_.connect_timeout;
    ++generation_;
    boost::system::error_code ignored;
    socket_.close(ignored);
    reader_.reset();
    link_proven_ = false;

    std::vector<Socket::endpoint_type> endpoints;
    if (!options_.unix_socket.empty()) {
      endpoints.emplace_back(asio::local::stream_protocol::endpoint(options_.unix_socket));
    } else {
      boost::system::error_code ec;
      const auto address = asio::ip::make_address(options_.host, ec);
      if (!ec) {
        endpoints.emplace_back(asio::ip::tcp::endpoint(address, options_.port));
      } else {
        auto resolved = co_await resolve(deadline);
        if (std::holds_alternative<ConnectFailure>(resolved))
          co_return std::get<ConnectFailure>(std::move(resolved));
        endpoints = std::get<std::vector<Socket::endpoint_type>>(std::move(resolved));
      }
    }

    std::string last = "no address";
    for (const auto& ep : endpoints) {
      if (link_ == Link::closed) co_return ConnectFailure{errc::shut_down, "closed"};
      boost::system::error_code ec;
      socket_.close(ignored);
      socket_.open(ep.protocol(), ec);
      if (ec) {
        last = "socket: " + ec.message();
        continue;
      }
      asio::steady_timer timer(strand_, deadline);
      auto outcome = co_await (socket_.async_connect(ep, asio::as_tuple(asio::use_awaitable)) ||
                               timer.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (outcome.index() == 1) co_return ConnectFailure{errc::not_connected, "connect timed out"};
      if (auto [cec] = std::get<0>(outcome); cec) {
        last = "connect: " + cec.message();
        continue;
      }
      if (options_.unix_socket.empty()) {
        socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
        socket_.set_option(asio::socket_base::keep_alive(true), ignored);  // notice dead peers eventually
      }
      // One co_return of a named result: g++ 12 miscompiles `if (co_await x) co_return ...`.
      auto failure = co_await handshake(deadline);
      co_return failure;
    }
    co_return ConnectFailure{errc::not_connected, last};
  }

  // AUTH and SELECT, bounded by the attempt's deadline.
  asio::awaitable<std::optional<ConnectFailure>> handshake(Clock::time_point deadline) {
    using namespace asio::experimental::awaitable_operators;
    Request hello;
    if (!options_.password.empty()) {
      if (options_.user.empty())
        hello.add("AUTH", options_.password);
      else
        hello.add("AUTH", options_.user, options_.password);
    }
    if (options_.db != 0) hello.add("SELECT", options_.db);
    if (hello.empty()) co_return std::nullopt;

    asio::steady_timer timer(strand_, deadline);
    auto wrote = co_await (
        asio::async_write(socket_, asio::buffer(hello.bytes), asio::as_tuple(asio::use_awaitable)) ||
        timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (wrote.index() == 1) co_return ConnectFailure{errc::not_connected, "handshake timed out"};
    if (auto [ec, n] = std::get<0>(wrote); ec)
      co_return ConnectFailure{errc::not_connected, "handshake write: " + ec.message()};

    std::size_t index = 0;
    while (index < hello.replies) {
      Reply reply;
      const auto status = reader_.next(reply);
      if (status == Reader::Status::error || status == Reader::Status::too_large)
        co_return ConnectFailure{errc::protocol_error, reader_.error_message()};
      if (status == Reader::Status::reply) {
        if (reply.is_error()) {
          const bool is_auth = !options_.password.empty() && index == 0;
          std::string what =
              is_auth ? "AUTH rejected" : "SELECT " + std::to_string(options_.db) + " rejected";
          if (is_auth && !options_.user.empty()) what += " for user '" + options_.user + "'";
          co_return ConnectFailure{errc::auth_failed, what + ": " + reply.str};
        }
        ++index;
        continue;
      }
      auto got =
          co_await (socket_.async_read_some(asio::buffer(read_buf_), asio::as_tuple(asio::use_awaitable)) ||
                    timer.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (got.index() == 1) co_return ConnectFailure{errc::not_connected, "handshake timed out"};
      auto [ec, n] = std::get<0>(got);
      if (ec) co_return ConnectFailure{errc::not_connected, "handshake read: " + ec.message()};
      reader_.feed(read_buf_.data(), n);
    }
    if (reader_.buffered() > 0)  // more than the handshake's replies: nobody asked for them
      co_return ConnectFailure{errc::protocol_error, "a reply arrived for no request"};
    link_proven_ = true;  // the server answered
    co_return std::nullopt;
  }

  // Name resolution with a deadline. Asio's resolver cannot be interrupted (getaddrinfo
  // runs to completion in a background thread), so the attempt stops waiting at the
  // deadline and the resolver finishes on its own, holding its state alive.
  asio::awaitable<std::variant<ConnectFailure, std::vector<Socket::endpoint_type>>> resolve(
      Clock::time_point deadline) {
    struct Race {
      explicit Race(const Strand& s) : resolver(s), timer(s) {}
      asio::ip::tcp::resolver resolver;
      asio::steady_timer timer;
      std::optional<asio::any_completion_handler<void()>> handler;
      boost::system::error_code ec;
      bool timed_out = false;
      std::vector<Socket::endpoint_type> endpoints;
      void finish() {
        if (!handler) return;
        timer.cancel();
        auto h = std::move(*handler);
        handler.reset();
        asio::post(timer.get_executor(), [h = std::move(h)]() mutable { invoke(std::move(h)); });
      }
    };
    auto race = std::make_shared<Race>(strand_);
    resolver_ = std::shared_ptr<asio::ip::tcp::resolver>(race, &race->resolver);
    co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
        [&](auto handler) {
          race->handler.emplace(std::move(handler));
          race->timer.expires_at(deadline);
          race->timer.async_wait([race](boost::system::error_code ec) {
            if (ec) return;
            race->timed_out = true;
            race->finish();
          });
          race->resolver.async_resolve(
              options_.host, std::to_string(options_.port),
              [race](boost::system::error_code ec, asio::ip::tcp::resolver::results_type r) {
                race->ec = ec;
                for (const auto& entry : r) race->endpoints.emplace_back(entry.endpoint());
                race->finish();
              });
        },
        asio::use_awaitable);
    resolver_.reset();
    if (race->timed_out) co_return ConnectFailure{errc::not_connected, "name resolution timed out"};
    if (race->ec) co_return ConnectFailure{errc::not_connected, "cannot resolve host: " + race->ec.message()};
    if (race->endpoints.empty()) co_return ConnectFailure{errc::not_connected, "host resolved to no address"};
    co_return std::move(race->endpoints);
  }

  RedisOptions options_;
  Strand strand_;
  Socket socket_;
  asio::steady_timer deadline_timer_;
  asio::steady_timer wake_timer_;  // supervisor: link-drop signal and backoff sleeps
  std::shared_ptr<asio::ip::tcp::resolver> resolver_;
  Reader reader_;
  std::vector<char> read_buf_;
  std::string write_buf_;
  ReplyQueue queue_;
  DeadlineList deadlines_;
  std::size_t pending_ = 0;  // live + abandoned-but-written requests

  Link link_ = Link::idle;
  std::uint64_t generation_ = 0;  // bumped whenever the socket is replaced or closed
  bool write_in_flight_ = false;
  bool flush_posted_ = false;
  bool in_reply_loop_ = false;
  bool flush_after_loop_ = false;
  std::size_t loop_chunk_ = 0;        // requests buffered in this reply loop since its last write
  std::size_t loop_chunk_limit_ = 0;  // ... at which the loop writes them (consume())
  bool loop_arrivals_ = false;        // requests were queued during the current reply loop
  std::uint64_t loop_first_id_ = 0;   // the id the first of them got
  std::uint64_t replies_end_id_ = 0;  // the bytes being delivered answer only requests below it
  bool link_proven_ = false;          // the current link completed its handshake or gave a reply
  bool auth_failed_ = false;
  std::string auth_error_;
  std::string last_error_;

  Clock::time_point poll_until_{};  // end of the current busy poll

  bool timer_armed_ = false;
  Clock::time_point timer_expiry_{};
  std::uint64_t timer_epoch_ = 0;

  std::atomic<bool> closed_{false};
  std::atomic<std::uint64_t> connect_attempts_{0};
  std::atomic<std::uint64_t> connects_{0};
  std::atomic<std::uint64_t> writes_{0};
  std::atomic<std::uint64_t> requests_{0};
};

/// A handle to one pipelined Redis connection. Movable, not copyable; destroying it (or
/// calling close()) fails pending requests with errc::shut_down and stops its background
/// work. Destroy it before the io_context it runs on.
class Connection {
 public:
  /// Validates `options` (std::invalid_argument) and prepares the connection; nothing is
  /// connected until the first exec().
  Connection(asio::any_io_executor ex, RedisOptions options) {
    options.validate();
    impl_ = std::make_shared<ConnectionImpl>(std::move(ex), std::move(options));
  }
  Connection(Connection&&) noexcept = default;
  Connection& operator=(Connection&& other) noexcept {
    if (this != &other) {
      close();
      impl_ = std::move(other.impl_);
    }
    return *this;
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { close(); }

  /// Sends `request` on the shared, automatically pipelined connection and returns its
  /// reply; for a request of several commands, the first error reply among them, else the
  /// last reply (e.g. EXEC's array). Error replies come back as Reply{ReplyType::error}.
  ///
  /// Completion: the caller resumes on its own executor. Throws std::invalid_argument for
  /// an empty request or negative timeout (before any I/O), else system_error:
  /// errc::timeout (deadline = `timeout`, or options().request_timeout when zero; the
  /// request may still run), errc::connection_lost (written, then the link dropped: may
  /// have run), errc::not_connected (never written before the deadline: did not run),
  /// errc::overloaded (max_pending reached: nothing sent), errc::protocol_error (bad or
  /// oversized reply; the link is reset), errc::auth_failed (AUTH/SELECT rejected; the
  /// message names the user, never the password), errc::shut_down (closed).
  /// Cancellation: asio per-operation cancellation (any type), e.g. awaitable_operators
  /// `||`, completes at once with asio::error::operation_aborted; an unwritten request is
  /// then never sent, a written one's late reply is discarded.
  /// Lifetime: the Connection must be alive when exec() is called (co_awaited); the
  /// request's bytes are owned by the operation; the returned awaitable holds the shared
  /// state, so it may be awaited after the Connection is gone (then: shut_down).
  /// Thread-safe: any thread, any executor.
  asio::awaitable<Reply> exec(Request request, Duration timeout = Duration::zero()) {
    // No coroutine frame of its own: the awaitable is Asio's initiation, whose arguments
    // (the shared state and the op) live until the caller has resumed. Invalid input is
    // reported when awaited, as before, through a small coroutine.
    if (request.replies == 0 || request.bytes.empty())
      return fail(std::make_exception_ptr(std::invalid_argument("corocache redis: an empty request")));
    if (timeout < Duration::zero())
      return fail(
          std::make_exception_ptr(std::invalid_argument("corocache redis: a negative request timeout")));
    if (request.replies > 0xffffffffu)
      return fail(std::make_exception_ptr(
          std::invalid_argument("corocache redis: too many commands in one request")));
    if (!impl_)
      return fail(std::make_exception_ptr(boost::system::system_error(
          make_error_code(errc::shut_down), "corocache redis: a moved-from connection")));
    PendingRef op = PendingRef::adopt(PendingOp::create());
    op->bytes = std::move(request.bytes);
    op->replies = static_cast<std::uint32_t>(request.replies);
    op->timeout = timeout > Duration::zero() ? timeout : impl_->options().request_timeout;
    op->owner = impl_.get();
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, Reply)>(
        [](auto handler, const std::shared_ptr<ConnectionImpl>& impl, const PendingRef& p) {
          impl->submit(p.get(), std::move(handler));
        },
        asio::use_awaitable, impl_, std::move(op));
  }

  /// Fails pending requests with errc::shut_down and stops reconnecting. Idempotent.
  void close() {
    if (impl_) impl_->close();
  }

  /// Not on a moved-from Connection.
  const RedisOptions& options() const { return impl_->options(); }
  ConnectionStats stats() const { return impl_ ? impl_->stats() : ConnectionStats{}; }

 private:
  // exec()'s answer to invalid input: throws `error` when awaited.
  static asio::awaitable<Reply> fail(std::exception_ptr error) {
    std::rethrow_exception(error);
    co_return Reply{};
  }

  std::shared_ptr<ConnectionImpl> impl_;
};

}  // namespace corocache::detail::redis
