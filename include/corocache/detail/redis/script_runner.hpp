#pragma once
// Runs a Lua script (scripts.hpp) by EVALSHA, falling back to EVAL, which also caches it
// again, when the server does not know it (NOSCRIPT: restarted, or SCRIPT FLUSH).

#include <corocache/backend.hpp>
#include <corocache/detail/redis/budget.hpp>
#include <corocache/detail/redis/commands.hpp>
#include <corocache/detail/redis/connection.hpp>
#include <corocache/detail/redis/reply.hpp>
#include <corocache/detail/redis/request.hpp>
#include <corocache/detail/redis/scripts.hpp>

#include <boost/asio/awaitable.hpp>

#include <string_view>
#include <utility>

namespace corocache::detail::redis {

/// `conn`: a Connection, or anything with its `exec(Request, Duration)` (a cluster slot's
/// Routed target; a NOSCRIPT fallback then goes to the same node, whose script cache missed).
/// `encode(request, verb, script_id)` appends the command (verb "EVALSHA" or "EVAL", id the
/// sha or the text) with the script's KEYS/ARGV. Each round trip gets what is left of
/// `deadline`. An error reply throws server_error; transport failures propagate.
template <class Target, class Encode>
asio::awaitable<Reply> run_script(Target& conn, const Script& script, Deadline deadline, Encode encode) {
  Request by_sha;
  encode(by_sha, std::string_view("EVALSHA"), script.sha_view());
  Reply reply = co_await conn.exec(std::move(by_sha), round_trip_timeout(deadline));
  if (reply.is_error("NOSCRIPT")) {
    Request by_text;
    encode(by_text, std::string_view("EVAL"), script.text);
    reply = co_await conn.exec(std::move(by_text), round_trip_timeout(deadline));
  }
  throw_if_error(reply);
  co_return reply;
}

/// run_script() of a script taking one key and `args` (string_view-convertible or integers).
template <class Target, class... Args>
asio::awaitable<Reply> run_script_on_key(Target& conn, const Script& script, Deadline deadline,
                                         std::string_view key, Args... args) {
  return run_script(conn, script, deadline,
                    [key, args...](Request& r, std::string_view verb, std::string_view id) {
                      r.add(verb, id, "1", key, args...);
                    });
}

}  // namespace corocache::detail::redis
