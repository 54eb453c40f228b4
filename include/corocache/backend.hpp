#pragma once
// The contract between the Cache<Backend> facade and a storage backend.
//
// Backends know nothing of prefixes, tenants or namespaces: the facade validates names,
// builds every key (detail/keys.hpp) and hands the backend fully built keys. A backend
// stores bytes under those keys and must give every operation below the same observable
// semantics as the others; tests/conformance runs one suite against each of them.
//
// All operations return boost::asio::awaitable and take their arguments by value, so an
// awaitable stays valid however long it waits before it is awaited. Every operation takes a
// last Deadline argument (default: the backend's own timeout); past it the call throws
// system_error(errc::timeout).

#include <boost/asio/awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace corocache {

namespace asio = boost::asio;

/// Every duration in the API (expiry, lock ttl, waits, timeouts) is in milliseconds;
/// std::chrono literals such as 10s or 5min convert implicitly.
using Duration = std::chrono::milliseconds;

/// When a call must have completed. Default-constructed it means "the backend's own default"
/// (on Redis, RedisOptions::request_timeout for each round trip; on memory, no limit).
/// Scope::with_timeout gives each call one. Arithmetic saturates: a Duration too large to
/// add to the clock's now (e.g. Duration::max()) is a deadline that never passes.
class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  constexpr Deadline() noexcept = default;
  /// `limit` from `now` (limit < 0 counts as 0).
  static Deadline after(Duration limit, Clock::time_point now = Clock::now()) noexcept {
    Deadline d;
    d.set_ = true;
    const auto room = std::chrono::duration_cast<Duration>(Clock::time_point::max() - now);
    d.at_ = limit >= room ? Clock::time_point::max() : now + std::max(limit, Duration::zero());
    return d;
  }
  static Deadline never() noexcept { return after(Duration::max()); }

  /// True for the backend's default (no deadline given by the caller).
  bool is_default() const noexcept { return !set_; }
  /// True for a deadline that never passes.
  bool is_never() const noexcept { return set_ && at_ == Clock::time_point::max(); }
  /// The instant (Clock::time_point::max() for never); meaningless for the default.
  Clock::time_point at() const noexcept { return at_; }
  /// Time left from `now`, rounded up to whole milliseconds and never negative;
  /// Duration::max() for never, `fallback` for the default.
  Duration remaining(Duration fallback, Clock::time_point now = Clock::now()) const noexcept {
    if (!set_) return fallback;
    if (at_ == Clock::time_point::max()) return Duration::max();
    if (at_ <= now) return Duration::zero();
    return std::chrono::ceil<Duration>(at_ - now);
  }
  /// This deadline moved `extra` later (saturating); the default stays the default.
  Deadline extended(Duration extra) const noexcept {
    if (!set_ || at_ == Clock::time_point::max() || extra <= Duration::zero()) return *this;
    const auto room = std::chrono::duration_cast<Duration>(Clock::time_point::max() - at_);
    Deadline d = *this;
    d.at_ = extra >= room ? Clock::time_point::max() : at_ + extra;
    return d;
  }

 private:
  Clock::time_point at_ = Clock::time_point::max();
  bool set_ = false;
};

/// What the facade asks a backend to do when it stores a value.
struct StoreParams {
  /// Time to live; always > 0 (the facade rejects anything else).
  Duration ttl{};
  /// Store only if no live value exists under the key. Atomic: of N concurrent
  /// nx stores of one key, exactly one reports true.
  bool nx = false;
  /// 0: unlimited. Otherwise the max_reads-th successful get returns the value and
  /// removes the key atomically (of many concurrent readers exactly max_reads succeed).
  std::uint32_t max_reads = 0;
  /// Full keys of the index sets that list this key. Storing replaces the key's previous
  /// memberships: after the store the key is listed by exactly these indices.
  std::vector<std::string> index_keys;
};

/// Sees a stored entry's full key and value; true means "remove it".
using EntryPredicate = std::function<bool(std::string_view key, std::string_view value)>;

