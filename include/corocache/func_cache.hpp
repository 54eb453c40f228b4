#pragma once
// Memoized async functions.
//
//   auto price = cache.func_cache("price", [](std::string sku, int qty) -> asio::awaitable<double> {...});
//   double d = co_await price(scope, "sku-1", 3);   // runs the function at most once per args
//   co_await price.cache_clear(scope);              // forget this scope's results
//
// A result is stored under `<scope>f:<name>:<sha256 of the canonical JSON arguments>`
// (detail/json_codec.hpp documents the encoding): the name is the same on every process,
// build and machine, so replicas sharing a Redis server share results. Arguments and the
// result go through nlohmann::json. Results are cached per scope (tenant + namespace).

#include <corocache/backend.hpp>
#include <corocache/detail/json_codec.hpp>
#include <corocache/detail/keys.hpp>
#include <corocache/detail/sha256.hpp>
#include <corocache/detail/store_params.hpp>
#include <corocache/options.hpp>
#include <corocache/scope.hpp>

#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

namespace corocache {

/// Options of Cache::func_cache.
struct FuncCacheOptions {
  /// How long a result stays cached; must be > 0. Default: 7 days.
  Duration expire = default_expire;
};

namespace detail {
template <class A>
struct awaitable_value;
template <class T, class E>
struct awaitable_value<asio::awaitable<T, E>> {
  using type = T;
};
}  // namespace detail

template <Backend B, class Fn>
class FuncCache {
 public:
  /// Calls the function with `args`, or returns its cached result for the same arguments in
  /// this scope. Arguments are encoded (and rejected if they cannot be, e.g. invalid UTF-8)
  /// before any backend work. A cached result that no longer decodes as the result type
  /// (e.g. after a schema change) is recomputed and overwritten. Backend failures propagate
  /// as system_error; exceptions from the function propagate and cache nothing.
  template <class... Args>
  auto operator()(const Scope<B>& scope, Args&&... args) const {
    using Awaitable = std::invoke_result_t<const Fn&, std::decay_t<Args>...>;
    using Result = typename detail::awaitable_value<Awaitable>::type;
    static_assert(!std::is_void_v<Result>, "func_cache needs a function that returns a value");
    std::string name = state_->name + ":" + detail::sha256_hex(detail::canonical_arguments(args...));
    return call<Result>(state_, scope.core_, scope.key(detail::Kind::memo, name),
                        std::decay_t<Args>(std::forward<Args>(args))...);
  }

  /// Forgets every result of this function in `scope`; other scopes keep theirs.
  /// Returns how many results went.
  asio::awaitable<std::size_t> cache_clear(const Scope<B>& scope) const {
    return scope.core_->backend.erase_prefix(scope.key(detail::Kind::memo, state_->name + ":"));
  }

  /// The name given to Cache::func_cache.
  const std::string& name() const noexcept { return state_->name; }

 private:
  template <Backend>
  friend class Cache;

  struct State {
    std::string name;
    Fn fn;
    FuncCacheOptions options;
  };

  FuncCache(std::string name, Fn fn, FuncCacheOptions options)
      : state_(std::make_shared<const State>(State{std::move(name), std::move(fn), options})) {}

  template <class Result, class... Args>
  static asio::awaitable<Result> call(std::shared_ptr<const State> state, std::shared_ptr<detail::CacheCore<B>> core,
                                      std::string key, Args... args) {
    auto cached = co_await core->backend.get(key);
    if (cached) {
      try {
        co_return detail::decode_json<Result>(*cached);
      } catch (const decode_error&) {
        // Stale encoding from an older build: fall through and recompute.
      }
    }
    Result result = co_await std::invoke(state->fn, std::move(args)...);
    StoreParams params{state->options.expire, false, 0, {}};
    co_await core->backend.set(std::move(key), detail::encode_json(result), std::move(params));
    co_return result;
  }

  std::shared_ptr<const State> state_;
};

}  // namespace corocache
