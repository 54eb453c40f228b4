#pragma once
// Cache<Backend>: the facade. Validates and scopes names, builds keys, encodes values and
// forwards every operation to the backend chosen at compile time.
//
//   corocache::Cache<corocache::MemoryBackend> cache{std::move(backend), {.prefix = "myapp"}};
//   auto users = cache.tenant("acme").ns("users");
//
// Copies of a Cache share one backend. Every key starts with `<prefix>:`, so several
// applications (or caches) can share one Redis database without touching each other.

#include <corocache/backend.hpp>
#include <corocache/detail/cache_core.hpp>
#include <corocache/detail/keys.hpp>
#include <corocache/detail/store_params.hpp>
#include <corocache/func_cache.hpp>
#include <corocache/options.hpp>
#include <corocache/scope.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace corocache {

template <Backend B>
class Cache {
 public:
  /// Takes ownership of `backend`. Throws invalid_name for a bad options.prefix.
  explicit Cache(B backend, CacheOptions options = {})
      : core_(std::make_shared<detail::CacheCore<B>>(std::move(backend), validated(std::move(options)))) {}

  /// The scope of tenant `name`, in its default namespace. Throws invalid_name for a bad name.
  Scope<B> tenant(std::string_view name) const {
    detail::validate_segment("tenant", name);
    return Scope<B>(core_, std::string(name), std::string(Scope<B>::default_namespace), Duration::zero());
  }

  /// The scope of the master tenant, shared by all tenants (and isolated from each of them).
  Scope<B> global() const {
    return Scope<B>(core_, std::string(detail::global_tenant), std::string(Scope<B>::default_namespace),
                    Duration::zero());
  }

  /// Memoizes the async function `fn` (returning asio::awaitable<R>; its first parameter may
  /// be the scope) under `name`; see func_cache.hpp. Throws invalid_name for a bad name,
  /// std::invalid_argument for a bad expiry. Memoized<B, R(Params...)> names the result's type.
  template <class Fn>
  FuncCache<B, std::decay_t<Fn>> func_cache(std::string_view name, Fn&& fn,
                                            FuncCacheOptions options = {}) const {
    detail::validate_segment("func_cache name", name);
    detail::validate_expiry("func_cache expire", options.expire);
    return FuncCache<B, std::decay_t<Fn>>(std::string(name), std::forward<Fn>(fn), options);
  }

  /// Removes every key under this cache's prefix, in every tenant, and nothing else (other
  /// prefixes and other applications' keys in the same database stay).
  asio::awaitable<void> flush_all() const {
    return discard(core_, detail::cache_base(core_->options.prefix));
  }

  /// Closes the backend (its close(); a backend without one has nothing to close), so that
  /// an io_context with nothing else to do returns from run(): the memory backend stops its
  /// sweep and stays usable; the Redis backend fails pending requests with errc::shut_down
  /// and stops reconnecting (later calls fail with it too). Every copy of the cache and its
  /// scopes share the backend, so this closes it for all of them. Idempotent.
  void close() noexcept {
    if constexpr (requires(B & b) { b.close(); }) core_->backend.close();
  }

  /// The backend, e.g. for its statistics.
  B& backend() noexcept { return core_->backend; }
  const B& backend() const noexcept { return core_->backend; }
  const CacheOptions& options() const noexcept { return core_->options; }

 private:
  static CacheOptions validated(CacheOptions options) {
    detail::validate_segment("prefix", options.prefix);
    return options;
  }
  static asio::awaitable<void> discard(std::shared_ptr<detail::CacheCore<B>> core, std::string prefix) {
    co_await core->backend.erase_prefix(std::move(prefix), Deadline());
  }

  std::shared_ptr<detail::CacheCore<B>> core_;
};

}  // namespace corocache
