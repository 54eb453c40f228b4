#pragma once
// Scope: a view of one tenant and one namespace of a Cache. Every data operation lives on a
// scope; nothing done through one scope is visible to, or removable from, another.
//
// Lifetime: a Scope is a cheap handle (it shares the Cache's backend); copy it freely. An
// operation's awaitable must be awaited while some Cache or Scope copy is alive.
// Errors: bad input throws std::invalid_argument (or corocache::invalid_name) when the
// operation is called, before any backend work; backend failures throw
// boost::system::system_error with a corocache::errc code when awaited; a miss is nullopt.

#include <corocache/backend.hpp>
#include <corocache/batch.hpp>
#include <corocache/detail/cache_core.hpp>
#include <corocache/detail/deadline.hpp>
#include <corocache/detail/json_codec.hpp>
#include <corocache/detail/keys.hpp>
#include <corocache/detail/store_params.hpp>
#include <corocache/lock.hpp>
#include <corocache/options.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corocache {

template <Backend B>
class Cache;
template <Backend B, class Fn>
class FuncCache;

/// Names a type for Scope::get(name, as<T>).
template <class T>
struct type_tag {};
template <class T>
inline constexpr type_tag<T> as{};

/// Sees a stored value's name (as given to set_key) and bytes; true means "remove it".
using ValuePredicate = std::function<bool(std::string_view name, std::string_view value)>;

template <Backend B>
class Scope {
 public:
  /// The default namespace of a tenant scope.
  static constexpr std::string_view default_namespace = "default";

  /// The same tenant, another namespace. Throws invalid_name for a bad namespace.
  Scope ns(std::string_view name) const {
    detail::validate_segment("namespace", name);
    return Scope(core_, tenant_, std::string(name), timeout_);
  }

  /// The same scope, with a deadline on each of its calls, longer or shorter than the
  /// backend's default request timeout, which it replaces: the whole call (every round trip
  /// of it, batch commits and memoized calls included) must end within `timeout` of the
  /// call, else it throws system_error(errc::timeout). Zero restores the backend's default;
  /// Duration::max() means no deadline.
  Scope with_timeout(Duration timeout) const {
    if (timeout < Duration::zero()) throw std::invalid_argument("corocache: timeout must not be negative");
    return Scope(core_, tenant_, ns_, timeout);
  }

  /// The tenant name ("~global" for Cache::global()).
  const std::string& tenant() const noexcept { return tenant_; }
  /// The namespace name ("default" unless ns() chose another).
  const std::string& namespace_name() const noexcept { return ns_; }

  // --- key/value ------------------------------------------------------------------------

  /// Stores `value` under `name` (any bytes). Completes with true when stored, false when
  /// options.nx was set and a live value exists. Throws std::invalid_argument for a
  /// non-positive expiry.
  asio::awaitable<bool> set_key(std::string_view name, std::string value,
                                const SetOptions& options = {}) const {
    // store_params (which validates) builds the backend's parameter in place: no
    // intermediate StoreParams to move and destroy on this per-call path.
    return core_->backend.set(key(detail::Kind::value, name), std::move(value),
                              detail::store_params(base_, options), call_deadline());
  }

  /// set_key with default options but this expiry: `co_await s.set_key("k", "v", 10min)`
  /// (no options object inside the co_await, which g++ 12 needs; README, Compilers).
  asio::awaitable<bool> set_key(std::string_view name, std::string value, Duration expire) const {
    SetOptions options;
    options.expire = expire;
    return set_key(name, std::move(value), options);
  }

  /// The live value of `name`, or nullopt if it is missing or expired. Consumes one read of
  /// a read-limited key (SetOptions::max_reads).
  asio::awaitable<std::optional<std::string>> get_key(std::string_view name) const {
    return core_->backend.get(key(detail::Kind::value, name), call_deadline());
  }

  /// Removes `name`; true if it held a live value.
  asio::awaitable<bool> delete_key(std::string_view name) const {
    return core_->backend.erase(key(detail::Kind::value, name), call_deadline());
  }

  /// Gives `name` a new expiry from now; false if it is missing. Throws for expire <= 0.
  asio::awaitable<bool> refresh_key(std::string_view name, Duration expire) const {
    detail::validate_expiry("expire", expire);
    return core_->backend.expire(key(detail::Kind::value, name), expire, call_deadline());
  }

  /// Stores `value` encoded as JSON (nlohmann::json's to_json for T).
  template <class T>
  asio::awaitable<bool> set(std::string_view name, const T& value, const SetOptions& options = {}) const {
    return set_key(name, detail::encode_json(value), options);
  }

  /// set with default options but this expiry.
  template <class T>
  asio::awaitable<bool> set(std::string_view name, const T& value, Duration expire) const {
    SetOptions options;
    options.expire = expire;
    return set_key(name, detail::encode_json(value), options);
  }

  /// The value of `name` decoded from JSON as T; nullopt on a miss; throws decode_error
  /// (a std::invalid_argument) if the stored bytes do not decode as T.
  template <class T>
  asio::awaitable<std::optional<T>> get(std::string_view name) const {
    return decode<T>(get_key(name));
  }

