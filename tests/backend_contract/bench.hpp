#pragma once
// The backend-level conformance suite (docs/backend_contract.md): cases written once against
// the Backend concept, below the Cache facade, and run against each backend. The same
// sources build one executable per backend family, chosen by a compile definition:
//   COROCACHE_CONTRACT_MEMORY  MemoryBackend
//   COROCACHE_CONTRACT_NULL    NullBackend (argument cases only: it stores nothing)
//   COROCACHE_CONTRACT_REDIS   RedisBackend on the deployment named by --deployment (the test
//                              process's own redis-server, TLS, Sentinel or Cluster)
//   COROCACHE_CONTRACT_ANY     AnyBackend made from memory://, none and redis:// URLs
//
// A Flavour names a backend: `Backend`, `make(executor)`, `stores` (false for NullBackend,
// whose semantic cases are skipped) and `requests(backend)` (requests a Redis connection
// accepted: an argument the contract rejects must not cost one).

#include "support/run.hpp"

#include <corocache/any_backend.hpp>
#include <corocache/backend.hpp>
#include <corocache/detail/keys.hpp>
#include <corocache/errors.hpp>
#include <corocache/memory/backend.hpp>
#include <corocache/null_backend.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(COROCACHE_CONTRACT_REDIS)
#include "conformance/redis_factory.hpp"
#endif
#if defined(COROCACHE_CONTRACT_REDIS) || defined(COROCACHE_CONTRACT_ANY)
#include "support/redis_server.hpp"

#include <corocache/any_backend_redis.hpp>
#include <corocache/redis/backend.hpp>
#endif

namespace corocache::test {

using namespace std::chrono_literals;

struct MemoryFlavour {
  using Backend = MemoryBackend;
  static constexpr bool stores = true;
  static Backend make(asio::any_io_executor ex) { return MemoryBackend(std::move(ex)); }
  static std::uint64_t requests(const Backend&) { return 0; }
};

struct NullFlavour {
  using Backend = NullBackend;
  static constexpr bool stores = false;
  static Backend make(asio::any_io_executor) { return NullBackend{}; }
  static std::uint64_t requests(const Backend&) { return 0; }
};

struct AnyMemoryFlavour {
  using Backend = AnyBackend;
  static constexpr bool stores = true;
  static Backend make(asio::any_io_executor ex) { return make_backend(std::move(ex), "memory://"); }
  static std::uint64_t requests(const Backend&) { return 0; }
};

struct AnyNullFlavour {
  using Backend = AnyBackend;
  static constexpr bool stores = false;
  static Backend make(asio::any_io_executor ex) { return make_backend(std::move(ex), "none"); }
  static std::uint64_t requests(const Backend&) { return 0; }
};

#if defined(COROCACHE_CONTRACT_REDIS)
/// RedisBackend on the deployment named by `--deployment` (single, tls, sentinel, cluster):
/// the same factory as the facade-level conformance suite (conformance/redis_factory.hpp).
struct RedisFlavour {
  using Backend = RedisBackend;
  static constexpr bool stores = true;
  static Backend make(asio::any_io_executor ex) { return BackendFactory<RedisBackend>::make(std::move(ex)); }
  static std::uint64_t requests(const Backend& b) { return b.stats().connection.requests; }
};
#endif

#if defined(COROCACHE_CONTRACT_REDIS) || defined(COROCACHE_CONTRACT_ANY)

struct AnyRedisFlavour {
  using Backend = AnyBackend;
  static constexpr bool stores = true;
  static Backend make(asio::any_io_executor ex) {
    return make_backend(std::move(ex), "redis://127.0.0.1:" + std::to_string(shared_redis_server().port()));
  }
  static std::uint64_t requests(const Backend& b) {
    return b.target<RedisBackend>()->stats().connection.requests;
  }
};
#endif

/// A key scope no other test (or earlier run against the same server) uses.
inline std::string unique_contract_prefix() {
  static std::mt19937_64 engine{std::random_device{}()};
  return "bc" + std::to_string(engine());
}

/// Keys in the facade's layout `<prefix>:{<tenant>:<ns>}:<kind>:<name>` (RedisBackend needs
/// it for queue and lock keys), under one prefix unique to the test.
struct Keys {
  std::string prefix = unique_contract_prefix();
  std::string base = detail::cache_base(prefix);  ///< every key of the test starts with it

