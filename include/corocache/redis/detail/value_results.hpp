#pragma once
// How the replies of the two hottest calls, a GET and a plain SET, become the caller's
// result: finishers for Connection::exec_as, run on the caller's side when the reply
// arrives. RedisBackend sends these straight to a single server's connection, so such a
// call has no coroutine frame of its own (docs/redis_connection.md, "Client CPU").

#include <corocache/redis/detail/commands.hpp>
#include <corocache/redis/detail/reply.hpp>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/co_spawn.hpp>

#include <exception>
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

/// A GET: the value, or nullopt for nil. A WRONGTYPE error means a hashed (indexed or
/// read-limited) value: `read_hashed()` (a callable returning an awaitable of the same
/// result) then reads it in a coroutine started on the caller's executor, which completes
/// the call, cancellation slot included.
template <class ReadHashed>
struct GetResult {
  using Result = std::optional<std::string>;
  ReadHashed read_hashed;

  template <class Handler>
  void operator()(Reply&& reply, Handler&& handler) {
    if (reply.is_string()) return std::move(handler)(std::exception_ptr(), Result(std::move(reply.str)));
    if (reply.is_nil()) return std::move(handler)(std::exception_ptr(), Result());
    if (reply.is_error("WRONGTYPE")) {
      const auto ex = asio::get_associated_executor(handler);
      asio::co_spawn(ex, std::move(read_hashed)(), std::forward<Handler>(handler));
      return;
    }
    std::move(handler)(reply_failure(reply, "GET"), Result());
  }
};

/// A plain SET (commands.hpp, add_plain_store): false when NX found a live value (nil), else
/// true (+OK); an error reply throws server_error.
struct PlainStoreResult {
  using Result = bool;

  template <class Handler>
  void operator()(Reply&& reply, Handler&& handler) {
    if (reply.is_error()) return std::move(handler)(reply_failure(reply, "SET"), false);
    std::move(handler)(std::exception_ptr(), !reply.is_nil());
  }
};

}  // namespace corocache::detail::redis
