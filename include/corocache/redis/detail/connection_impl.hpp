#pragma once
// The I/O layer of a pipelined Redis connection (Connection, connection.hpp, is its handle):
// the socket, the timers, the strand and the resolver. Every decision is made by I/O-free
// code: the Multiplexer (multiplexer.hpp), the link state machine (link_fsm.hpp) and the
// measured choices of how to wait and write (loop_timing.hpp). Sentinel: each connect asks
// the SentinelMonitor for the primary, checks ROLE, and drops the link on -READONLY or
// +switch-master. TLS is a second code path per link (tls_ set); plain links keep their
// inline write_some and polling. State is touched only on the strand; exec() may be called
// from any thread. The supervisor (connect, handshake, back off) is in
// connection_supervisor.hpp, included at the end. docs/redis_connection.md has the design.

#include <corocache/backend.hpp>
#include <corocache/detail/context_shutdown.hpp>
#include <corocache/errors.hpp>
#include <corocache/redis/detail/connect_io.hpp>
#include <corocache/redis/detail/connection_report.hpp>
#include <corocache/redis/detail/earliest_deadline_timer.hpp>
#include <corocache/redis/detail/exec_op.hpp>
#include <corocache/redis/detail/link_fsm.hpp>
#include <corocache/redis/detail/loop_timing.hpp>
#include <corocache/redis/detail/multiplexer.hpp>
#include <corocache/redis/detail/reader.hpp>
#include <corocache/redis/detail/reply.hpp>
#include <corocache/redis/detail/sentinel_monitor.hpp>
#include <corocache/redis/detail/tls_io.hpp>
#include <corocache/redis/options.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace corocache::detail::redis {

namespace asio = boost::asio;

