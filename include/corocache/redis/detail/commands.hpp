#pragma once
// Command encoding and reply checks of RedisBackend, without I/O: the store commands (plain
// SET or the store script), batches (the batch script), scripts' retry markers, input checks
// that run before any I/O, and the errors thrown for error replies and replies of an
// unexpected shape.

#include <corocache/backend.hpp>
#include <corocache/errors.hpp>
#include <corocache/redis/detail/budget.hpp>
#include <corocache/redis/detail/cluster_slots.hpp>
#include <corocache/redis/detail/reply.hpp>
#include <corocache/redis/detail/request.hpp>
#include <corocache/redis/detail/scripts.hpp>

#include <boost/asio/error.hpp>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <deque>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
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

/// Throws system_error carrying the server's message for an error reply: errc::server_error,
/// or errc::capacity_exceeded for "-OOM" (a server at maxmemory that evicts nothing refuses
/// the write, as a full memory backend in reject mode does).
inline void throw_if_error(const Reply& reply) {
  if (!reply.is_error()) return;
  const bool full = std::string_view(reply.str).starts_with("OOM ");
  throw_error(full ? errc::capacity_exceeded : errc::server_error, "corocache: redis: " + reply.str);
}

/// A reply of an unexpected shape (e.g. a proxy answering oddly): a protocol error.
[[noreturn]] inline void throw_unexpected(std::string_view command) {
  throw_error(errc::protocol_error, "corocache: redis: unexpected reply to " + std::string(command));
}

/// A key in `key`'s Cluster slot that corocache never writes. A script that may delete a
/// key and then write it declares it: a script with a missing key is not run on a slot being
/// migrated away (the nodes answer TRYAGAIN or ASK until the migration ends), and so it is
/// never stopped between the delete and the write (docs/redis_topology.md, "During
/// resharding"). Empty when `key` is empty or has a '}' but no hash tag: no key is sure to
/// share its slot.
inline std::string migration_probe_key(std::string_view key) {
  constexpr std::string_view suffix = ":~migration-probe";
  if (key.empty()) return {};  // "{}..." has no hash tag: it would hash whole
  const std::string_view tag = cluster::hashed_part(key);
  if (tag.size() != key.size()) {  // "...{tag}...": keep everything up to the tag's '}'
    const auto close = static_cast<std::size_t>(tag.data() - key.data()) + tag.size();
    return std::string(key.substr(0, close + 1)).append(suffix);
  }
  if (key.find('}') != std::string_view::npos) return {};
  return std::string("{").append(key).append("}").append(suffix);
}

/// Appends `EVAL <text>` (or `EVALSHA <sha>`, chosen by `verb`) with the store script's
/// KEYS/ARGV for `key`, `value` and `params` to `request`; `learned` are further keys to
/// declare (the value's current indices, from a retry marker). `probe`: the migration
/// probe's name on a cluster (the script asks for it, with a retry marker, only to turn a
/// plain value into a hash), empty elsewhere.
inline void add_store_script(Request& request, std::string_view verb, std::string_view script_id,
                             std::string_view key, std::string_view value, const StoreParams& params,
                             std::span<const std::string> learned = {}, std::string_view probe = {}) {
  const Decimal numkeys(static_cast<long long>(params.index_keys.size() + learned.size() + 1));
  const Decimal ttl(px(params.ttl));
  const Decimal reads(params.max_reads);
  const Decimal index_count(static_cast<long long>(params.index_keys.size()));
  std::vector<std::string_view> argv;
  argv.reserve(params.index_keys.size() + learned.size() + 10);
  argv.insert(argv.end(), {verb, script_id, numkeys.view(), key});
  for (const auto& index_key : params.index_keys) argv.emplace_back(index_key);
  for (const auto& k : learned) argv.emplace_back(k);
  argv.insert(argv.end(),
              {value, ttl.view(), params.nx ? "1" : "0", reads.view(), index_count.view(), probe});
  request.add_argv(argv);
}

/// True when a store can be a plain SET (no hash needed).
inline bool is_plain_store(const StoreParams& params) noexcept {
  return params.index_keys.empty() && params.max_reads == 0;
}

/// True when a batch operation may delete a key: an erase, an index or prefix
/// invalidation, or a hashed store (it may delete its key, or empty an index set by moving
/// the value out of it). Plain stores, expiries and pushes never do.
inline bool may_delete(const BatchOp& op) noexcept {
  if (const auto* store = std::get_if<batch_op::Store>(&op)) return !is_plain_store(store->params);
  return !std::holds_alternative<batch_op::Expire>(op) && !std::holds_alternative<batch_op::Push>(op);
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

/// The key a batch is routed by: its first operation's (a facade batch is one scope, so
/// one slot; on a cluster, cluster_keys.hpp has refused a batch across slots).
inline std::string_view batch_key(const std::vector<BatchOp>& ops) {
  return std::visit(
      [](const auto& o) -> std::string_view {
        using Op = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<Op, batch_op::Push>)
          return o.queue_key;
        else if constexpr (std::is_same_v<Op, batch_op::EraseIndex>)
          return o.index_key;
        else if constexpr (std::is_same_v<Op, batch_op::ErasePrefix>)
          return o.prefix;
        else
          return o.key;
      },
      ops.front());
}

