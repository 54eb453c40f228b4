#pragma once
// Memoized async functions.
//
//   auto price = cache.func_cache("price", [](std::string sku, int qty) -> asio::awaitable<double> {...});
//   double d = co_await price(scope, "sku-1", 3);   // runs the function at most once per args
//   co_await price.cache_clear(scope);              // forget this scope's results
//
// The function may take the calling scope as its first parameter (not part of the key:
// see operator()); Memoized<B, R(Params...)> names the type (a class member, say).
//
// A result is stored under `<scope>f:<name>:=<canonical JSON arguments>` when that text is
// at most 64 bytes, else under `<scope>f:<name>:#<sha256 hex of it>` (docs/func_cache_keys.md
// has the format, detail/memo_key.hpp builds it): the key is the same on every process, build
// and machine, so replicas sharing a Redis server share results. Results are stored as JSON
// and cached per scope (tenant + namespace).
//
// A backend whose lookups never wait may also offer `std::optional<std::string>
// get_now(std::string_view key)`, a get that completes in the call (same semantics; there is
// nothing to time out or cancel): a hit then costs one coroutine frame instead of two.

#include <corocache/backend.hpp>
#include <corocache/detail/clear_token.hpp>
#include <corocache/detail/json_codec.hpp>
#include <corocache/detail/keys.hpp>
#include <corocache/detail/memo_clears.hpp>
#include <corocache/detail/memo_key.hpp>
#include <corocache/detail/single_flight.hpp>
#include <corocache/detail/store_params.hpp>
#include <corocache/errors.hpp>
#include <corocache/options.hpp>
#include <corocache/scope.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <concepts>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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
/// A backend with a lookup that completes in the call (see the top of this header).
template <class B>
concept HasGetNow = requires(B& b, std::string_view key) {
  { b.get_now(key) } -> std::same_as<std::optional<std::string>>;
};

template <class Signature>
struct memoized_function;
template <class R, class... Params>
struct memoized_function<R(Params...)> {
  using type = std::function<asio::awaitable<R>(Params...)>;
};
}  // namespace detail

/// A memoized function, as Cache::func_cache returns it: `fn` is the function object it
/// calls. For a type to name (e.g. a class member), see Memoized below.
template <Backend B, class Fn>
class FuncCache {
 public:
  /// A memoized function of another function type (e.g. a lambda's) as this one, when Fn can
  /// be made from it (Memoized's std::function can be made from any matching function). The
  /// result has the same name, function and options, so it reads and writes the same cached
  /// results; concurrent first calls are joined per object. Implicit, so that a member
  /// declared as Memoized can be initialized with func_cache's result.
  template <class Other>
  requires(!std::same_as<Other, Fn> && std::constructible_from<Fn, const Other&>)
      FuncCache(const FuncCache<B, Other>& other)
      : state_(std::make_shared<State>(other.state_->name, Fn(other.state_->fn), other.state_->options)) {}

  /// Calls the function with `args`, or returns its cached result for the same arguments in
  /// this scope. Arguments are encoded (and rejected if they cannot be, e.g. invalid UTF-8)
  /// before any backend work. A cached result that no longer decodes as the result type
  /// (e.g. after a schema change) is recomputed and overwritten. A backend failure before
  /// the function runs (reading the cache) propagates as system_error; once the function
  /// has returned, its result is returned even if storing it fails (no room, a lost link:
  /// it is then not cached). Exceptions from the function propagate and cache nothing.
  /// Concurrent calls with the same arguments in one process share one run of the function
  /// (and its exception, if it throws).
  ///
  /// Deadlines and cancellation: the scope's with_timeout bounds the whole call, the
  /// computation included: past it the call throws system_error(errc::timeout). The
  /// function runs as a coroutine of its own on the first caller's executor; each caller,
  /// the first included, only waits for it, and may be cancelled (any cancellation type;
  /// it then throws system_error(asio::error::operation_aborted)). A caller that times
  /// out or is cancelled leaves alone: the computation goes on for the others, and it
  /// completes and stores its result even when every caller has left, so the next call
  /// finds it cached. The computation is never cancelled (a function that never completes
  /// keeps its arguments' flight busy: give it a deadline of its own). A result that is
  /// ready is returned even if the deadline passes in the same instant.
  ///
  /// The scope as a parameter: a function whose first parameter is the scope (`Scope<B>`,
  /// `const Scope<B>&` or `Scope<B>&`) gets the scope of the call that starts its
  /// computation, as that caller passed it (its with_timeout included), followed by the
  /// arguments. The scope is not part of the cached result's key beyond its tenant and
  /// namespace, which the key always holds: callers in one tenant and namespace share
  /// results whatever their with_timeout. A function that can be called both with and
  /// without the scope first (e.g. one taking `auto...`) is called without it.
  template <class... Args>
  auto operator()(const Scope<B>& scope, Args&&... args) const {
    constexpr bool with_scope = takes_scope<std::decay_t<Args>...>;
    static_assert(with_scope || std::is_invocable_v<const Fn&, std::decay_t<Args>...>,
                  "func_cache: the function cannot be called with these arguments (with or without the "
                  "scope first)");
    using Passed = std::conditional_t<with_scope, Scope<B>, NoScope>;
    using Awaitable = decltype(invoke_fn(std::declval<const Fn&>(), std::declval<Passed&>(),
                                         std::declval<std::decay_t<Args>>()...));
    using Result = typename detail::awaitable_value<Awaitable>::type;
    static_assert(!std::is_void_v<Result>, "func_cache needs a function that returns a value");
    const auto name = detail::memo_name(state_->name, args...);
    return call<Result>(state_, scope.core_, scope.key(detail::Kind::memo, name), scope.base_.size(),
                        scope.call_deadline(), Passed(scope),
                        std::decay_t<Args>(std::forward<Args>(args))...);
  }

