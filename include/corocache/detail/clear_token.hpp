#pragma once
// The first step of every func_cache clear (FuncCache::cache_clear, Batch::cache_clear):
// count it in this process, then write the clear token other processes compare
// (memo_clears.hpp; docs/func_cache_keys.md, "Clears and computations in flight").

#include <corocache/backend.hpp>
#include <corocache/detail/cache_core.hpp>
#include <corocache/detail/memo_clears.hpp>
#include <corocache/errors.hpp>
#include <corocache/lock.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <memory>
#include <string>
#include <utility>

namespace corocache::detail {

/// Bumps the generation of (scope `base`, function `name`), then writes a fresh token under
/// its epoch key. A store with no room for the token (a full memory backend in reject mode,
/// a Redis at maxmemory with noeviction: capacity_exceeded from both) does not stop the clear: the
/// erase that follows still runs, and this process stays fenced by the generation. Any
/// other failure is the clear's.
template <Backend B>
asio::awaitable<void> mark_clear(std::shared_ptr<CacheCore<B>> core, std::string base, std::string name,
                                 Deadline deadline) {
  core->memo_clears.bump(core->memo_clears.slot(base, name));  // before any of the clear's I/O
  std::string key = memo_epoch_key(base, name);
  std::string token = make_lock_token();  // random: unique across processes
  StoreParams params{memo_epoch_ttl, false, 0, {}};
  try {
    const bool written =
        co_await core->backend.set(std::move(key), std::move(token), std::move(params), deadline);
    static_cast<void>(written);  // false only on the disabled backend
  } catch (const boost::system::system_error& e) {
    if (e.code() != make_error_code(errc::capacity_exceeded)) throw;
  }
}

}  // namespace corocache::detail