/// Operations a batch can hold; applied together by Backend::commit.
namespace batch_op {
struct Store {
  std::string key;
  std::string value;
  StoreParams params;
};
struct Erase {
  std::string key;
};
struct Expire {
  std::string key;
  Duration ttl;
};
struct Push {
  std::string queue_key;
  std::string value;
};
/// erase_index inside the batch: the index's live member values, then the index.
struct EraseIndex {
  std::string index_key;
};
/// erase_prefix inside the batch (the facade uses it for one function's memoized results,
/// whose keys share one scope, hence one Redis Cluster slot).
struct ErasePrefix {
  std::string prefix;
};
}  // namespace batch_op
using BatchOp = std::variant<batch_op::Store, batch_op::Erase, batch_op::Expire, batch_op::Push,
                             batch_op::EraseIndex, batch_op::ErasePrefix>;

// clang-format off
/// What a backend must provide. Semantics of each operation:
///
/// - set(key, value, params) -> bool: stores value under key for params.ttl (see
///   StoreParams); false only when params.nx and a live value exists.
/// - get(key) -> optional<string>: the live value, or nullopt (missing or expired);
///   consumes one read of a read-limited key.
/// - erase(key) -> bool: removes the value (and its index memberships); true if it was live.
/// - expire(key, ttl) -> bool: gives a live value a new ttl from now; false if missing.
/// - index_members(index_key) -> vector<string>: full keys of the live values whose
///   latest store listed index_key, in no particular order. Dead members may be pruned.
/// - erase_index(index_key) -> size_t: removes every live member value and the index
///   itself; returns how many values went.
/// - push(queue_key, value) -> void: appends to a FIFO queue. Queues do not expire.
/// - pop(queue_key, wait) -> optional<string>: removes and returns the oldest element;
///   when empty, waits up to `wait` (0: not at all) for one, then nullopt. The deadline
///   bounds the whole call, the wait included (the facade extends it by the wait).
/// - try_lock(lock_key, token, ttl) -> bool: takes the lock for ttl if nobody holds it.
///   Atomic: of N concurrent attempts exactly one succeeds.
/// - unlock(lock_key, token) -> bool: releases the lock only if `token` holds it now.
/// - erase_prefix(prefix) -> size_t: removes every key (of any kind) that starts with
///   prefix; returns how many keys went. Nothing outside the prefix is touched.
/// - erase_if(prefix, predicate, limit) -> size_t: among the live values whose key
///   starts with prefix, removes those the predicate accepts, at most `limit` of them
///   (limit < 0: no limit); reading values for the predicate consumes no reads.
/// - commit(ops) -> void: applies the operations together, in order, with nothing
///   interleaved from other callers (one atomic script on Redis). EraseIndex and ErasePrefix
///   do what erase_index and erase_prefix do.
template <class B>
concept Backend = std::move_constructible<B> &&
    requires(B& b, std::string s, StoreParams params, Duration d, EntryPredicate pred,
             std::int64_t limit, std::vector<BatchOp> ops, Deadline dl) {
  { b.set(s, s, params, dl) } -> std::same_as<asio::awaitable<bool>>;
  { b.get(s, dl) } -> std::same_as<asio::awaitable<std::optional<std::string>>>;
  { b.erase(s, dl) } -> std::same_as<asio::awaitable<bool>>;
  { b.expire(s, d, dl) } -> std::same_as<asio::awaitable<bool>>;
  { b.index_members(s, dl) } -> std::same_as<asio::awaitable<std::vector<std::string>>>;
  { b.erase_index(s, dl) } -> std::same_as<asio::awaitable<std::size_t>>;
  { b.push(s, s, dl) } -> std::same_as<asio::awaitable<void>>;
  { b.pop(s, d, dl) } -> std::same_as<asio::awaitable<std::optional<std::string>>>;
  { b.try_lock(s, s, d, dl) } -> std::same_as<asio::awaitable<bool>>;
  { b.unlock(s, s, dl) } -> std::same_as<asio::awaitable<bool>>;
  { b.erase_prefix(s, dl) } -> std::same_as<asio::awaitable<std::size_t>>;
  { b.erase_if(s, pred, limit, dl) } -> std::same_as<asio::awaitable<std::size_t>>;
  { b.commit(ops, dl) } -> std::same_as<asio::awaitable<void>>;
};
// clang-format on

}  // namespace corocache
