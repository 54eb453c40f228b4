#pragma once
// RedisBackend: the Backend concept over a Redis server (data model in README, "Redis data
// model"; scripts in detail/redis/scripts.hpp).
//
// - A plain value (no indices, no read limit) is a Redis string: SET key value PX ttl [NX],
//   read with a plain GET. This is the fast path: one command, no script.
// - A value with indices and/or max_reads is a hash {v, r, i} written and read by scripts,
//   atomically; index keys are sets of value keys, pruned of stale members when listed.
// - Queues are lists (RPUSH / LPOP; a waiting pop is a BLPOP on a connection of its own),
//   locks are strings holding their owner's token.
// - Prefix removal walks SCAN MATCH with the prefix's glob characters escaped and deletes
//   with UNLINK in batches: never KEYS, never FLUSHDB.
//
// Threads: every operation may be called from any thread, concurrently. All commands share
// one automatically pipelined Connection; only waiting pops use extra connections (one per
// concurrent waiting pop, kept idle for reuse afterwards).
//
// Errors: bad backend-specific input (ttl <= 0, negative wait, empty prefix) throws
// std::invalid_argument when awaited, before any I/O; an error reply from the server throws
// boost::system::system_error(errc::server_error) whose what() holds the server's message;
// transport failures (timeout, connection_lost, not_connected, overloaded, ...) propagate
// from the Connection as system_error with their corocache::errc code.

#include <corocache/backend.hpp>
#include <corocache/detail/redis/connection.hpp>
#include <corocache/detail/redis/glob.hpp>
#include <corocache/detail/redis/reply.hpp>
#include <corocache/detail/redis/request.hpp>
#include <corocache/detail/redis/scripts.hpp>
#include <corocache/errors.hpp>
#include <corocache/redis_options.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace corocache {

namespace detail::redis {

/// A number written into a caller-owned buffer, viewed without allocating.
class Decimal {
 public:
  explicit Decimal(long long v) noexcept {
    size_ = static_cast<std::size_t>(std::to_chars(buf_, buf_ + sizeof buf_, v).ptr - buf_);
  }
  std::string_view view() const noexcept { return {buf_, size_}; }
  operator std::string_view() const noexcept { return view(); }

 private:
  char buf_[24];
  std::size_t size_ = 0;
};

/// A BLPOP timeout: `ms` milliseconds as decimal seconds ("1.5", "0.001"), which Redis >= 6
/// accepts. `ms` > 0.
inline std::string blpop_seconds(long long ms) {
  std::string out = std::to_string(ms / 1000);
  const long long frac = ms % 1000;
  if (frac != 0) {
    out.push_back('.');
    out.push_back(static_cast<char>('0' + frac / 100));
    out.push_back(static_cast<char>('0' + frac / 10 % 10));
    out.push_back(static_cast<char>('0' + frac % 10));
  }
  return out;
}

/// Throws system_error(errc::server_error) carrying the server's message for an error reply.
inline void throw_if_error(const Reply& reply) {
  if (reply.is_error()) throw_error(errc::server_error, "corocache: redis: " + reply.str);
}

/// A reply of an unexpected shape (e.g. a proxy answering oddly): a protocol error.
[[noreturn]] inline void throw_unexpected(std::string_view command) {
  throw_error(errc::protocol_error, "corocache: redis: unexpected reply to " + std::string(command));
}

/// Appends `EVAL <text>` (or `EVALSHA <sha>`, chosen by `verb`) with the store script's
/// KEYS/ARGV for `key`, `value` and `params` to `request`.
inline void add_store_script(Request& request, std::string_view verb, std::string_view script_id,
                             std::string_view key, std::string_view value, const StoreParams& params) {
  const Decimal numkeys(static_cast<long long>(params.index_keys.size() + 1));
  const Decimal ttl(params.ttl.count());
  const Decimal reads(params.max_reads);
  std::vector<std::string_view> argv;
  argv.reserve(params.index_keys.size() + 8);
  argv.insert(argv.end(), {verb, script_id, numkeys.view(), key});
  for (const auto& index_key : params.index_keys) argv.emplace_back(index_key);
  argv.insert(argv.end(), {value, ttl.view(), params.nx ? "1" : "0", reads.view()});
  request.add_argv(argv);
}

/// True when a store can be a plain SET (no hash needed).
inline bool is_plain_store(const StoreParams& params) noexcept {
  return params.index_keys.empty() && params.max_reads == 0;
}

/// Appends a plain `SET key value PX ttl [NX]`.
inline void add_plain_store(Request& request, std::string_view key, std::string_view value,
                            const StoreParams& params) {
  const Decimal ttl(params.ttl.count());
  if (params.nx)
    request.add("SET", key, value, "PX", ttl.view(), "NX");
  else
    request.add("SET", key, value, "PX", ttl.view());
}

inline void require_positive_ttl(Duration ttl, const char* what) {
  if (ttl <= Duration::zero())
    throw std::invalid_argument(std::string("corocache: ") + what + " must be > 0");
}

}  // namespace detail::redis

