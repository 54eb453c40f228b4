#pragma once
// NullBackend: caching switched off, with the same API, so an application can disable its
// cache by configuration and keep working. The choices, each the one that keeps callers
// correct rather than merely quiet:
// - writes are dropped and report "not stored" (set -> false), reads miss (get -> nullopt);
// - refresh/delete report "missing" (false), indices list nothing, invalidation removes 0;
// - queues stay empty: pushes are dropped; a pop waits its full `wait` (so a polling loop
//   does not spin) and returns nullopt;
// - locks are always granted and releases always succeed: without a shared store there is
//   nobody to exclude, and refusing every lock would stop the work it guards;
// - func_cache therefore runs the function on every call;
// - arguments are checked as on every backend (detail/backend_contract.hpp): what a real
//   backend rejects, a disabled cache rejects too.

#include <corocache/backend.hpp>
#include <corocache/detail/backend_contract.hpp>
#include <corocache/detail/deadline.hpp>
#include <corocache/errors.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace corocache {

class NullBackend {
 public:
  /// Nothing to close (no connection, no background work); Cache::close() calls it.
  void close() noexcept {}
  asio::awaitable<bool> set(std::string key, std::string, StoreParams params, Deadline = {}) {
    detail::contract::check_set(key, params);
    co_return false;
  }
  asio::awaitable<std::optional<std::string>> get(std::string key, Deadline = {}) {
    detail::contract::check_get(key);
    co_return std::nullopt;
  }
  asio::awaitable<bool> erase(std::string key, Deadline = {}) {
    detail::contract::check_erase(key);
    co_return false;
  }
  asio::awaitable<bool> expire(std::string key, Duration ttl, Deadline = {}) {
    detail::contract::check_expire(key, ttl);
    co_return false;
  }
  asio::awaitable<std::vector<std::string>> index_members(std::string index_key, Deadline = {}) {
    detail::contract::check_index_members(index_key);
    co_return std::vector<std::string>{};
  }
  asio::awaitable<std::size_t> erase_index(std::string index_key, Deadline = {}) {
    detail::contract::check_erase_index(index_key);
    co_return 0;
  }
  asio::awaitable<void> push(std::string queue_key, std::string, Deadline = {}) {
    detail::contract::check_push(queue_key);
    co_return;
  }
  /// Waits min(wait, what the deadline leaves), then nullopt; errc::timeout when the
  /// deadline, not the wait, ended it.
  asio::awaitable<std::optional<std::string>> pop(std::string queue_key, Duration wait,
                                                  Deadline deadline = {}) {
    detail::contract::check_pop(queue_key, wait);
    const Duration limit = deadline.remaining(wait);
    const Duration sleep = std::min(wait, limit);
    if (sleep > Duration::zero()) {
      asio::steady_timer timer(co_await asio::this_coro::executor);
      detail::expire_after(timer, sleep);
      co_await timer.async_wait(asio::use_awaitable);
    }
    if (limit < wait) throw_error(errc::timeout, "corocache: the call's deadline passed");
    co_return std::nullopt;
  }
  asio::awaitable<bool> try_lock(std::string lock_key, std::string token, Duration ttl, Deadline = {}) {
    detail::contract::check_try_lock(lock_key, token, ttl);
    co_return true;
  }
  asio::awaitable<bool> unlock(std::string lock_key, std::string token, Deadline = {}) {
    detail::contract::check_unlock(lock_key, token);
    co_return true;
  }
  asio::awaitable<std::size_t> erase_prefix(std::string prefix, Deadline = {}) {
    detail::contract::check_erase_prefix(prefix);
    co_return 0;
  }
  asio::awaitable<std::size_t> erase_if(std::string prefix, EntryPredicate predicate, std::int64_t,
                                        Deadline = {}) {
    detail::contract::check_erase_if(prefix, predicate);
    co_return 0;
  }
  asio::awaitable<void> commit(std::vector<BatchOp> ops, Deadline = {}) {
    detail::contract::check_commit(ops);
    co_return;
  }
};

static_assert(Backend<NullBackend>);

}  // namespace corocache