  /// Forgets every result of this function in `scope`; other scopes keep theirs.
  /// Returns how many results went. A computation of this function in `scope` that is
  /// running when the clear is awaited does not cache its result, and a call after the
  /// clear does not join it (in another process: its result is erased again one round
  /// trip after it was stored; docs/func_cache_keys.md).
  asio::awaitable<std::size_t> cache_clear(const Scope<B>& scope) const {
    return clear(scope.core_, scope.base_, state_->name, scope.call_deadline());
  }

  /// The name given to Cache::func_cache.
  const std::string& name() const noexcept { return state_->name; }

 private:
  template <Backend>
  friend class Cache;
  template <Backend, class>
  friend class FuncCache;

  /// Stands in for the scope when the function does not take it: nothing is copied.
  struct NoScope {
    explicit NoScope(const Scope<B>&) noexcept {}
  };

  /// True when the function takes the scope first (and cannot be called without it).
  template <class... A>
  static constexpr bool takes_scope =
      std::is_invocable_v<const Fn&, Scope<B>&, A...> && !std::is_invocable_v<const Fn&, A...>;

  template <class... A>
  static auto invoke_fn(const Fn& fn, Scope<B>& scope, A&&... args)
      -> std::invoke_result_t<const Fn&, Scope<B>&, A...> {
    return std::invoke(fn, scope, std::forward<A>(args)...);
  }
  template <class... A>
  static auto invoke_fn(const Fn& fn, NoScope&, A&&... args) -> std::invoke_result_t<const Fn&, A...> {
    return std::invoke(fn, std::forward<A>(args)...);
  }

  struct State {
    State(std::string n, Fn f, FuncCacheOptions o) : name(std::move(n)), fn(std::move(f)), options(o) {}
    const std::string name;
    const Fn fn;
    const FuncCacheOptions options;
    detail::SingleFlight flights;  // in-process joining of concurrent misses
  };

  FuncCache(std::string name, Fn fn, FuncCacheOptions options)
      : state_(std::make_shared<State>(std::move(name), std::move(fn), options)) {}

  static asio::awaitable<std::size_t> clear(std::shared_ptr<detail::CacheCore<B>> core, std::string base,
                                            std::string name, Deadline deadline) {
    co_await detail::mark_clear(core, base, name, deadline);
    std::string prefix = detail::memo_prefix(base, name);
    co_return co_await core->backend.erase_prefix(std::move(prefix), deadline);
  }

