#pragma once
// How the replies of the two hottest calls, a GET and a plain SET, become the caller's
// result: finishers for Connection::exec_as, run on the caller's side when the reply
// arrives. RedisBackend sends these straight to a single server's connection, so such a
// call has no coroutine frame of its own (docs/redis_connection.md, "GET and SET without a
// coroutine frame").

#include <corocache/redis/detail/commands.hpp>
#include <corocache/redis/detail/reply.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace corocache::detail::redis {

/// What an unexpected reply to `command` throws: server_error for an error reply, else
/// protocol_error.
inline std::exception_ptr reply_failure(const Reply& reply, std::string_view command) {
  try {
    throw_if_error(reply);
    throw_unexpected(command);
  } catch (...) {
    return std::current_exception();
  }
}

/// What a cancelled co_await throws (the text Asio gives it).
inline std::exception_ptr aborted() {
  return std::make_exception_ptr(boost::system::system_error(asio::error::operation_aborted, "co_await"));
}

/// Runs `work` for the caller whose completion handler is `handler`, as if the caller's own
/// coroutine awaited it: the handler gets its result, and the caller's cancellation reaches
/// it. The work runs in a coroutine on a strand of the handler's executor. Cancellation is
/// bridged rather than left to co_spawn: the caller's slot gets a handler that posts the
/// request to that strand, where a signal both sides own emits it, so emission and the
/// work never race, and nothing is emitted into an object that is gone (Boost 1.81's
/// co_spawn keeps a bare pointer to its signal in what it dispatches). Every type the
/// caller's filter let through is honoured, as it was in the caller's coroutine.
template <class Result, class Handler>
void run_for_caller(asio::awaitable<Result> work, Handler&& handler) {
  struct Link {
    asio::cancellation_signal signal;  // emitted on `strand` only
  };
  using Strand = asio::strand<asio::associated_executor_t<std::decay_t<Handler>>>;
  struct Forward {  // in the caller's slot: any thread may emit it
    std::shared_ptr<Link> link;
    Strand strand;
    void operator()(asio::cancellation_type_t type) {
      asio::post(strand, [link = link, type] { link->signal.emit(type); });
    }
  };
  struct Complete {  // resumes the caller on its own executor
    std::decay_t<Handler> handler;
    std::shared_ptr<Link> link;
    using executor_type = asio::associated_executor_t<std::decay_t<Handler>>;
    executor_type get_executor() const noexcept { return asio::get_associated_executor(handler); }
    void operator()(std::exception_ptr error, Result result) { std::move(handler)(error, std::move(result)); }
  };
  auto accept_all = [](asio::awaitable<Result> w) -> asio::awaitable<Result> {
    co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
    co_return co_await std::move(w);
  };
  auto link = std::make_shared<Link>();
  Strand strand(asio::get_associated_executor(handler));
  auto slot = asio::get_associated_cancellation_slot(handler);
  if (slot.is_connected()) slot.template emplace<Forward>(Forward{link, strand});
  auto on_done =
      asio::bind_cancellation_slot(link->signal.slot(), Complete{std::forward<Handler>(handler), link});
  asio::co_spawn(strand, accept_all(std::move(work)), std::move(on_done));
}

/// What a GET's reply means, for every path a GET takes (GetResult here, and a Cluster's
/// coroutine in RedisBackend): a WRONGTYPE error is a hashed (indexed or read-limited) value.
enum class GetReply { value, missing, hashed, failed };
inline GetReply classify_get(const Reply& reply) noexcept {
  if (reply.is_string()) return GetReply::value;
  if (reply.is_nil()) return GetReply::missing;
  return reply.is_error("WRONGTYPE") ? GetReply::hashed : GetReply::failed;
}

/// A GET: the value, or nullopt for nil. A WRONGTYPE error means a hashed (indexed or
/// read-limited) value: `read_hashed()` (a callable returning an awaitable of the same
/// result) then reads it for the caller (run_for_caller), unless the caller asked for
/// cancellation meanwhile (then operation_aborted, and no read is spent).
template <class ReadHashed>
struct GetResult {
  using Result = std::optional<std::string>;
  ReadHashed read_hashed;

  template <class Handler>
  void operator()(Reply&& reply, Handler&& handler, asio::cancellation_type_t too_late) {
    switch (classify_get(reply)) {
      case GetReply::value: return std::move(handler)(std::exception_ptr(), Result(std::move(reply.str)));
      case GetReply::missing: return std::move(handler)(std::exception_ptr(), Result());
      case GetReply::failed: return std::move(handler)(reply_failure(reply, "GET"), Result());
      case GetReply::hashed: break;
    }
    if (too_late != asio::cancellation_type::none) return std::move(handler)(aborted(), Result());
    run_for_caller(std::move(read_hashed)(), std::forward<Handler>(handler));
  }
};

/// What a plain SET's reply (commands.hpp, add_plain_store) that is not an error means, on
/// every path: true for +OK, false for nil (NX found a live value).
inline bool plain_stored(const Reply& reply) noexcept { return !reply.is_nil(); }

/// A plain SET: plain_stored(), or server_error for an error reply.
struct PlainStoreResult {
  using Result = bool;

  template <class Handler>
  void operator()(Reply&& reply, Handler&& handler, asio::cancellation_type_t /*too late*/) {
    if (reply.is_error()) return std::move(handler)(reply_failure(reply, "SET"), false);
    std::move(handler)(std::exception_ptr(), plain_stored(reply));
  }
};

}  // namespace corocache::detail::redis
