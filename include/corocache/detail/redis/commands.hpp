#pragma once
// Command encoding and reply checks of RedisBackend, without I/O: the store commands (plain
// SET or the store script), batches (MULTI/EXEC), input checks that run before any I/O, and the errors thrown
// for error replies and replies of an unexpected shape.

#include <corocache/backend.hpp>
#include <corocache/detail/redis/batch_scripts.hpp>
#include <corocache/detail/redis/budget.hpp>
#include <corocache/detail/redis/glob.hpp>
#include <corocache/detail/redis/reply.hpp>
#include <corocache/detail/redis/request.hpp>
#include <corocache/detail/redis/scripts.hpp>
#include <corocache/errors.hpp>

#include <boost/asio/error.hpp>

#include <charconv>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace corocache::detail::redis {

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
  const Decimal ttl(px(params.ttl));
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
  const Decimal ttl(px(params.ttl));
  if (params.nx)
    request.add("SET", key, value, "PX", ttl.view(), "NX");
  else
    request.add("SET", key, value, "PX", ttl.view());
}

/// Room a reply needs besides a value's bytes (headers, and one array around it, as in the
/// peek script's reply): a value is readable when value + overhead <= max_reply_bytes.
inline constexpr std::size_t value_reply_overhead = 1024;

/// The largest value a backend with `max_reply_bytes` can read back.
constexpr std::size_t max_readable_value(std::size_t max_reply_bytes) noexcept {
  return max_reply_bytes > value_reply_overhead ? max_reply_bytes - value_reply_overhead : 0;
}

/// Throws invalid_backend_argument, naming the size and the limit, for a value that no read
/// could return (its reply would exceed max_reply_bytes): refused before any I/O.
inline void require_readable(std::size_t value_size, std::size_t max_reply_bytes) {
  if (value_size <= max_readable_value(max_reply_bytes)) [[likely]]
    return;
  throw invalid_backend_argument("corocache: a value of " + std::to_string(value_size) +
                                 " bytes could not be read back: replies are limited to max_reply_bytes = " +
                                 std::to_string(max_reply_bytes) + " (values up to " +
                                 std::to_string(max_readable_value(max_reply_bytes)) + " bytes)");
}

/// Checks a batch's values before any I/O: each must be readable back (the backend contract,
/// detail/backend_contract.hpp, has checked the rest).
inline void check_batch(const std::vector<BatchOp>& ops, std::size_t max_reply_bytes) {
  for (const auto& op : ops) {
    if (const auto* store = std::get_if<batch_op::Store>(&op)) {
      require_readable(store->value.size(), max_reply_bytes);
    } else if (const auto* push = std::get_if<batch_op::Push>(&op)) {
      require_readable(push->value.size(), max_reply_bytes);
    } else if (const auto* erase = std::get_if<batch_op::ErasePrefix>(&op)) {
      if (erase->prefix.empty())
        throw std::invalid_argument("corocache: an empty prefix would match the whole database");
    }
  }
}

/// A batch (not empty) as one MULTI ... EXEC request. Scripts go as EVAL inside it: an
/// EVALSHA there could not fall back on NOSCRIPT.
inline Request encode_batch(const std::vector<BatchOp>& ops) {
  Request request;
  request.add("MULTI");
  for (const auto& op : ops) {
    std::visit(
        [&](const auto& o) {
          using Op = std::decay_t<decltype(o)>;
          if constexpr (std::is_same_v<Op, batch_op::Store>) {
            if (is_plain_store(o.params))
              add_plain_store(request, o.key, o.value, o.params);
            else
              add_store_script(request, "EVAL", scripts::store_hash.text, o.key, o.value, o.params);
          } else if constexpr (std::is_same_v<Op, batch_op::Erase>) {
            request.add("EVAL", scripts::erase.text, "1", o.key);
          } else if constexpr (std::is_same_v<Op, batch_op::Expire>) {
            const Decimal ms(px(o.ttl));
            request.add("EVAL", scripts::expire.text, "1", o.key, ms.view());
          } else if constexpr (std::is_same_v<Op, batch_op::Push>) {
            request.add("RPUSH", o.queue_key, o.value);
          } else if constexpr (std::is_same_v<Op, batch_op::EraseIndex>) {
            request.add("EVAL", scripts::erase_index.text, "1", o.index_key);
          } else {
            static_assert(std::is_same_v<Op, batch_op::ErasePrefix>);
            request.add("EVAL", batch_scripts::erase_prefix.text, "1", o.prefix,
                        prefix_match_pattern(o.prefix));
          }
        },
        op);
  }
  request.add("EXEC");
  return request;
}

/// True for a failure after which a request may have run, or may still run, on the server
/// (its outcome is unknown): the caller is gone but the server may have acted.
inline bool outcome_unknown(const boost::system::error_code& ec) noexcept {
  return ec == errc::timeout || ec == errc::connection_lost || ec == errc::protocol_error ||
         ec == errc::reply_too_large || ec == boost::asio::error::operation_aborted;
}

}  // namespace corocache::detail::redis