  /// `key` starts with the scope's base, `base_size` bytes long.
  template <class Result, class Passed, class... Args>
  static asio::awaitable<Result> call(std::shared_ptr<State> state,
                                      std::shared_ptr<detail::CacheCore<B>> core, std::string key,
                                      std::size_t base_size, Deadline deadline, Passed scope, Args... args) {
    std::optional<Result> result;
    if constexpr (detail::HasGetNow<B>) {
      const auto cached = core->backend.get_now(key);  // no frame of the backend's, no key copy
      if (cached) result = try_decode<Result>(*cached);
    } else {
      const auto cached = co_await core->backend.get(key, deadline);
      if (cached) result = try_decode<Result>(*cached);
    }
    if (!result) {
      // Concurrent misses of the same key in this process share one computation, which
      // runs as a coroutine of its own; every caller only waits for it, within its deadline.
      // A computation that started before a clear is not joined (memo_clears.hpp).
      const auto executor = co_await asio::this_coro::executor;
      const std::size_t slot =
          core->memo_clears.slot(std::string_view(key).substr(0, base_size), state->name);
      const auto generation = core->memo_clears.current(slot);
      auto joined = detail::SingleFlight::join(std::shared_ptr<detail::SingleFlight>(state, &state->flights),
                                               key, generation);
      if (joined.run) {
        Fence fence{detail::memo_epoch_key(std::string_view(key).substr(0, base_size), state->name), slot,
                    generation};
        asio::co_spawn(executor,
                       compute<Result>(state, core, key, std::move(fence), std::move(*joined.run),
                                       std::move(scope), std::move(args)...),
                       asio::detached);
      }
      const std::string encoded = co_await joined.flight->async_wait(executor, deadline, asio::use_awaitable);
      result.emplace(detail::decode_json<Result>(encoded));
    }
    co_return std::move(*result);
  }

  /// What keeps a computation from caching a result computed before a clear.
  struct Fence {
    std::string epoch_key;  // the token a clear writes (other processes' clears)
    std::size_t slot = 0;   // this process's clears
    detail::MemoClears::Generation generation = 0;
  };

  /// The shared computation: runs the function and stores its result, then publishes the
  /// outcome to the callers still waiting. Not bounded by any caller's deadline and never
  /// cancelled by them: it completes (and caches its result) even if every caller left.
  /// A clear that overlapped it keeps its result out of the cache (Fence). Its own backend
  /// calls use the backend's default deadline.
  template <class Result, class Passed, class... Args>
  static asio::awaitable<void> compute(std::shared_ptr<State> state,
                                       std::shared_ptr<detail::CacheCore<B>> core, std::string key,
                                       Fence fence, detail::SingleFlight::Run run, Passed scope,
                                       Args... args) {
    try {
      // Read before the function runs: a clear from now on changes it.
      const std::optional<std::string> epoch = co_await core->backend.get(fence.epoch_key, Deadline());
      // A computation that finished between the caller's miss and join() has stored its result.
      auto stored = co_await core->backend.get(key, Deadline());
      std::optional<Result> ready;
      if (stored) ready = try_decode<Result>(*stored);
      if (ready) {
        run.finish(nullptr, std::move(*stored));
        co_return;
      }
      Result result = co_await invoke_fn(state->fn, scope, std::move(args)...);
      std::string encoded = detail::encode_json(result);
      if (core->memo_clears.current(fence.slot) != fence.generation) {
        run.finish(nullptr, std::move(encoded));  // cleared here meanwhile: not cached
        co_return;
      }
      StoreParams params{state->options.expire, false, 0, {}};
      bool written = false;  // or may have been: then a clear meanwhile must take it out
      try {
        written = co_await core->backend.set(key, encoded, std::move(params), Deadline());
      } catch (const boost::system::system_error& e) {
        // No room (capacity_exceeded, a Redis OOM), or the link failed: the function did
        // succeed, so its callers get the result, not cached. A write whose reply was lost
        // may have landed: the check for a clear below still runs for it.
        written = e.code() == errc::timeout || e.code() == errc::connection_lost;
      } catch (const invalid_backend_argument&) {
        // A result too large for the backend to store: the same.
      }
      run.finish(nullptr, std::move(encoded));
      // Cleared by another process meanwhile: take the result back out.
      const std::optional<std::string> epoch_now = co_await core->backend.get(fence.epoch_key, Deadline());
      if (written && epoch_now != epoch) {
        const bool erased = co_await core->backend.erase(std::move(key), Deadline());
        static_cast<void>(erased);
      }
    } catch (...) {
      run.finish(std::current_exception(), {});  // nothing once published
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

/// The type of a memoized function returning asio::awaitable<R> from `Params...`, to name
/// where a lambda's type cannot be named (a class member, a function parameter):
///
///   corocache::Memoized<corocache::MemoryBackend, double(std::string, int)> price =
///       cache.func_cache("price", [](std::string sku, int qty) -> asio::awaitable<double> {...});
///
/// Params may start with the scope (`const corocache::Scope<B>&`), as the function's do.
/// It calls the function through a std::function (one indirect call per computation).
template <Backend B, class Signature>
using Memoized = FuncCache<B, typename detail::memoized_function<Signature>::type>;

}  // namespace corocache