class ConnectionImpl final : public std::enable_shared_from_this<ConnectionImpl>,
                             public detail::ContextShutdownListener {
 public:
  using Strand = asio::strand<asio::any_io_executor>;
  using Socket = asio::generic::stream_protocol::socket;

  ConnectionImpl(asio::any_io_executor ex, RedisOptions options)
      : options_(std::move(options)),
        tls_context_(options_.tls.enabled ? link_io::make_tls_context(options_.tls) : nullptr),
        strand_(asio::make_strand(ex)),
        socket_(strand_),
        deadline_timer_(strand_),
        check_timer_(strand_),
        wake_timer_(strand_),
        reader_(ReaderLimits{options_.max_reply_bytes, options_.max_reply_elements}),
        read_buf_(64 * 1024),
        mux_(MultiplexerConfig{options_.max_pending, options_.stall_timeout, options_.health_check_interval}),
        timing_(options_.busy_poll) {
    // A reply over the limits may be a slot map or SCAN page (Request::control), not a value.
    // The handshake answers for itself while it runs (link_io::ReaderWideningScope: ROLE only).
    reader_.allow_wider(
        ReaderLimits{options_.max_reply_bytes, options_.max_reply_elements}.control(),
        [](void* self) { return static_cast<ConnectionImpl*>(self)->mux_.next_reply_is_control(); }, this);
  }

  const RedisOptions& options() const noexcept { return options_; }

  ConnectionStats stats() const noexcept { return counters_.snapshot(); }

  /// Called in exec()'s initiation (caller's context). `op` and `this` are alive until its
  /// handler has run: exec()'s suspended initiation holds a reference to both.
  template <class Op>
  void submit(Op* op, typename Op::Handler handler) {
    op->handler.emplace(std::move(handler));
    auto slot = op->handler->get_cancellation_slot();
    if (slot.is_connected()) slot.template emplace<CancelHandler>(op);
    submit_taken(op);
  }

  /// Instead of submit(): fails `op` at once (posted) with `ec` and the message `what`,
  /// before it is queued; e.g. a call whose deadline passed before it was awaited.
  template <class Op>
  void refuse(Op* op, typename Op::Handler handler, boost::system::error_code ec, std::string what) {
    op->handler.emplace(std::move(handler));
    op->ec = ec;
    op->what = std::move(what);
    op->deliver(/*post=*/true);
  }

  /// Fails everything with shut_down and stops all background work. Idempotent; any thread.
  void close() {
    if (closed_.exchange(true, std::memory_order_acq_rel)) return;
    asio::dispatch(strand_, [self = shared_from_this()] { self->do_close(); });
  }

  /// The context is shutting down (context_shutdown.hpp): no thread runs it, so the strand's
  /// state is ours. Fails every call with shut_down; the context destroys their handlers.
  void on_context_shutdown() noexcept override {
    closed_.store(true, std::memory_order_release);
    do_close();
  }

 private:
  enum class Link { idle, connecting, up, down, closed };

  // submit()'s part that does not depend on the caller's handler type.
  void submit_taken(ExecOp* op) {
    if (closed_.load(std::memory_order_acquire)) {
      fail(op, make_error_code(errc::shut_down));
      return;
    }
    // A caller resumed by a reply (dispatched inline) is already on the strand: queue
    // directly; asio::dispatch through strand<any_io_executor> would allocate per request.
    if (strand_.running_in_this_thread())
      enqueue(op);
    else
      asio::dispatch(strand_, [this, op] { enqueue(op); });
  }

  // Installed in the caller's cancellation slot, which may be emitted from any thread: it
  // only posts to the strand, holding references. Total cancellation (no observable side
  // effect) cannot take back a written request; terminal and partial abandon it.
  struct CancelHandler {
    explicit CancelHandler(ExecOp* o) : op(ExecRef::share(o)) {}
    void operator()(asio::cancellation_type_t type) {
      if (type == asio::cancellation_type::none) return;
      op->note_cancel(type);
      const bool written_too =
          (type & (asio::cancellation_type::terminal | asio::cancellation_type::partial)) !=
          asio::cancellation_type::none;
      auto* impl = static_cast<ConnectionImpl*>(op->owner);
      asio::post(impl->strand_,
                 [self = impl->shared_from_this(), ref = ExecRef::share(op.get()), written_too] {
                   if (auto* done = self->mux_.cancel(ref.get(), written_too))
                     self->finish(done, /*post=*/true);
                 });
    }
    ExecRef op;
  };

  static Clock::time_point now() noexcept { return Clock::now(); }

  // --- requests (strand) -------------------------------------------------------------------

  void enqueue(ExecOp* op) {
    if (link_ == Link::closed) return fail(op, make_error_code(errc::shut_down));
    if (rejected_ && link_ != Link::up) return fail(op, make_error_code(rejected_code_));
    const auto submitted = mux_.submit(op, &ConnectionImpl::now);
    if (submitted == Multiplexer::Submit::overloaded) return fail(op, make_error_code(errc::overloaded));
    op->add_ref();  // the multiplexer's hold, released in finish()
    ConnectionCounters::bump(counters_.requests);
    if (!mux_.in_batch()) arm_deadline_timer(op->deadline);
    if (submitted == Multiplexer::Submit::write_now) start_write();
    if (link_ == Link::idle) start_supervisor();
    if (link_ == Link::up) schedule_flush();
  }

  // Fails an op the multiplexer never took (or already gave back): always posted.
  void fail(ExecOp* op, boost::system::error_code ec) {
    op->ec = ec;
    deliver(op, /*post=*/true);
  }

  // Hands back an op the multiplexer returned (completed or failed) and drops its hold.
  void finish(PendingOp* p, bool post) {
    auto* op = static_cast<ExecOp*>(p);
    deliver(op, post);
    op->release();
  }

  // Resumes the caller. `post` for completions in the middle of bookkeeping; replies are
  // dispatched (the caller may resume inline, which the reply loop tolerates).
  void deliver(ExecOp* op, bool post) {
    if (op->ec && !op->ec_out) op->what = message_for(op->ec);
    op->deliver(post);
  }

  std::string endpoint_text() const {
    return redis::endpoint_text(options_, options_.sentinel ? options_.sentinel->options().master_name : "",
                                target_.host.empty() ? std::string() : target_.to_string());
  }

  // Reads strand state, except for shut_down: submit() fails a call after close() on the
  // caller's thread.
  std::string message_for(boost::system::error_code ec) const {
    if (ec == errc::shut_down) return failure_message(ec, FailureFacts{});
    const std::string endpoint = endpoint_text();
    return failure_message(ec, FailureFacts{endpoint, last_error_, auth_error_, reader_.error_message(),
                                            mux_.in_use(), options_.max_pending});
  }

  // --- timers: deadlines (armed lazily for the earliest) and periodic checks --------------

  void arm_deadline_timer(Clock::time_point when) {
    deadline_timer_.arm(when, [self = shared_from_this()] { self->tick(); });
  }

  void start_check_timer() {
    const auto period = mux_.check_period();
    if (period <= Duration::zero()) return;
    check_timer_.expires_after(period);
    check_timer_.async_wait([self = shared_from_this(), gen = generation_](boost::system::error_code) {
      if (gen != self->generation_ || self->link_ != Link::up) return;
      self->tick();
      if (gen == self->generation_ && self->link_ == Link::up) self->start_check_timer();
    });
  }

  void tick() {
    if (link_ == Link::closed) return;
    const auto t = mux_.on_tick(now(), [this](PendingOp* op) { finish(op, true); });
    if (t.drop_link) {
      ConnectionCounters::bump(counters_.stalls);
      link_down(errc::connection_lost, "no reply from the server within stall_timeout (" +
                                           std::to_string(options_.stall_timeout.count()) + " ms)");
    } else if (t.write) {
      ConnectionCounters::bump(counters_.health_checks);
      start_write();
    }
    arm_deadline_timer(mux_.next_deadline());
  }

  // --- writing ------------------------------------------------------------------------------

  void schedule_flush() {
    if (flush_posted_ || !mux_.wants_write()) return;
    if (mux_.in_batch()) {
      flush_after_batch_ = true;  // the reply loop writes in chunks and the rest when it ends
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
    if (link_ != Link::up) return;
    const auto bytes = mux_.prepare_write();
    if (bytes.empty()) return;
    ConnectionCounters::bump(counters_.writes);
    if (tls_) return start_tls_write();
    // Try the write now (the socket is non-blocking): a batch usually fits in the socket
    // buffer, and writing inline saves the reactor round trip an async_write costs.
    boost::system::error_code ec;
    const std::size_t sent = socket_.write_some(asio::buffer(bytes.data(), bytes.size()), ec);
    if (!ec && mux_.on_written(sent)) {
      if (idle_read_) wait_from_idle();
      return;
    }
    // The rest goes through the reactor; a real error comes back in on_written.
    const auto rest = mux_.unsent();
    asio::async_write(socket_, asio::buffer(rest.data(), rest.size()),
                      [self = shared_from_this(), gen = generation_](
                          boost::system::error_code ec, std::size_t n) { self->on_written(gen, ec, n); });
  }

  // A TLS write goes through the reactor: a synchronous SSL write on a non-blocking socket
  // could leave a half-written record inside OpenSSL. The handler holds the stream alive.
  void start_tls_write() {
    const auto rest = mux_.unsent();
    asio::async_write(*tls_, asio::buffer(rest.data(), rest.size()),
                      [self = shared_from_this(), gen = generation_, hold = tls_](
                          boost::system::error_code ec, std::size_t n) { self->on_written(gen, ec, n); });
  }

  void on_written(std::uint64_t gen, boost::system::error_code ec, std::size_t n) {
    if (gen != generation_ || ec) {
      mux_.on_write_aborted();
      if (gen == generation_)
        link_down(errc::connection_lost, "write failed: " + ec.message());
      else if (link_ == Link::up)
        start_write();  // a new link queued work behind the old write
      return;
    }
    mux_.on_written(n);
    if (mux_.wants_write()) start_write();
  }

  // --- reading ------------------------------------------------------------------------------

  void start_read() {
    auto on_read = [self = shared_from_this(), gen = generation_](boost::system::error_code ec,
                                                                  std::size_t n) {
      if (gen != self->generation_) return;
      self->idle_read_ = false;
      // Taken back by wait_from_idle() to poll instead (unless it had completed already).
      if (std::exchange(self->poll_after_cancel_, false) && ec == asio::error::operation_aborted)
        return self->post_poll();
      if (ec) return self->read_failed(ec);
      self->consume(gen, n);
    };
    if (!tls_) {
      idle_read_ = timing_.polls() && mux_.written() == 0;
      return socket_.async_read_some(asio::buffer(read_buf_), std::move(on_read));
    }
    // The handler holds the TLS stream: a new link replaces tls_ while this read may still
    // be completing inside OpenSSL.
    tls_->async_read_some(asio::buffer(read_buf_),
                          [on_read = std::move(on_read), hold = tls_](
                              boost::system::error_code ec, std::size_t n) mutable { on_read(ec, n); });
  }

  void read_failed(boost::system::error_code ec) {
    link_down(errc::connection_lost, ec == asio::error::eof ? std::string("the server closed the connection")
                                                            : "read failed: " + ec.message());
  }

  // Hands out the replies in the `n` new bytes of read_buf_, writes what the resumed callers
  // queue, and waits for more. Resumed callers usually queue their next request at once;
  // the multiplexer puts their bytes in the write buffer and, in a chunked loop, asks for a
  // write every WritePolicy::loop_chunk requests, so the server works on one chunk while
  // the client resumes the callers of the next; otherwise everything is written when the
  // loop ends. Which of the two is faster depends on the machine, so timing_ measures both
  // by the time per reply from one loop of a pipeline to the next.
  void consume(std::uint64_t gen, std::size_t n) {
    const bool chunked = timing_.begin_loop(now());
    mux_.on_bytes_received();
    reader_.feed(read_buf_.data(), n);
    mux_.begin_batch(chunked);
    std::size_t replies = 0;
    const bool link_kept = deliver_replies(gen, replies);
    mux_.end_batch(&ConnectionImpl::now);  // also after a failure: unwritten requests wait
    arm_deadline_timer(mux_.next_deadline());
    if (!link_kept) return;
    if (std::exchange(flush_after_batch_, false)) start_write();
    timing_.end_loop(replies, mux_.written() > 0, &ConnectionImpl::now);
    await_replies();
  }

  // Hands every complete reply in the reader to its caller (who may resume inline); false
  // when the link went down meanwhile.
  bool deliver_replies(std::uint64_t gen, std::size_t& replies) {
    Reply reply;
    for (;; ++replies) {
      Multiplexer::Delivery d{Multiplexer::ReplyKind::more};
      switch (reader_.next(reply)) {
        case Reader::Status::need_more: return true;
        case Reader::Status::error: link_down(errc::protocol_error, reader_.error_message()); return false;
        case Reader::Status::too_large: d = mux_.on_reply_too_large(); break;
        case Reader::Status::reply: d = mux_.on_reply(std::move(reply)); break;
      }
      if (d.kind == Multiplexer::ReplyKind::unsolicited) {
        link_down(errc::protocol_error, "a reply arrived for no request");
        return false;
      }
      if (d.kind == Multiplexer::ReplyKind::completed && options_.sentinel &&
          sentinel::is_demoted(d.op->reply)) {
        // The primary was demoted: this command did not run (not_connected); the link goes.
        d.op->ec = make_error_code(errc::not_connected);
        link_down(errc::connection_lost, target_.to_string() + " answered READONLY (demoted by a failover)");
        finish(d.op, /*post=*/true);
        return false;
      }
      if (d.kind == Multiplexer::ReplyKind::completed) finish(d.op, /*post=*/false);
      // A resumed caller may have closed the connection (or anything else that ends the link).
      if (gen != generation_) return false;
    }
  }

  // --- waiting for replies: poll or sleep (RedisOptions::busy_poll, reply_wait.hpp) ---------

  // Written requests await replies: ask the policy whether to poll the socket (non-blocking
  // reads from posted handlers, so other work still runs) or to sleep in the reactor, and
  // time the wait for it. Nothing outstanding, or TLS: read through the reactor, untimed.
  void await_replies() {
    if (!timing_.polls() || mux_.written() == 0 || tls_) return start_read();
    if (begin_wait())
      post_poll();
    else
      start_read();
  }

  // Starts a timed wait as the policy says: true to poll, false to sleep.
  bool begin_wait() {
    const bool poll = timing_.begin_wait(now());
    ConnectionCounters::bump(poll ? counters_.polled_waits : counters_.slept_waits);
    return poll;
  }

  // Requests were written while the link was idle, its read already pending in the reactor.
  // To poll for their replies, take that read back first: polling beside it could reorder
  // bytes (the reactor may complete it on another thread). Cancelling completes it through
  // its handler, aborted (then the poll starts) or with data it already read. Nothing else
  // is pending on the socket: the write that got here completed inline.
  void wait_from_idle() {
    idle_read_ = false;
    if (timing_.waiting() || !begin_wait()) return;  // sleeping: the pending read is the wait
    poll_after_cancel_ = true;
    boost::system::error_code ignored;
    socket_.cancel(ignored);
  }

  void post_poll() {
    asio::post(strand_, [self = shared_from_this(), gen = generation_] { self->poll_once(gen); });
  }

  void poll_once(std::uint64_t gen) {
    if (gen != generation_) return;
    boost::system::error_code ec;
    const std::size_t n = socket_.read_some(asio::buffer(read_buf_), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      if (now() < timing_.poll_until())
        post_poll();
      else
        start_read();  // budget spent: sleep in the reactor
      return;
    }
    if (ec) return read_failed(ec);
    consume(gen, n);
  }

  // --- link lifecycle -----------------------------------------------------------------------

  // The link is unusable: close it, fail what was written on it, let the supervisor reconnect.
  void link_down(errc reason, std::string why) {
    if (link_ != Link::up) return;
    ++generation_;
    boost::system::error_code ignored;
    socket_.close(ignored);
    reader_.reset();
    link_ = Link::down;
    last_error_ = std::move(why);
    ConnectionCounters::bump(counters_.link_drops);
    mux_.on_link_down(make_error_code(reason), [this](PendingOp* op) { finish(op, true); });
    check_timer_.cancel();
    wake_timer_.cancel();
  }

  void do_close() {
    if (link_ == Link::closed) return;
    ++generation_;
    link_ = Link::closed;
    boost::system::error_code ignored;
    socket_.close(ignored);
    const auto ec = make_error_code(errc::shut_down);
    auto fail_op = [this](PendingOp* op) { finish(op, true); };
    mux_.on_link_down(ec, fail_op);
    mux_.fail_queued(ec, fail_op);
    deadline_timer_.cancel();
    check_timer_.cancel();
    wake_timer_.cancel();
    if (resolver_) resolver_->cancel();
    if (listener_) options_.sentinel->remove_listener(std::exchange(listener_, 0));
  }

  // A +switch-master notice for our master (posted to the strand by the monitor).
  void on_switch_master(const sentinel::SwitchMaster& notice) {
    if (link_ == Link::closed) return;
    switch (sentinel::on_switch_master(notice, link_ == Link::up, target_)) {
      case sentinel::SwitchAction::none: return;
      case sentinel::SwitchAction::drop_link:
        return link_down(errc::connection_lost,
                         "+switch-master: the primary moved to " + notice.to.to_string());
      case sentinel::SwitchAction::retry_now:
        retry_now_ = true;
        if (link_ == Link::down) wake_timer_.cancel();  // ends the backoff sleep
        return;
    }
  }

  // --- supervisor: connect, handshake, serve until the drop, back off, repeat --------------
  // Defined in connection_supervisor.hpp.

  void start_supervisor();
  static asio::awaitable<void> supervise(std::shared_ptr<ConnectionImpl> self);
  void serve_link();
  asio::awaitable<std::optional<LinkFailure>> connect_once();

  RedisOptions options_;
  std::shared_ptr<link_io::TlsContext> tls_context_;  // TLS only: built once, shared by its links
  Strand strand_;
  Socket socket_;
  std::shared_ptr<link_io::TlsStream> tls_;  // the current link's TLS stream over socket_
  EarliestDeadlineTimer deadline_timer_;     // the earliest deadline of a request in flight
  asio::steady_timer check_timer_;           // stall and health checks while the link is up
  asio::steady_timer wake_timer_;            // supervisor: link-drop signal and backoff sleeps
  std::shared_ptr<asio::ip::tcp::resolver> resolver_;
  Reader reader_;
  std::vector<char> read_buf_;
  Multiplexer mux_;

  Link link_ = Link::idle;
  std::uint64_t generation_ = 0;  // bumped whenever the socket is replaced or closed
  bool flush_posted_ = false;
  bool flush_after_batch_ = false;
  bool rejected_ = false;  // the last attempt was rejected (is_rejection): fail new requests at once
  errc rejected_code_ = errc::auth_failed;
  std::string auth_error_;
  std::string last_error_;
  sentinel::NodeAddress target_;    // the address of the current attempt / link
  std::uint64_t listener_ = 0;      // Sentinel: registered for +switch-master notices
  bool sentinel_rejected_ = false;  // Sentinel: no sentinel knows the master name
  bool retry_now_ = false;          // Sentinel: +switch-master while down: skip the backoff
  LoopTiming timing_;               // the measured choices: poll or sleep, chunked or whole writes
  bool idle_read_ = false;          // the pending read was started with nothing written
  bool poll_after_cancel_ = false;  // wait_from_idle() cancelled that read to poll instead

  std::atomic<bool> closed_{false};
  ConnectionCounters counters_;
};

}  // namespace corocache::detail::redis

#include <corocache/redis/detail/connection_supervisor.hpp>