/// The Redis backend. Move-only; moving is cheap (one shared pointer).
///
/// Lifetime: an operation's awaitable keeps the backend's connections alive by itself, so
/// it may be awaited after the RedisBackend object was moved. Destroying (or move-assigning
/// over) a RedisBackend closes its connections: requests still pending then fail with
/// errc::shut_down.
///
/// Cancellation: every operation supports Asio per-operation cancellation (e.g. through
/// awaitable_operators `||` or a Scope timeout); a cancelled operation completes with
/// asio::error::operation_aborted and its late reply is discarded. A cancelled multi-step
/// operation (erase_prefix, erase_if) may have done part of its work.
class RedisBackend {
 public:
  /// Creates the backend; connects lazily in the background (the first requests wait for
  /// the connection up to their deadline). Throws std::invalid_argument for bad options.
  explicit RedisBackend(asio::any_io_executor ex, RedisOptions options = {}) {
    options.validate();
    state_ = std::make_shared<State>(std::move(ex), std::move(options));
  }

  RedisBackend(RedisBackend&&) noexcept = default;
  RedisBackend& operator=(RedisBackend&& other) noexcept {
    if (this != &other) {
      close();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  RedisBackend(const RedisBackend&) = delete;
  RedisBackend& operator=(const RedisBackend&) = delete;
  ~RedisBackend() { close(); }

  /// Fails pending requests with errc::shut_down and stops reconnecting. Idempotent; the
  /// destructor calls it.
  void close() noexcept {
    if (state_) state_->close();
  }

  /// The options this backend connects with.
  const RedisOptions& options() const { return state_->options; }

  // --- Backend concept (semantics: backend.hpp) ------------------------------------------

  /// Plain values: one SET (PX, and NX for nx). Indexed or read-limited: the store script.
  asio::awaitable<bool> set(std::string key, std::string value, StoreParams params, Deadline deadline = {}) {
    return do_set(state_, std::move(key), std::move(value), std::move(params), deadline);
  }
  /// One GET; a hashed value (WRONGTYPE) is then read by the read script.
  asio::awaitable<std::optional<std::string>> get(std::string key, Deadline deadline = {}) {
    return do_get(state_, std::move(key), deadline);
  }
  asio::awaitable<bool> erase(std::string key, Deadline deadline = {}) {
    return do_erase(state_, std::move(key), deadline);
  }
  asio::awaitable<bool> expire(std::string key, Duration ttl, Deadline deadline = {}) {
    return do_expire(state_, std::move(key), ttl, deadline);
  }
  asio::awaitable<std::vector<std::string>> index_members(std::string index_key, Deadline deadline = {}) {
    return do_index_members(state_, std::move(index_key), deadline);
  }
  asio::awaitable<std::size_t> erase_index(std::string index_key, Deadline deadline = {}) {
    return do_erase_index(state_, std::move(index_key), deadline);
  }
  asio::awaitable<void> push(std::string queue_key, std::string value, Deadline deadline = {}) {
    return do_push(state_, std::move(queue_key), std::move(value), deadline);
  }
  /// LPOP; with wait > 0 a BLPOP on a separate connection, deadline wait + request_timeout.
  asio::awaitable<std::optional<std::string>> pop(std::string queue_key, Duration wait,
                                                  Deadline deadline = {}) {
    return do_pop(state_, std::move(queue_key), wait, deadline);
  }
  asio::awaitable<bool> try_lock(std::string lock_key, std::string token, Duration ttl,
                                 Deadline deadline = {}) {
    return do_try_lock(state_, std::move(lock_key), std::move(token), ttl, deadline);
  }
  asio::awaitable<bool> unlock(std::string lock_key, std::string token, Deadline deadline = {}) {
    return do_unlock(state_, std::move(lock_key), std::move(token), deadline);
  }
  /// SCAN MATCH <escaped prefix>* COUNT 1000 + UNLINK per batch. Throws
  /// std::invalid_argument for an empty prefix (that would be the whole database).
  asio::awaitable<std::size_t> erase_prefix(std::string prefix, Deadline deadline = {}) {
    return do_erase_prefix(state_, std::move(prefix), deadline);
  }
  /// SCAN as erase_prefix; values are read without consuming reads (peek script) and the
  /// accepted ones deleted only if still unchanged (erase_if_same script).
  asio::awaitable<std::size_t> erase_if(std::string prefix, EntryPredicate predicate, std::int64_t limit,
                                        Deadline deadline = {}) {
    return do_erase_if(state_, std::move(prefix), std::move(predicate), limit, deadline);
  }
  /// One MULTI ... EXEC request; scripts inside it go as EVAL (EVALSHA could not fall back).
  /// Throws server_error if any operation failed (the others still applied: Redis does not
  /// roll back).
  asio::awaitable<void> commit(std::vector<BatchOp> ops, Deadline deadline = {}) {
    return do_commit(state_, std::move(ops), deadline);
  }

 private:
  using Connection = detail::redis::Connection;
  using Reply = detail::redis::Reply;
  using Request = detail::redis::Request;
  using Script = detail::redis::Script;

  struct State {
    RedisOptions options;
    asio::any_io_executor executor;
    Connection main;

    std::mutex mutex;  // guards the members below
    bool closed = false;
    /// Connections for waiting pops: idle ones wait here for reuse; busy ones are listed
    /// so close() reaches them too.
    std::vector<std::shared_ptr<Connection>> idle_blocking;
    std::vector<std::shared_ptr<Connection>> busy_blocking;
    /// Idle blocking connections kept for reuse; more are closed when returned.
    static constexpr std::size_t max_idle_blocking = 4;

    State(asio::any_io_executor ex, RedisOptions opts)
        : options(std::move(opts)), executor(std::move(ex)), main(executor, options) {}

    void close() noexcept {
      std::vector<std::shared_ptr<Connection>> all;
      {
        std::lock_guard lock(mutex);
        if (closed) return;
        closed = true;
        all.swap(idle_blocking);
        all.insert(all.end(), busy_blocking.begin(), busy_blocking.end());
        busy_blocking.clear();
      }
      main.close();
      for (auto& c : all) c->close();
    }

    /// An idle blocking connection, or a new one; listed as busy until released.
    std::shared_ptr<Connection> acquire_blocking() {
      std::lock_guard lock(mutex);
      if (closed) throw_error(errc::shut_down, "corocache: redis backend closed");
      std::shared_ptr<Connection> conn;
      if (!idle_blocking.empty()) {
        conn = std::move(idle_blocking.back());
        idle_blocking.pop_back();
      } else {
        conn = std::make_shared<Connection>(executor, options);
      }
      busy_blocking.push_back(conn);
      return conn;
    }

    /// Returns a blocking connection: kept for reuse when `reusable` (its BLPOP answered, so
    /// nothing is left in flight on it), else closed.
    void release_blocking(const std::shared_ptr<Connection>& conn, bool reusable) noexcept {
      bool keep = false;
      {
        std::lock_guard lock(mutex);
        std::erase(busy_blocking, conn);
        if (reusable && !closed && idle_blocking.size() < max_idle_blocking) {
          idle_blocking.push_back(conn);
          keep = true;
        }
      }
      if (!keep) conn->close();
    }
  };
  using StatePtr = std::shared_ptr<State>;

  static State& live(const StatePtr& st) {
    if (!st) throw_error(errc::shut_down, "corocache: use of a moved-from RedisBackend");
    return *st;
  }

  /// Sends one request on the shared connection; an error reply throws server_error.
  /// The timeout of one round trip that must end by `deadline`: the connection's default
  /// for the default deadline. Throws errc::timeout (before any I/O) once it has passed.
  static Duration round_trip_timeout(Deadline deadline) {
    if (deadline.is_default()) return Duration::zero();
    const Duration left = deadline.remaining(Duration::zero());
    if (left <= Duration::zero()) throw_error(errc::timeout, "corocache: the call's deadline passed");
    return std::min(left, forever);
  }
  /// Longer than any process lives, short enough that adding it to the clock cannot overflow.
  static constexpr Duration forever = std::chrono::hours(24 * 365 * 100);

  static asio::awaitable<Reply> exec(State& st, Request request, Deadline deadline) {
    Reply reply = co_await st.main.exec(std::move(request), round_trip_timeout(deadline));
    detail::redis::throw_if_error(reply);
    co_return reply;
  }

  /// Runs `script` by EVALSHA, falling back to EVAL (which also caches it again) when the
  /// server does not know it (NOSCRIPT: restarted, or SCRIPT FLUSH). `encode(request, verb,
  /// script_id)` appends the command with the script's KEYS/ARGV. An error reply throws.
  template <class Encode>
  static asio::awaitable<Reply> eval(State& st, const Script& script, Deadline deadline, Encode encode) {
    Request by_sha;
    encode(by_sha, std::string_view("EVALSHA"), script.sha_view());
    Reply reply = co_await st.main.exec(std::move(by_sha), round_trip_timeout(deadline));
    if (reply.is_error("NOSCRIPT")) {
      Request by_text;
      encode(by_text, std::string_view("EVAL"), script.text);
      reply = co_await st.main.exec(std::move(by_text), round_trip_timeout(deadline));
    }
    detail::redis::throw_if_error(reply);
    co_return reply;
  }

  /// eval() of a script taking one key and `args`.
  template <class... Args>
  static asio::awaitable<Reply> eval_one_key(State& st, const Script& script, Deadline deadline,
                                             std::string_view key, Args... args) {
    return eval(st, script, deadline, [key, args...](Request& r, std::string_view verb, std::string_view id) {
      r.add(verb, id, "1", key, args...);
    });
  }

  static asio::awaitable<bool> do_set(StatePtr sp, std::string key, std::string value, StoreParams params,
                                      Deadline deadline) {
    State& st = live(sp);
    detail::redis::require_positive_ttl(params.ttl, "expiry");
    if (detail::redis::is_plain_store(params)) {
      Request request;
      detail::redis::add_plain_store(request, key, value, params);
      // The fast path: straight to the connection, no helper coroutine in between.
      const Reply reply = co_await st.main.exec(std::move(request), round_trip_timeout(deadline));
      detail::redis::throw_if_error(reply);
      co_return !reply.is_nil();  // +OK, or nil when NX found a live value
    }
    const Reply reply = co_await eval(st, detail::redis::scripts::store_hash, deadline,
                                      [&](Request& r, std::string_view verb, std::string_view id) {
                                        detail::redis::add_store_script(r, verb, id, key, value, params);
                                      });
    if (!reply.is_integer()) detail::redis::throw_unexpected("the store script");
    co_return reply.integer == 1;
  }

  static asio::awaitable<std::optional<std::string>> do_get(StatePtr sp, std::string key, Deadline deadline) {
    State& st = live(sp);
    Request request;
    request.add("GET", key);
    Reply reply = co_await st.main.exec(std::move(request), round_trip_timeout(deadline));
    if (reply.is_string()) co_return std::optional<std::string>(std::move(reply.str));
    if (reply.is_nil()) co_return std::nullopt;
    if (!reply.is_error("WRONGTYPE")) {
      detail::redis::throw_if_error(reply);
      detail::redis::throw_unexpected("GET");
    }
    // Not a string: a hashed (indexed or read-limited) value.
    reply = co_await eval_one_key(st, detail::redis::scripts::read_hash, deadline, key);
    if (reply.is_string()) co_return std::optional<std::string>(std::move(reply.str));
    if (reply.is_nil()) co_return std::nullopt;
    detail::redis::throw_unexpected("the read script");
  }

  static asio::awaitable<bool> do_erase(StatePtr sp, std::string key, Deadline deadline) {
    State& st = live(sp);
    const Reply reply = co_await eval_one_key(st, detail::redis::scripts::erase, deadline, key);
    if (!reply.is_integer()) detail::redis::throw_unexpected("the erase script");
    co_return reply.integer > 0;
  }

  static asio::awaitable<bool> do_expire(StatePtr sp, std::string key, Duration ttl, Deadline deadline) {
    State& st = live(sp);
    detail::redis::require_positive_ttl(ttl, "expiry");
    const detail::redis::Decimal ms(ttl.count());
    const Reply reply = co_await eval_one_key(st, detail::redis::scripts::expire, deadline, key, ms.view());
    if (!reply.is_integer()) detail::redis::throw_unexpected("the expire script");
    co_return reply.integer == 1;
  }

  static asio::awaitable<std::vector<std::string>> do_index_members(StatePtr sp, std::string index_key,
                                                                    Deadline deadline) {
    State& st = live(sp);
    Reply reply = co_await eval_one_key(st, detail::redis::scripts::index_members, deadline, index_key);
    if (!reply.is_array()) detail::redis::throw_unexpected("the index listing script");
    std::vector<std::string> keys;
    keys.reserve(reply.elements.size());
    for (auto& e : reply.elements) {
      if (!e.is_string()) detail::redis::throw_unexpected("the index listing script");
      keys.push_back(std::move(e.str));
    }
    co_return keys;
  }

  static asio::awaitable<std::size_t> do_erase_index(StatePtr sp, std::string index_key, Deadline deadline) {
    State& st = live(sp);
    const Reply reply = co_await eval_one_key(st, detail::redis::scripts::erase_index, deadline, index_key);
    if (!reply.is_integer() || reply.integer < 0) detail::redis::throw_unexpected("the index erase script");
    co_return static_cast<std::size_t>(reply.integer);
  }

  static asio::awaitable<void> do_push(StatePtr sp, std::string queue_key, std::string value,
                                       Deadline deadline) {
    State& st = live(sp);
    Request request;
    request.add("RPUSH", queue_key, value);
    co_await exec(st, std::move(request), deadline);
  }

  static asio::awaitable<std::optional<std::string>> do_pop(StatePtr sp, std::string queue_key, Duration wait,
                                                            Deadline deadline) {
    State& st = live(sp);
    if (wait < Duration::zero()) throw std::invalid_argument("corocache: pop wait must not be negative");
    if (wait == Duration::zero()) {
      Request request;
      request.add("LPOP", queue_key);
      Reply reply = co_await exec(st, std::move(request), deadline);
      if (reply.is_string()) co_return std::optional<std::string>(std::move(reply.str));
      if (reply.is_nil()) co_return std::nullopt;
      detail::redis::throw_unexpected("LPOP");
    }
    // A BLPOP holds its connection until it is answered, so it never uses the shared one.
    // The server gives up after `wait`; our deadline adds request_timeout for the trip.
    // The server waits at most what the deadline leaves; the trip gets the rest (by default
    // request_timeout on top of the wait).
    const Duration trip = deadline.is_default() ? std::min(wait, forever) + st.options.request_timeout
                                                : round_trip_timeout(deadline);
    const Duration server_wait = std::min(wait, trip);
    Request request;
    // BLPOP 0 blocks for ever: what a wait of a year or more means in practice.
    const bool unbounded = server_wait >= std::chrono::hours(24 * 365);
    request.add("BLPOP", queue_key,
                unbounded ? std::string("0") : detail::redis::blpop_seconds(server_wait.count()));
    const auto conn = st.acquire_blocking();
    Reply reply;
    try {
      reply = co_await conn->exec(std::move(request), trip);
    } catch (...) {
      // Timed out, cancelled or failed: the BLPOP may still be pending on the server, and
      // the connection must not serve anyone else.
      st.release_blocking(conn, false);
      throw;
    }
    st.release_blocking(conn, true);
    detail::redis::throw_if_error(reply);
    if (reply.is_nil()) co_return std::nullopt;
    if (reply.is_array() && reply.elements.size() == 2 && reply.elements[1].is_string())
      co_return std::optional<std::string>(std::move(reply.elements[1].str));
    detail::redis::throw_unexpected("BLPOP");
  }

  static asio::awaitable<bool> do_try_lock(StatePtr sp, std::string lock_key, std::string token, Duration ttl,
                                           Deadline deadline) {
    State& st = live(sp);
    detail::redis::require_positive_ttl(ttl, "lock ttl");
    const detail::redis::Decimal ms(ttl.count());
    Request request;
    request.add("SET", lock_key, token, "NX", "PX", ms.view());
    const Reply reply = co_await exec(st, std::move(request), deadline);
    co_return !reply.is_nil();
  }

  static asio::awaitable<bool> do_unlock(StatePtr sp, std::string lock_key, std::string token,
                                         Deadline deadline) {
    State& st = live(sp);
    const Reply reply = co_await eval_one_key(st, detail::redis::scripts::unlock, deadline, lock_key,
                                              std::string_view(token));
    if (!reply.is_integer()) detail::redis::throw_unexpected("the unlock script");
    co_return reply.integer == 1;
  }

  /// One SCAN step over the keys starting with `prefix`: the next cursor ("0": done) and
  /// the keys found (only true prefix matches: a defence in depth behind the escaping).
  struct ScanBatch {
    std::string cursor;             // where the next step starts; "0": the walk is over
    std::vector<std::string> keys;  // may repeat keys of earlier steps (SCAN's guarantee)
  };

  static asio::awaitable<ScanBatch> scan_step(State& st, std::string_view cursor, std::string_view pattern,
                                              std::string_view prefix, Deadline deadline) {
    Request request;
    request.add("SCAN", cursor, "MATCH", pattern, "COUNT", "1000");
    Reply reply = co_await exec(st, std::move(request), deadline);
    if (!reply.is_array() || reply.elements.size() != 2 || !reply.elements[0].is_string() ||
        !reply.elements[1].is_array())
      detail::redis::throw_unexpected("SCAN");
    std::vector<std::string> keys;
    keys.reserve(reply.elements[1].elements.size());
    for (auto& e : reply.elements[1].elements) {
      if (!e.is_string()) detail::redis::throw_unexpected("SCAN");
      if (std::string_view(e.str).starts_with(prefix)) keys.push_back(std::move(e.str));
    }
    co_return ScanBatch{std::move(reply.elements[0].str), std::move(keys)};
  }

  static void require_prefix(std::string_view prefix) {
    if (prefix.empty())
      throw std::invalid_argument("corocache: an empty prefix would match the whole database");
  }

  static asio::awaitable<std::size_t> do_erase_prefix(StatePtr sp, std::string prefix, Deadline deadline) {
    State& st = live(sp);
    require_prefix(prefix);
    const std::string pattern = detail::redis::prefix_match_pattern(prefix);
    std::string cursor = "0";
    std::size_t removed = 0;
    do {
      ScanBatch batch = co_await scan_step(st, cursor, pattern, prefix, deadline);
      cursor = std::move(batch.cursor);
      const auto& keys = batch.keys;
      if (keys.empty()) continue;
      std::vector<std::string_view> argv;
      argv.reserve(keys.size() + 1);
      argv.emplace_back("UNLINK");
      argv.insert(argv.end(), keys.begin(), keys.end());
      Request unlink;
      unlink.add_argv(argv);
      const Reply reply = co_await exec(st, std::move(unlink), deadline);
      if (!reply.is_integer() || reply.integer < 0) detail::redis::throw_unexpected("UNLINK");
      removed += static_cast<std::size_t>(reply.integer);
    } while (cursor != "0");
    co_return removed;
  }

  static asio::awaitable<std::size_t> do_erase_if(StatePtr sp, std::string prefix, EntryPredicate predicate,
                                                  std::int64_t limit, Deadline deadline) {
    State& st = live(sp);
    require_prefix(prefix);
    if (!predicate) throw std::invalid_argument("corocache: erase_if needs a predicate");
    if (limit == 0) co_return 0;
    const std::string pattern = detail::redis::prefix_match_pattern(prefix);
    std::string cursor = "0";
    std::size_t removed = 0;
    const auto quota_left = [&] { return limit < 0 || removed < static_cast<std::size_t>(limit); };
    do {
      ScanBatch batch = co_await scan_step(st, cursor, pattern, prefix, deadline);
      cursor = std::move(batch.cursor);
      const auto& keys = batch.keys;
      if (keys.empty()) continue;
      // Read the batch's values (nil for missing, expired or non-values), without reads.
      const Decimal numkeys(static_cast<long long>(keys.size()));
      Reply values = co_await eval(st, detail::redis::scripts::peek, deadline,
                                   [&](Request& r, std::string_view verb, std::string_view id) {
                                     std::vector<std::string_view> argv;
                                     argv.reserve(keys.size() + 3);
                                     argv.insert(argv.end(), {verb, id, numkeys.view()});
                                     argv.insert(argv.end(), keys.begin(), keys.end());
                                     r.add_argv(argv);
                                   });
      if (!values.is_array() || values.elements.size() != keys.size())
        detail::redis::throw_unexpected("the peek script");
      // Choose victims, at most as many as the limit still allows.
      std::vector<std::size_t> chosen;
      const std::size_t room = limit < 0 ? keys.size() : static_cast<std::size_t>(limit) - removed;
      for (std::size_t i = 0; i < keys.size() && chosen.size() < room; ++i) {
        if (!values.elements[i].is_string()) continue;
        if (predicate(keys[i], values.elements[i].str)) chosen.push_back(i);
      }
      if (chosen.empty()) continue;
      const Decimal chosen_count(static_cast<long long>(chosen.size()));
      const Reply reply = co_await eval(st, detail::redis::scripts::erase_if_same, deadline,
                                        [&](Request& r, std::string_view verb, std::string_view id) {
                                          std::vector<std::string_view> argv;
                                          argv.reserve(2 * chosen.size() + 3);
                                          argv.insert(argv.end(), {verb, id, chosen_count.view()});
                                          for (std::size_t i : chosen) argv.emplace_back(keys[i]);
                                          for (std::size_t i : chosen)
                                            argv.emplace_back(values.elements[i].str);
                                          r.add_argv(argv);
                                        });
      if (!reply.is_integer() || reply.integer < 0) detail::redis::throw_unexpected("the erase_if script");
      removed += static_cast<std::size_t>(reply.integer);
    } while (cursor != "0" && quota_left());
    co_return removed;
  }

  static asio::awaitable<void> do_commit(StatePtr sp, std::vector<BatchOp> ops, Deadline deadline) {
    State& st = live(sp);
    for (const auto& op : ops) {
      if (const auto* store = std::get_if<batch_op::Store>(&op))
        detail::redis::require_positive_ttl(store->params.ttl, "expiry");
      else if (const auto* exp = std::get_if<batch_op::Expire>(&op))
        detail::redis::require_positive_ttl(exp->ttl, "expiry");
    }
    if (ops.empty()) co_return;
    namespace scripts = detail::redis::scripts;
    Request request;
    request.add("MULTI");
    for (const auto& op : ops) {
      std::visit(
          [&](const auto& o) {
            using Op = std::decay_t<decltype(o)>;
            if constexpr (std::is_same_v<Op, batch_op::Store>) {
              if (detail::redis::is_plain_store(o.params))
                detail::redis::add_plain_store(request, o.key, o.value, o.params);
              else
                detail::redis::add_store_script(request, "EVAL", scripts::store_hash.text, o.key, o.value,
                                                o.params);
            } else if constexpr (std::is_same_v<Op, batch_op::Erase>) {
              request.add("EVAL", scripts::erase.text, "1", o.key);
            } else if constexpr (std::is_same_v<Op, batch_op::Expire>) {
              const detail::redis::Decimal ms(o.ttl.count());
              request.add("EVAL", scripts::expire.text, "1", o.key, ms.view());
            } else {
              static_assert(std::is_same_v<Op, batch_op::Push>);
              request.add("RPUSH", o.queue_key, o.value);
            }
          },
          op);
    }
    request.add("EXEC");
    const Reply reply = co_await exec(st, std::move(request), deadline);
    if (!reply.is_array()) detail::redis::throw_unexpected("EXEC");
    for (const auto& e : reply.elements) detail::redis::throw_if_error(e);
  }

  using Decimal = detail::redis::Decimal;

  StatePtr state_;
};

static_assert(Backend<RedisBackend>);

}  // namespace corocache
