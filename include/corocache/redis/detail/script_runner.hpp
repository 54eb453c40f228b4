#pragma once
// Runs a Lua script (scripts.hpp) by EVALSHA, falling back to EVAL, which also caches it
// again, when the server does not know it (NOSCRIPT: restarted, or SCRIPT FLUSH).

#include <corocache/backend.hpp>
#include <corocache/errors.hpp>
#include <corocache/redis/detail/budget.hpp>
#include <corocache/redis/detail/commands.hpp>
#include <corocache/redis/detail/connection.hpp>
#include <corocache/redis/detail/reply.hpp>
#include <corocache/redis/detail/request.hpp>
#include <corocache/redis/detail/scripts.hpp>

#include <boost/asio/awaitable.hpp>

#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

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

/// How many times one operation runs a script that keeps asking for more keys (each round
/// declares what the last one named; two suffice unless other clients keep changing them).
inline constexpr int max_declare_rounds = 8;

/// run_script() of a script that may answer with a retry marker (scripts.hpp): it runs
/// again with the keys the marker names added to `learned`, which `encode(request, verb,
/// script_id, learned)` declares. Returns the first reply that is not a marker; throws
/// server_error after max_declare_rounds markers.
template <class Target, class Encode>
asio::awaitable<Reply> run_declaring(Target& conn, const Script& script, Deadline deadline, Encode encode) {
  std::vector<std::string> learned;
  std::unordered_set<std::string> known;
  for (int round = 1;; ++round) {
    Reply reply = co_await run_script(conn, script, deadline,
                                      [&](Request& r, std::string_view verb, std::string_view id) {
                                        encode(r, verb, id, std::span<const std::string>(learned));
                                      });
    const std::vector<Reply>* keys = retry_keys(reply);
    if (keys == nullptr) co_return reply;
    if (round == max_declare_rounds || keys->empty())
      throw_error(errc::server_error, "corocache: redis: the keys of a script kept changing");
    for (const Reply& k : *keys) {
      if (!k.is_string()) throw_unexpected("a script's retry marker");
      if (known.insert(k.str).second) learned.push_back(k.str);
    }
  }
}

}  // namespace corocache::detail::redis