/// Appends the batch script (scripts::batch) running `ops` (not empty) to `request`;
/// `learned` are further keys to declare (current indices, from a retry marker).
/// `scanned`: for each ErasePrefix of `ops`, in order, the keys found under its prefix.
inline void add_batch_script(Request& request, std::string_view verb, std::string_view script_id,
                             const std::vector<BatchOp>& ops, std::span<const std::string> learned = {},
                             std::span<const std::vector<std::string>> scanned = {}) {
  std::size_t next_scanned = 0;
  std::vector<std::string_view> keys;
  std::unordered_map<std::string_view, std::size_t> position;  // 1-based, as Lua's KEYS
  std::deque<std::string> numbers;                             // stable storage for the views
  auto number = [&](long long n) -> std::string_view { return numbers.emplace_back(std::to_string(n)); };
  auto key_at = [&](std::string_view key) -> std::string_view {
    const auto [it, added] = position.try_emplace(key, keys.size() + 1);
    if (added) keys.push_back(key);
    return number(static_cast<long long>(it->second));
  };
  std::vector<std::string_view> args;
  args.push_back(number(static_cast<long long>(ops.size())));
  for (const auto& op : ops) {
    std::visit(
        [&](const auto& o) {
          using Op = std::decay_t<decltype(o)>;
          if constexpr (std::is_same_v<Op, batch_op::Store>) {
            const bool plain = is_plain_store(o.params);
            args.insert(args.end(), {plain ? "S" : "H", key_at(o.key), o.value, number(px(o.params.ttl)),
                                     o.params.nx ? "1" : "0"});
            if (!plain) {
              args.push_back(number(o.params.max_reads));
              args.push_back(number(static_cast<long long>(o.params.index_keys.size())));
              for (const auto& index_key : o.params.index_keys) args.push_back(key_at(index_key));
            }
          } else if constexpr (std::is_same_v<Op, batch_op::Erase>) {
            args.insert(args.end(), {"E", key_at(o.key)});
          } else if constexpr (std::is_same_v<Op, batch_op::Expire>) {
            args.insert(args.end(), {"X", key_at(o.key), number(px(o.ttl))});
          } else if constexpr (std::is_same_v<Op, batch_op::Push>) {
            args.insert(args.end(), {"Q", key_at(o.queue_key), o.value});
          } else if constexpr (std::is_same_v<Op, batch_op::EraseIndex>) {
            args.insert(args.end(), {"I", key_at(o.index_key)});
          } else {
            static_assert(std::is_same_v<Op, batch_op::ErasePrefix>);
            // The keys found under the prefix before the batch (SCAN cannot run in a
            // script that declares its keys): the next scanned list, in batch order.
            if (next_scanned == scanned.size()) throw std::logic_error("corocache: batch prefix not scanned");
            const auto& found = scanned[next_scanned++];
            args.insert(args.end(), {"P", "0", number(static_cast<long long>(found.size()))});
            for (const auto& k : found) args.push_back(key_at(k));
          }
        },
        op);
  }
  for (const auto& k : learned) key_at(k);
  // Declared only when an operation may delete a key: a batch of plain stores, expiries and
  // pushes still runs while its slot migrates.
  const bool deletes = std::ranges::any_of(ops, may_delete);
  const std::string probe = deletes ? migration_probe_key(batch_key(ops)) : std::string();
  args.push_back(probe.empty() ? std::string_view("0") : key_at(probe));
  std::vector<std::string_view> argv;
  argv.reserve(keys.size() + args.size() + 3);
  argv.insert(argv.end(), {verb, script_id, number(static_cast<long long>(keys.size()))});
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  request.add_argv(argv);
}

/// The keys a script's retry marker (scripts.hpp) asks for, or null when `reply` is not one.
inline const std::vector<Reply>* retry_keys(const Reply& reply) noexcept {
  if (reply.is_array() && reply.elements.size() == 1 && reply.elements[0].is_array())
    return &reply.elements[0].elements;
  return nullptr;
}

/// True for a failure after which a request may have run, or may still run, on the server
/// (its outcome is unknown): the caller is gone but the server may have acted.
inline bool outcome_unknown(const boost::system::error_code& ec) noexcept {
  return ec == errc::timeout || ec == errc::connection_lost || ec == errc::protocol_error ||
         ec == errc::reply_too_large || ec == boost::asio::error::operation_aborted;
}

}  // namespace corocache::detail::redis