  /// The same as get<T>(name), spelled `get(name, corocache::as<T>)`: in code templated on
  /// the backend it needs no `.template` keyword.
  template <class T>
  asio::awaitable<std::optional<T>> get(std::string_view name, type_tag<T>) const {
    return decode<T>(get_key(name));
  }

  // --- indices ---------------------------------------------------------------------------

  /// The names of the live keys whose latest set_key listed `index` (any bytes), sorted.
  asio::awaitable<std::vector<std::string>> list_keys_by_index(std::string_view index) const {
    return list_index(core_, detail::make_index_key(base_, index),
                      detail::kind_base(base_, detail::Kind::value), call_deadline());
  }

  // --- queues ----------------------------------------------------------------------------

  /// Appends `value` to the FIFO queue `queue` (any bytes). Queues do not expire.
  asio::awaitable<void> push_to_queue(std::string_view queue, std::string value) const {
    return core_->backend.push(key(detail::Kind::queue, queue), std::move(value), call_deadline());
  }

  /// Removes and returns the oldest element; when the queue is empty, waits up to `wait`
  /// (default: not at all) for a push, then nullopt. The wait is the pop's own: on a scope
  /// with_timeout(t) the call's deadline is `wait + t` (t bounds the trip, not the wait).
  asio::awaitable<std::optional<std::string>> pop_from_queue(std::string_view queue,
                                                             Duration wait = {}) const {
    if (wait < Duration::zero()) throw std::invalid_argument("corocache: wait must not be negative");
    return core_->backend.pop(key(detail::Kind::queue, queue), wait, call_deadline().extended(wait));
  }

  // --- locks -----------------------------------------------------------------------------

  /// Takes the lock `name` for `ttl` if nobody holds it: a Lock carrying a fresh owner
  /// token, or nullopt. Of N concurrent attempts exactly one succeeds. The lock expires
  /// after ttl even if never released. An attempt that fails (timeout, lost link,
  /// cancellation: the server may or may not have taken the lock) rethrows its error and
  /// releases the lock in the background under the attempt's own token (ordered after the
  /// attempt on the same connection; retried with backoff until the server answers, for
  /// at most min(ttl, 1 min)). What remains: a lock the server takes only after the release
  /// got its answer (e.g. the attempt went out on a link that dropped and reached the
  /// server later) stays held until its ttl.
  asio::awaitable<std::optional<Lock>> attempt_distributed_lock(std::string_view name, Duration ttl) const {
    detail::validate_expiry("lock ttl", ttl);
    return acquire(core_, Lock(key(detail::Kind::lock, name), std::string(name), detail::make_lock_token()),
                   ttl, call_deadline());
  }

  /// Releases `lock` if this acquisition still holds it; false if it expired (and maybe
  /// went to someone else, whose lock stays in place). Throws std::invalid_argument for a
  /// lock taken in another scope.
  asio::awaitable<bool> release_distributed_lock(const Lock& lock) const {
    if (lock.key() != key(detail::Kind::lock, lock.name()))
      throw std::invalid_argument("corocache: lock '" + lock.name() + "' was acquired in another scope");
    return core_->backend.unlock(lock.key(), lock.token(), call_deadline());
  }

  // --- invalidation ----------------------------------------------------------------------

  /// Removes every value of this scope whose name starts with `prefix` (any bytes; glob
  /// characters are literal). Returns how many values went.
  asio::awaitable<std::size_t> invalidate_prefix(std::string_view prefix) const {
    return core_->backend.erase_prefix(key(detail::Kind::value, prefix), call_deadline());
  }

  /// Removes every live value of this scope that `index` (any bytes) lists, and the index
  /// itself, in one step: atomic on Redis (one script), under the involved shards' locks in
  /// memory. A value leaves its other indices too. Returns how many values went.
  asio::awaitable<std::size_t> invalidate_index(std::string_view index) const {
    return core_->backend.erase_index(detail::make_index_key(base_, index), call_deadline());
  }

  /// Removes the values of this scope that `predicate(name, value)` accepts, at most
  /// `limit` of them (negative: no limit). Returns how many values went. The predicate runs
  /// on the awaiting thread; reading values for it consumes no reads.
  asio::awaitable<std::size_t> invalidate_if(ValuePredicate predicate, std::int64_t limit = -1) const {
    if (!predicate) throw std::invalid_argument("corocache: invalidate_if needs a predicate");
    const std::size_t name_offset = detail::kind_base(base_, detail::Kind::value).size();
    EntryPredicate on_keys = [predicate = std::move(predicate), name_offset](std::string_view key,
                                                                             std::string_view value) {
      return key.size() >= name_offset && predicate(key.substr(name_offset), value);
    };
    return core_->backend.erase_if(detail::kind_base(base_, detail::Kind::value), std::move(on_keys), limit,
                                   call_deadline());
  }

  /// Empties this namespace of this tenant: values, queues, indices, locks and memoized
  /// results. Other namespaces and tenants are untouched.
  asio::awaitable<void> flush() const { return discard_count(core_, base_, call_deadline()); }