  std::string scope(std::string_view ns = "n") const { return detail::scope_base(prefix, "t", ns); }
  std::string value(std::string_view name, std::string_view ns = "n") const {
    return detail::make_key(scope(ns), detail::Kind::value, name);
  }
  std::string index(std::string_view name, std::string_view ns = "n") const {
    return detail::make_key(scope(ns), detail::Kind::index, name);
  }
  std::string queue(std::string_view name, std::string_view ns = "n") const {
    return detail::make_key(scope(ns), detail::Kind::queue, name);
  }
  std::string lock(std::string_view name, std::string_view ns = "n") const {
    return detail::make_key(scope(ns), detail::Kind::lock, name);
  }
};

/// StoreParams without braces at the call site (g++ 12: no aggregates near a co_await).
inline StoreParams ttl(Duration d) {
  StoreParams p;
  p.ttl = d;
  return p;
}
inline StoreParams nx(Duration d) {
  StoreParams p = ttl(d);
  p.nx = true;
  return p;
}
inline StoreParams reads(std::uint32_t n, Duration d = 60s) {
  StoreParams p = ttl(d);
  p.max_reads = n;
  return p;
}
inline StoreParams indexed(std::vector<std::string> index_keys, Duration d = 60s) {
  StoreParams p = ttl(d);
  p.index_keys = std::move(index_keys);
  return p;
}

/// Always true: a predicate for erase_if.
inline EntryPredicate any_entry() {
  return [](std::string_view, std::string_view) { return true; };
}

/// One io_context, one backend of flavour F and a key scope of its own.
template <class F>
struct Bench {
  asio::io_context io{1};
  typename F::Backend backend;
  Keys keys;

  Bench() : backend(F::make(io.get_executor())) {}
  ~Bench() {
    // Leave a shared server clean; failures here must not mask the test's own result.
    try {
      if constexpr (F::stores) sync(backend.erase_prefix(keys.base));
    } catch (...) {
    }
  }

  /// Runs `op` on the io_context until it completes; returns its result or rethrows its
  /// exception. Fails the test if it takes longer than `limit`.
  template <class T>
  T sync(asio::awaitable<T> op, std::chrono::milliseconds limit = 20s) {
    struct Outcome {
      std::optional<std::conditional_t<std::is_void_v<T>, int, T>> value;
      std::exception_ptr error;
      bool done = false;
    };
    auto outcome = std::make_shared<Outcome>();
    if constexpr (std::is_void_v<T>) {
      asio::co_spawn(io, std::move(op), [outcome](std::exception_ptr e) {
        outcome->error = e;
        outcome->done = true;
      });
    } else {
      asio::co_spawn(io, std::move(op), [outcome](std::exception_ptr e, T value) {
        outcome->error = e;
        if (!e) outcome->value.emplace(std::move(value));
        outcome->done = true;
      });
    }
    io.restart();
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!outcome->done && std::chrono::steady_clock::now() < deadline)
      io.run_one_for(deadline - std::chrono::steady_clock::now());
    if (!outcome->done) FAIL("operation did not complete within " << limit.count() << " ms");
    if (outcome->error) std::rethrow_exception(outcome->error);
    if constexpr (!std::is_void_v<T>) return std::move(*outcome->value);
  }

  /// What awaiting `op` did: the message of the invalid_backend_argument it threw,
  /// "accepted" when it completed, or "other exception: ..." for any other error.
  template <class T>
  std::string rejection(asio::awaitable<T> op) {
    try {
      sync(std::move(op));
      return "accepted";
    } catch (const invalid_backend_argument& e) {
      return e.what();
    } catch (const std::exception& e) {
      return std::string("other exception: ") + e.what();
    }
  }

  /// Polls `done` every 10 ms (the io_context keeps running) until it holds or `limit`
  /// passes; returns whether it held.
  bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      sleep(10ms);
    }
    return true;
  }

  void sleep(std::chrono::milliseconds d) {
    sync([](asio::any_io_executor ex, std::chrono::milliseconds d) -> asio::awaitable<void> {
      asio::steady_timer timer(ex, d);
      co_await timer.async_wait(asio::use_awaitable);
    }(io.get_executor(), d));
  }

  std::uint64_t requests() const { return F::requests(backend); }
};

}  // namespace corocache::test

// The flavours each executable runs: CONTRACT_FLAVOURS for the argument cases,
// STORING_FLAVOURS (not NullBackend) for the semantic ones.
#if defined(COROCACHE_CONTRACT_MEMORY)
#define CONTRACT_FLAVOURS corocache::test::MemoryFlavour
#define STORING_FLAVOURS corocache::test::MemoryFlavour
#elif defined(COROCACHE_CONTRACT_NULL)
#define CONTRACT_FLAVOURS corocache::test::NullFlavour
#elif defined(COROCACHE_CONTRACT_REDIS)
#define CONTRACT_FLAVOURS corocache::test::RedisFlavour
#define STORING_FLAVOURS corocache::test::RedisFlavour
#elif defined(COROCACHE_CONTRACT_ANY)
#define CONTRACT_FLAVOURS \
  corocache::test::AnyMemoryFlavour, corocache::test::AnyNullFlavour, corocache::test::AnyRedisFlavour
#define STORING_FLAVOURS corocache::test::AnyMemoryFlavour, corocache::test::AnyRedisFlavour
#else
#error "define COROCACHE_CONTRACT_MEMORY, _NULL, _REDIS or _ANY"
#endif
