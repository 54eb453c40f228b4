#pragma once
// The argument rules of the Backend concept (backend.hpp), in one place that every backend
// calls at the start of each operation: an argument one backend rejects, every backend
// rejects, with the same exception type (corocache::invalid_backend_argument) and the same
// message. docs/backend_contract.md lists the rules.
//
// Each backend calls check_<operation>(...) as the first statement of the operation's
// coroutine, so the error is thrown when the awaitable is awaited, before any I/O. The
// checks are inline comparisons; building the message lives in a cold function of its own.

#include <corocache/backend.hpp>
#include <corocache/errors.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace corocache::detail::contract {

/// Which operation a check is for: its name, and for an operation of a batch, its place
/// in the batch and its kind ("commit: operation 2 (store)"). Built without allocating;
/// the name is spelled out only when a check fails.
struct Where {
  constexpr Where(std::string_view op_name) noexcept : op(op_name) {}  // NOLINT: implicit on purpose
  constexpr Where(std::string_view op_name, std::size_t i, std::string_view k) noexcept
      : op(op_name), index(i), kind(k) {}
  std::string_view op;
  std::size_t index = 0;
  std::string_view kind;  ///< non-empty for an operation of a batch
};

/// Throws invalid_backend_argument "corocache: <op>: <what>".
[[noreturn, gnu::cold, gnu::noinline]] inline void fail(Where where, std::string_view what) {
  std::string msg = "corocache: ";
  msg.append(where.op);
  if (!where.kind.empty())
    msg.append(": operation ")
        .append(std::to_string(where.index))
        .append(" (")
        .append(where.kind)
        .append(")");
  msg.append(": ").append(what);
  throw invalid_backend_argument(msg);
}

[[noreturn, gnu::cold, gnu::noinline]] inline void fail_empty(Where where, std::string_view what) {
  fail(where, std::string(what) + " must not be empty");
}

[[noreturn, gnu::cold, gnu::noinline]] inline void fail_duration(Where where, std::string_view what,
                                                                 std::string_view rule, Duration got) {
  std::string msg(what);
  msg.append(" must be ").append(rule).append(", got ").append(std::to_string(got.count())).append(" ms");
  fail(where, msg);
}

/// Keys (value, index, queue and lock keys) are never empty: the facade never builds one,
/// and an empty key cannot be told apart from "no key".
inline void require_key(Where where, std::string_view what, std::string_view key) {
  if (key.empty()) [[unlikely]]
    fail_empty(where, what);
}

/// Expiries and lock ttls are > 0; Duration::max() is allowed and means "effectively never"
/// (every backend saturates it).
inline void require_ttl(Where where, std::string_view what, Duration ttl) {
  if (ttl <= Duration::zero()) [[unlikely]]
    fail_duration(where, what, "> 0", ttl);
}

inline void check_store(Where where, std::string_view key, const StoreParams& params) {
  require_key(where, "key", key);
  require_ttl(where, "ttl", params.ttl);
  for (const auto& index_key : params.index_keys) require_key(where, "index key", index_key);
}

inline void check_set(std::string_view key, const StoreParams& params) { check_store({"set"}, key, params); }
inline void check_get(std::string_view key) { require_key({"get"}, "key", key); }
inline void check_erase(std::string_view key) { require_key({"erase"}, "key", key); }
inline void check_expire(std::string_view key, Duration ttl) {
  require_key({"expire"}, "key", key);
  require_ttl({"expire"}, "ttl", ttl);
}
inline void check_index_members(std::string_view index_key) {
  require_key({"index_members"}, "index key", index_key);
}
inline void check_erase_index(std::string_view index_key) {
  require_key({"erase_index"}, "index key", index_key);
}
inline void check_push(std::string_view queue_key) { require_key({"push"}, "queue key", queue_key); }
/// wait >= 0 (0: do not wait); Duration::max() waits without a limit of its own.
inline void check_pop(std::string_view queue_key, Duration wait) {
  require_key({"pop"}, "queue key", queue_key);
  if (wait < Duration::zero()) [[unlikely]]
    fail_duration({"pop"}, "wait", ">= 0", wait);
}
/// The token tells owners apart; an empty one could not be told from "no owner".
inline void check_try_lock(std::string_view lock_key, std::string_view token, Duration ttl) {
  require_key({"try_lock"}, "lock key", lock_key);
  require_key({"try_lock"}, "token", token);
  require_ttl({"try_lock"}, "ttl", ttl);
}
inline void check_unlock(std::string_view lock_key, std::string_view token) {
  require_key({"unlock"}, "lock key", lock_key);
  require_key({"unlock"}, "token", token);
}

inline void require_prefix(Where where, std::string_view prefix) {
  if (prefix.empty()) [[unlikely]]
    fail(where, "prefix must not be empty (it would match every key of the backend)");
}
inline void check_erase_prefix(std::string_view prefix) { require_prefix({"erase_prefix"}, prefix); }
/// Any limit is valid: < 0 means no limit, 0 removes nothing.
inline void check_erase_if(std::string_view prefix, const EntryPredicate& predicate) {
  require_prefix({"erase_if"}, prefix);
  if (!predicate) [[unlikely]]
    fail({"erase_if"}, "predicate must not be empty");
}

/// Every operation of a batch obeys the rules of its single-operation form; a batch with a
/// bad operation is rejected whole (nothing of it is applied). An empty batch is valid.
inline void check_commit(const std::vector<BatchOp>& ops) {
  for (std::size_t i = 0; i < ops.size(); ++i) {
    std::visit(
        [i](const auto& o) {
          using Op = std::decay_t<decltype(o)>;
          if constexpr (std::is_same_v<Op, batch_op::Store>) {
            check_store({"commit", i, "store"}, o.key, o.params);
          } else if constexpr (std::is_same_v<Op, batch_op::Erase>) {
            require_key({"commit", i, "erase"}, "key", o.key);
          } else if constexpr (std::is_same_v<Op, batch_op::Expire>) {
            require_key({"commit", i, "expire"}, "key", o.key);
            require_ttl({"commit", i, "expire"}, "ttl", o.ttl);
          } else if constexpr (std::is_same_v<Op, batch_op::Push>) {
            require_key({"commit", i, "push"}, "queue key", o.queue_key);
          } else if constexpr (std::is_same_v<Op, batch_op::EraseIndex>) {
            require_key({"commit", i, "erase_index"}, "index key", o.index_key);
          } else {
            static_assert(std::is_same_v<Op, batch_op::ErasePrefix>,
                          "a new batch operation needs its rule here");
            require_prefix({"commit", i, "erase_prefix"}, o.prefix);
          }
        },
        ops[i]);
  }
}

}  // namespace corocache::detail::contract