  /// Empties every namespace of this scope's tenant.
  asio::awaitable<void> flush_tenant() const {
    return discard_count(core_, detail::tenant_base(core_->options.prefix, tenant_), call_deadline());
  }

  // --- batches ---------------------------------------------------------------------------

  /// An empty batch on this scope; see batch.hpp.
  Batch<B> batch() const { return Batch<B>(core_, base_, timeout_); }

 private:
  friend class Cache<B>;
  template <Backend, class>
  friend class FuncCache;

  Scope(std::shared_ptr<detail::CacheCore<B>> core, std::string tenant, std::string ns, Duration timeout)
      : core_(std::move(core)),
        tenant_(std::move(tenant)),
        ns_(std::move(ns)),
        base_(detail::scope_base(core_->options.prefix, tenant_, ns_)),
        timeout_(timeout) {}

  std::string key(detail::Kind kind, std::string_view name) const {
    return detail::make_key(base_, kind, name);
  }

  /// The deadline of a call made now: the backend's default unless with_timeout set one.
  Deadline call_deadline() const noexcept {
    return timeout_ == Duration::zero() ? Deadline{} : Deadline::after(timeout_);
  }

  // Coroutines below take the core by value, so they stay valid however long the
  // awaitable waits before being awaited.
  static asio::awaitable<std::vector<std::string>> list_index(std::shared_ptr<detail::CacheCore<B>> core,
                                                              std::string index_key, std::string value_base,
                                                              Deadline deadline) {
    auto members = co_await core->backend.index_members(std::move(index_key), deadline);
    std::vector<std::string> names;
    names.reserve(members.size());
    for (auto& member : members)
      if (member.starts_with(value_base)) names.push_back(member.substr(value_base.size()));
    std::sort(names.begin(), names.end());
    co_return names;
  }

  static asio::awaitable<std::optional<Lock>> acquire(std::shared_ptr<detail::CacheCore<B>> core, Lock lock,
                                                      Duration ttl, Deadline deadline) {
    const auto executor = co_await asio::this_coro::executor;
    // Written without `if (co_await ...) co_return`, which g++ 12 miscompiles (SIGILL).
    bool acquired = false;
    try {
      acquired = co_await core->backend.try_lock(lock.key(), lock.token(), ttl, deadline);
    } catch (...) {
      // A timeout, a lost link or a cancellation leaves unknown whether the server took
      // the lock: release it under this attempt's token, in the background.
      asio::co_spawn(executor, release_quietly(core, lock, ttl), asio::detached);
      throw;
    }
    std::optional<Lock> result;
    if (acquired) result.emplace(std::move(lock));
    co_return result;
  }

  template <class T>
  static asio::awaitable<std::optional<T>> decode(asio::awaitable<std::optional<std::string>> read) {
    auto raw = co_await std::move(read);
    if (!raw) co_return std::nullopt;
    co_return detail::decode_json<T>(*raw);
  }

  /// Best-effort unlock of an attempt whose outcome is unknown. Started after the attempt,
  /// so on Redis it is written after the attempt's SET on the same connection. Each try has
  /// the backend's default deadline; a try that fails (e.g. the server is still stalled, or
  /// its script reply came too late to be retried) is repeated with backoff until one gets
  /// an answer, for at most min(ttl, 1 min) (past the ttl the lock is gone anyway). Holds the
  /// backend only while a try runs, so a destroyed Cache ends it, and stops at once when the
  /// backend was closed (shut_down).
  static asio::awaitable<void> release_quietly(std::weak_ptr<detail::CacheCore<B>> weak_core, Lock lock,
                                               Duration ttl) {
    const auto give_up = detail::saturating_after(std::min(ttl, Duration(std::chrono::minutes(1))));
    asio::steady_timer pause(co_await asio::this_coro::executor);
    Duration backoff = std::chrono::milliseconds(50);
    for (;;) {
      bool answered = false;
      if (const auto core = weak_core.lock()) {
        try {
          co_await core->backend.unlock(lock.key(), lock.token(), Deadline());
          answered = true;
        } catch (const boost::system::system_error& e) {
          // A closed backend takes no more calls: stop, so close() lets io_context::run return.
          answered = e.code() == make_error_code(errc::shut_down);
        } catch (...) {
        }
      } else {
        answered = true;  // the cache is gone: nobody to release it with
      }
      if (answered || Deadline::Clock::now() + backoff >= give_up) break;
      detail::expire_after(pause, backoff);
      co_await pause.async_wait(asio::use_awaitable);
      backoff = std::min(backoff * 2, Duration(std::chrono::seconds(1)));
    }
  }

  static asio::awaitable<void> discard_count(std::shared_ptr<detail::CacheCore<B>> core, std::string prefix,
                                             Deadline deadline) {
    co_await core->backend.erase_prefix(std::move(prefix), deadline);
  }

  std::shared_ptr<detail::CacheCore<B>> core_;
  std::string tenant_;
  std::string ns_;
  std::string base_;  // <prefix>:{<tenant>:<ns>}:
  Duration timeout_{};
};

}  // namespace corocache
