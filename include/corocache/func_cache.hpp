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
#include <corocache/detail/single_flight.hpp>
#include <corocache/detail/store_params.hpp>
#include <corocache/options.hpp>
#include <corocache/scope.hpp>

#include <functional>
#include <memory>
#include <optional>
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
  /// Concurrent calls with the same arguments in one process share one run of the function
  /// (and its exception, if it throws).
  template <class... Args>
  auto operator()(const Scope<B>& scope, Args&&... args) const {
    using Awaitable = std::invoke_result_t<const Fn&, std::decay_t<Args>...>;
    using Result = typename detail::awaitable_value<Awaitable>::type;
    static_assert(!std::is_void_v<Result>, "func_cache needs a function that returns a value");
    const auto name = detail::memo_name(state_->name, args...);
    return call<Result>(state_, scope.core_, scope.key(detail::Kind::memo, name), scope.call_deadline(),
                        std::decay_t<Args>(std::forward<Args>(args))...);
  }

  /// Forgets every result of this function in `scope`; other scopes keep theirs.
  /// Returns how many results went.
  asio::awaitable<std::size_t> cache_clear(const Scope<B>& scope) const {
    return scope.core_->backend.erase_prefix(scope.key(detail::Kind::memo, state_->name + ":"),
                                             scope.call_deadline());
  }

  /// The name given to Cache::func_cache.
  const std::string& name() const noexcept { return state_->name; }

 private:
  template <Backend>
  friend class Cache;

  struct State {
    State(std::string n, Fn f, FuncCacheOptions o) : name(std::move(n)), fn(std::move(f)), options(o) {}
    const std::string name;
    const Fn fn;
    const FuncCacheOptions options;
    detail::SingleFlight flights;  // in-process joining of concurrent misses
  };

  FuncCache(std::string name, Fn fn, FuncCacheOptions options)
      : state_(std::make_shared<State>(std::move(name), std::move(fn), options)) {}

  template <class Result, class... Args>
  static asio::awaitable<Result> call(std::shared_ptr<State> state,
                                      std::shared_ptr<detail::CacheCore<B>> core, std::string key,
                                      Deadline deadline, Args... args) {
    auto cached = co_await core->backend.get(key, deadline);
    if (cached) {
      auto decoded = try_decode<Result>(*cached);
      if (decoded) co_return std::move(*decoded);
    }
    // Concurrent misses of the same key in this process wait for one computation.
    auto joined = state->flights.join(key);
    if (joined.flight) {
      const std::string encoded = co_await joined.flight->wait();
      co_return detail::decode_json<Result>(encoded);
    }
    try {
      // A leader that finished between our miss and join() has stored its result.
      auto stored = co_await core->backend.get(key, deadline);
      if (stored) {
        auto decoded = try_decode<Result>(*stored);
        if (decoded) {
          joined.leader->finish(nullptr, std::move(*stored));
          co_return std::move(*decoded);
        }
      }
      Result result = co_await std::invoke(state->fn, std::move(args)...);
      std::string encoded = detail::encode_json(result);
      StoreParams params{state->options.expire, false, 0, {}};
      co_await core->backend.set(std::move(key), encoded, std::move(params), deadline);
      joined.leader->finish(nullptr, std::move(encoded));
      co_return result;
    } catch (...) {
      joined.leader->finish(std::current_exception(), {});
      throw;
    }
  }

  /// nullopt for a cached result that no longer decodes (e.g. written by an older build
  /// with another result type): the caller recomputes and overwrites it.
  template <class Result>
  static std::optional<Result> try_decode(const std::string& encoded) {
    try {
      return detail::decode_json<Result>(encoded);
    } catch (const decode_error&) {
      return std::nullopt;
    }
  }

  std::shared_ptr<State> state_;
};

}  // namespace corocache
