#pragma once
// The I/O layer's side of one exec() call: the multiplexer's PendingOp plus the awaiting
// caller's completion handler, a reference count (the awaiting operation, the multiplexer's
// hold and each cancellation handler own one), the error message, and what turns the reply
// into the caller's result (a Reply as it is, or e.g. a GET's optional value, without a
// coroutine frame of its own).

#include <corocache/redis/detail/pending.hpp>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/recycling_allocator.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <utility>

namespace corocache::detail::redis {

/// The caller-independent part of one exec() call; ExecOpFor adds the caller's handler and
/// what turns the reply into the caller's result.
struct ExecOp : PendingOp {
  void* owner = nullptr;  // the ConnectionImpl (for the cancellation handler)
  std::string what;       // the error message, composed when the op fails (and will throw)
  boost::system::error_code* ec_out = nullptr;  // non-throwing exec(): where the error goes

  /// Hands the result (reply or `ec`) to the caller: posted, or dispatched (inline when the
  /// caller's io_context runs on this thread). Called once.
  virtual void deliver(bool post) = 0;

  /// The caller asked for cancellation (any type): recorded by the cancellation handler
  /// before it reaches the strand, so a finisher about to start follow-up work (a hashed
  /// GET's read script) can see a request that came too late to take back this one.
  void note_cancel(boost::asio::cancellation_type_t type) noexcept {
    cancel_seen_.fetch_or(static_cast<unsigned>(type), std::memory_order_relaxed);
  }
  boost::asio::cancellation_type_t cancel_seen() const noexcept {
    return static_cast<boost::asio::cancellation_type_t>(cancel_seen_.load(std::memory_order_relaxed));
  }

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy();
  }

 protected:
  ExecOp() = default;
  ~ExecOp() = default;
  virtual void destroy() noexcept = 0;

 private:
  std::atomic<int> refs_{1};
  std::atomic<unsigned> cancel_seen_{0};
};

/// Owning reference to an ExecOp.
class ExecRef {
 public:
  ExecRef() = default;
  static ExecRef adopt(ExecOp* p) noexcept {
    ExecRef r;
    r.p_ = p;
    return r;
  }
  static ExecRef share(ExecOp* p) noexcept {
    p->add_ref();
    return adopt(p);
  }
  ExecRef(ExecRef&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  ExecRef& operator=(ExecRef&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  ExecRef(const ExecRef&) = delete;
  ExecRef& operator=(const ExecRef&) = delete;
  ~ExecRef() { reset(); }
  void reset() noexcept {
    if (p_) std::exchange(p_, nullptr)->release();
  }
  ExecOp* get() const noexcept { return p_; }
  ExecOp* operator->() const noexcept { return p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  ExecOp* p_ = nullptr;
};

/// Calls an op's handler with its result. Points to the op rather than holding the result,
/// so moving the completion through Asio's dispatch machinery does not move the reply each
/// time. No reference needed: the handler owns the awaiting coroutine stack, in which
/// exec()'s initiation holds a reference to the op. The exception a failed call throws is
/// built here, on the caller's side, only when it fails.
template <class Op>
struct ExecCompletion {
  typename Op::Handler handler;
  Op* op;

  using executor_type = boost::asio::associated_executor_t<typename Op::Handler>;
  executor_type get_executor() const noexcept { return boost::asio::get_associated_executor(handler); }
  void operator()() {
    using Result = typename Op::Result;
    if (op->ec && op->ec_out) {
      *op->ec_out = op->ec;
      std::move(handler)(std::exception_ptr(), Result{});
    } else if (op->ec)
      std::move(handler)(std::make_exception_ptr(boost::system::system_error(op->ec, op->what)), Result{});
    else
      op->finish(std::move(op->reply), std::move(handler), op->cancel_seen());
  }

  /// Runs `done` now when the caller's executor is an io_context running on this thread
  /// (what asio::dispatch would do, minus wrapping the call in a type-erased function, which
  /// allocates); dispatches it otherwise.
  static void dispatch(ExecCompletion done) {
    const auto ex = done.get_executor();
    const auto* io = ex.template target<boost::asio::io_context::executor_type>();
    if (io != nullptr && io->running_in_this_thread())
      done();
    else
      boost::asio::dispatch(std::move(done));
  }
};

/// The reply as it is: what exec() returns.
struct ReplyAsIs {
  using Result = Reply;
  template <class Handler>
  void operator()(Reply&& reply, Handler&& handler, boost::asio::cancellation_type_t /*too late*/) {
    std::move(handler)(std::exception_ptr(), std::move(reply));
  }
};

/// An ExecOp awaited through use_awaitable with `Finish::Result` as its result. The handler
/// is stored as its concrete type (no type erasure, no allocation for it). On a reply,
/// `finish(Reply&&, Handler&&, cancellation_type_t)` runs on the caller's side: it turns the
/// reply into the result and calls the handler, or hands the handler to follow-up work it
/// starts (which must not start when the third argument, the cancellation the caller asked
/// for too late to take this request back, is not `none`). Allocated through Asio's
/// recycling allocator, so a steady stream of requests does not hit the heap for it.
template <class Finish>
struct ExecOpFor final : ExecOp {
  using Result = typename Finish::Result;
  using Handler = typename boost::asio::async_result<boost::asio::use_awaitable_t<>,
                                                     void(std::exception_ptr, Result)>::handler_type;

  std::optional<Handler> handler;
  Finish finish;

  static ExecOpFor* create(Finish f) {
    boost::asio::recycling_allocator<ExecOpFor> alloc;
    ExecOpFor* p = alloc.allocate(1);
    return ::new (static_cast<void*>(p)) ExecOpFor(std::move(f));
  }

  void deliver(bool post) override {
    ExecCompletion<ExecOpFor> done{std::move(*handler), this};
    handler.reset();
    if (post)
      boost::asio::post(std::move(done));
    else
      ExecCompletion<ExecOpFor>::dispatch(std::move(done));
  }

 private:
  explicit ExecOpFor(Finish f) : finish(std::move(f)) {}
  ~ExecOpFor() = default;
  void destroy() noexcept override {
    boost::asio::recycling_allocator<ExecOpFor> alloc;
    this->~ExecOpFor();
    alloc.deallocate(this, 1);
  }
};

}  // namespace corocache::detail::redis
