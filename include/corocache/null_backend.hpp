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
// - func_cache therefore runs the function on every call.

#include <corocache/backend.hpp>
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
  asio::awaitable<bool> set(std::string, std::string, StoreParams, Deadline = {}) { co_return false; }
  asio::awaitable<std::optional<std::string>> get(std::string, Deadline = {}) { co_return std::nullopt; }
  asio::awaitable<bool> erase(std::string, Deadline = {}) { co_return false; }
  asio::awaitable<bool> expire(std::string, Duration, Deadline = {}) { co_return false; }
  asio::awaitable<std::vector<std::string>> index_members(std::string, Deadline = {}) {
    co_return std::vector<std::string>{};
  }
  asio::awaitable<std::size_t> erase_index(std::string, Deadline = {}) { co_return 0; }
  asio::awaitable<void> push(std::string, std::string, Deadline = {}) { co_return; }
  /// Waits min(wait, what the deadline leaves), then nullopt; errc::timeout when the
  /// deadline, not the wait, ended it.
  asio::awaitable<std::optional<std::string>> pop(std::string, Duration wait, Deadline deadline = {}) {
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
  asio::awaitable<bool> try_lock(std::string, std::string, Duration, Deadline = {}) { co_return true; }
  asio::awaitable<bool> unlock(std::string, std::string, Deadline = {}) { co_return true; }
  asio::awaitable<std::size_t> erase_prefix(std::string, Deadline = {}) { co_return 0; }
  asio::awaitable<std::size_t> erase_if(std::string, EntryPredicate, std::int64_t, Deadline = {}) {
    co_return 0;
  }
  asio::awaitable<void> commit(std::vector<BatchOp>, Deadline = {}) { co_return; }
};

static_assert(Backend<NullBackend>);

}  // namespace corocache
