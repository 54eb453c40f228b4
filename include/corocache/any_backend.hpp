#pragma once
// AnyBackend: a backend chosen at run time, so one build of an application can cache in
// memory, in Redis or not at all, as its configuration says:
//
//   auto backend = corocache::backend_from_env(io.get_executor());   // or make_backend(ex, url)
//   corocache::Cache<corocache::AnyBackend> cache{std::move(backend), {.prefix = "myapp"}};
//
// URLs (docs/any_backend.md has the full grammar):
//   memory://[?max_entries=N&max_bytes=N&when_full=evict|reject&sweep_interval_ms=N&shards=N]
//   redis://[[user]:password@]host[:port][/db]   unix:///path/to/socket   (RedisOptions::from_url)
//   rediss://...                                  (TLS to one server: the tls_* parameters)
//   redis+sentinel://s1[:p1],s2[:p2]/master[/db], rediss+sentinel://... (RedisSentinelOptions::from_url)
//   redis+cluster://h1[:p1],h2[:p2][?params], rediss+cluster://...   (RedisClusterOptions::from_url)
//   none, null://                                 (NullBackend: caching off)
//   memory, redis, none                           (bare names; bare redis reads RedisOptions::from_env)
//
// Redis needs hiredis, this header does not: a program that links only corocache::core
// can use memory:// and none. Include <corocache/any_backend_redis.hpp> (target
// corocache::redis) in the program, e.g. in the file that calls make_backend, and redis://
// and unix:// URLs work too; without it they fail with std::invalid_argument saying so.
// Every URL is parsed and validated before anything is constructed or connected.

#include <corocache/backend.hpp>
#include <corocache/detail/any_backend_model.hpp>
#include <corocache/memory/backend.hpp>
#include <corocache/null_backend.hpp>
#include <corocache/redis/options.hpp>
#include <corocache/redis/topology_options.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <atomic>
#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace corocache {

/// Any Backend, erased. Move-only; moving moves one pointer, and awaitables already made
/// stay valid (the concrete backend stays where it is, on the heap). A moved-from
/// AnyBackend may only be destroyed or assigned to; any other use throws std::logic_error.
/// Each operation is one virtual call that returns the concrete backend's own awaitable.
class AnyBackend {
 public:
  /// Takes ownership of `backend` (any type satisfying Backend).
  /// (The same_as test comes first: checking Backend<AnyBackend> itself must not recurse.)
  template <class B>
  requires(!std::same_as<std::remove_cvref_t<B>, AnyBackend> && Backend<B>) explicit AnyBackend(B backend)
      : impl_(std::make_unique<detail::any::Model<B>>(std::move(backend))) {}

  AnyBackend(AnyBackend&&) noexcept = default;
  AnyBackend& operator=(AnyBackend&&) noexcept = default;
  AnyBackend(const AnyBackend&) = delete;
  AnyBackend& operator=(const AnyBackend&) = delete;
  ~AnyBackend() = default;

  /// The concrete backend if it is a B, else nullptr; e.g. target<MemoryBackend>()->stats().
  template <class B>
  B* target() noexcept {
    return impl_ && impl_->type() == typeid(B) ? static_cast<B*>(impl_->target()) : nullptr;
  }
  template <class B>
  const B* target() const noexcept {
    return impl_ && impl_->type() == typeid(B) ? static_cast<const B*>(impl_->target()) : nullptr;
  }
  /// typeid of the concrete backend (typeid(void) when moved from).
  const std::type_info& target_type() const noexcept { return impl_ ? impl_->type() : typeid(void); }

  /// Calls the concrete backend's close() when it has one (RedisBackend: fails pending
  /// requests with errc::shut_down); otherwise does nothing.
  void close() noexcept {
    if (impl_) impl_->close();
  }

  // --- Backend concept (semantics: backend.hpp) ------------------------------------------
  asio::awaitable<bool> set(std::string key, std::string value, StoreParams params, Deadline deadline = {}) {
    return impl().set(std::move(key), std::move(value), std::move(params), deadline);
  }
  asio::awaitable<std::optional<std::string>> get(std::string key, Deadline deadline = {}) {
    return impl().get(std::move(key), deadline);
  }
  asio::awaitable<bool> erase(std::string key, Deadline deadline = {}) {
    return impl().erase(std::move(key), deadline);
  }
  asio::awaitable<bool> expire(std::string key, Duration ttl, Deadline deadline = {}) {
    return impl().expire(std::move(key), ttl, deadline);
  }
  asio::awaitable<std::vector<std::string>> index_members(std::string index_key, Deadline deadline = {}) {
    return impl().index_members(std::move(index_key), deadline);
  }
  asio::awaitable<std::size_t> erase_index(std::string index_key, Deadline deadline = {}) {
    return impl().erase_index(std::move(index_key), deadline);
  }
  asio::awaitable<void> push(std::string queue_key, std::string value, Deadline deadline = {}) {
    return impl().push(std::move(queue_key), std::move(value), deadline);
  }
  asio::awaitable<std::optional<std::string>> pop(std::string queue_key, Duration wait,
                                                  Deadline deadline = {}) {
    return impl().pop(std::move(queue_key), wait, deadline);
  }
  asio::awaitable<bool> try_lock(std::string lock_key, std::string token, Duration ttl,
                                 Deadline deadline = {}) {
    return impl().try_lock(std::move(lock_key), std::move(token), ttl, deadline);
  }
  asio::awaitable<bool> unlock(std::string lock_key, std::string token, Deadline deadline = {}) {
    return impl().unlock(std::move(lock_key), std::move(token), deadline);
  }
  asio::awaitable<std::size_t> erase_prefix(std::string prefix, Deadline deadline = {}) {
    return impl().erase_prefix(std::move(prefix), deadline);
  }
  asio::awaitable<std::size_t> erase_if(std::string prefix, EntryPredicate predicate, std::int64_t limit,
                                        Deadline deadline = {}) {
    return impl().erase_if(std::move(prefix), std::move(predicate), limit, deadline);
  }
  asio::awaitable<void> commit(std::vector<BatchOp> ops, Deadline deadline = {}) {
    return impl().commit(std::move(ops), deadline);
  }

 private:
  detail::any::Concept& impl() const {
    if (!impl_) throw std::logic_error("corocache: use of a moved-from AnyBackend");
    return *impl_;
  }

  std::unique_ptr<detail::any::Concept> impl_;
};

static_assert(Backend<AnyBackend>);

/// Which backend a URL or the environment asks for, parsed and validated, nothing built yet.
struct BackendConfig {
  enum class Kind { memory, redis, none, redis_sentinel, redis_cluster };
  Kind kind = Kind::memory;
  MemoryOptions memory;               ///< used when kind == memory
  RedisOptions redis;                 ///< used when kind == redis
  RedisSentinelOptions sentinel;      ///< used when kind == redis_sentinel
  RedisClusterOptions redis_cluster;  ///< used when kind == redis_cluster

  /// Parses a backend URL (see the top of any_backend.hpp). Throws std::invalid_argument
  /// for an unknown scheme, an unknown or malformed parameter, or a bad Redis URL; the
  /// message never contains a password.
  static BackendConfig from_url(std::string_view url);

  /// COROCACHE_BACKEND if set and non-empty (a URL or memory/redis/none); otherwise Redis
  /// when RedisOptions::enabled_in_env() (USE_REDIS true or REDIS_URL set), configured by
  /// RedisOptions::from_env() (REDIS_URL, else REDIS_HOST/PORT/DB/USER/PASSWORD); otherwise
  /// memory with default options. Throws std::invalid_argument as from_url.
  static BackendConfig from_env();
};

namespace detail::any {

using RedisMaker = AnyBackend (*)(asio::any_io_executor, RedisOptions);
using RedisSentinelMaker = AnyBackend (*)(asio::any_io_executor, RedisSentinelOptions);

/// Set by <corocache/any_backend_redis.hpp> when a program includes it.
inline std::atomic<RedisMaker>& redis_maker() noexcept {
  static std::atomic<RedisMaker> maker{nullptr};
  return maker;
}
inline std::atomic<RedisSentinelMaker>& redis_sentinel_maker() noexcept {
  static std::atomic<RedisSentinelMaker> maker{nullptr};
  return maker;
}

using RedisClusterMaker = AnyBackend (*)(asio::any_io_executor, RedisClusterOptions);

/// Set by <corocache/any_backend_redis.hpp> when a program includes it.
inline std::atomic<RedisClusterMaker>& redis_cluster_maker() noexcept {
  static std::atomic<RedisClusterMaker> maker{nullptr};
  return maker;
}

[[noreturn]] inline void fail(std::string_view what) {
  throw std::invalid_argument("corocache: backend URL: " + std::string(what));
}

inline std::string_view trim(std::string_view s) noexcept {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

inline std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

/// A scheme worth echoing in an error: short and made of URL-scheme characters only (a
/// mangled URL could otherwise put a password there).
inline bool printable_scheme(std::string_view s) noexcept {
  if (s.empty() || s.size() > 16) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.')) return false;
  return true;
}

template <class T>
T parse_unsigned(std::string_view name, std::string_view text) {
  T v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size())
    fail("memory parameter " + std::string(name) + " must be a non-negative whole number");
  return v;
}

inline void apply_memory_query(MemoryOptions& o, std::string_view query) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (param.empty()) continue;
    const auto eq = param.find('=');
    if (eq == std::string_view::npos) fail("memory parameter without a value (expected name=value)");
    const auto name = param.substr(0, eq);
    const auto value = param.substr(eq + 1);
    if (name == "max_entries") {
      o.max_entries = parse_unsigned<std::size_t>(name, value);
    } else if (name == "max_bytes") {
      o.max_bytes = parse_unsigned<std::size_t>(name, value);
    } else if (name == "shards") {
      o.shards = parse_unsigned<std::size_t>(name, value);
    } else if (name == "sweep_interval_ms") {
      o.sweep_interval = Duration(parse_unsigned<std::int64_t>(name, value));
    } else if (name == "when_full") {
      if (value == "evict")
        o.when_full = WhenFull::evict;
      else if (value == "reject")
        o.when_full = WhenFull::reject;
      else
        fail("memory parameter when_full must be evict or reject");
    } else {
      fail("unknown memory parameter (known: max_entries, max_bytes, when_full, sweep_interval_ms, shards)");
    }
  }
}

}  // namespace detail::any

inline BackendConfig BackendConfig::from_url(std::string_view url) {
  namespace a = detail::any;
  url = a::trim(url);
  std::string_view scheme_raw = url, rest;
  bool has_slashes = false;
  if (const auto sep = url.find("://"); sep != std::string_view::npos) {
    scheme_raw = url.substr(0, sep);
    rest = url.substr(sep + 3);
    has_slashes = true;
  } else if (const auto q = url.find('?'); q != std::string_view::npos) {
    scheme_raw = url.substr(0, q);
    rest = url.substr(q);
  }
  const std::string scheme = a::lower(scheme_raw);
  BackendConfig config;
  if (scheme == "memory") {
    config.kind = Kind::memory;
    if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
    if (!rest.empty() && rest.front() != '?') a::fail("memory:// takes no host or path, only ?parameters");
    if (!rest.empty()) a::apply_memory_query(config.memory, rest.substr(1));
    return config;
  }
  if (scheme == "none" || scheme == "null") {
    if (!rest.empty() && rest != "/") a::fail("none takes no host, path or parameters");
    config.kind = Kind::none;
    return config;
  }
  if (scheme == "redis+cluster" || scheme == "rediss+cluster") {
    config.kind = Kind::redis_cluster;
    if (!has_slashes) a::fail("a Cluster backend URL needs redis+cluster://host:port,...");
    config.redis_cluster = RedisClusterOptions::from_url(scheme + "://" + std::string(rest));
    config.redis_cluster.validate();
    return config;
  }
  if (scheme == "redis+sentinel" || scheme == "rediss+sentinel") {
    if (!has_slashes) a::fail("a Sentinel backend URL needs redis+sentinel://host:port,.../master_name");
    config.kind = Kind::redis_sentinel;
    config.sentinel = RedisSentinelOptions::from_url(scheme + "://" + std::string(rest));
    config.sentinel.validate();
    return config;
  }
  if (scheme == "redis" || scheme == "rediss" || scheme == "unix") {
    config.kind = Kind::redis;
    if (has_slashes)
      config.redis = RedisOptions::from_url(scheme + "://" + std::string(rest));
    else if (rest.empty() && scheme == "redis")  // bare "redis": the server from REDIS_URL / REDIS_HOST...
      config.redis = RedisOptions::from_env();
    else
      a::fail("a Redis backend URL needs redis://host or unix:///path");
    config.redis.validate();
    return config;
  }
  if (url.empty()) a::fail("empty backend URL (expected memory://, redis://..., unix://... or none)");
  a::fail(
      (a::printable_scheme(scheme) ? "unknown scheme '" + scheme + "'" : std::string("unrecognized URL")) +
      " (expected memory://, redis://..., unix://... or none)");
}

inline BackendConfig BackendConfig::from_env() {
  if (const char* spec = std::getenv("COROCACHE_BACKEND"); spec && !detail::any::trim(spec).empty())
    return from_url(spec);
  BackendConfig config;
  if (RedisOptions::enabled_in_env()) {
    config.kind = Kind::redis;
    config.redis = RedisOptions::from_env();
    config.redis.validate();
  }
  return config;
}

/// Builds the backend `config` describes on `ex`. Redis needs <corocache/any_backend_redis.hpp>
/// in the program (std::invalid_argument otherwise).
inline AnyBackend make_backend(asio::any_io_executor ex, const BackendConfig& config) {
  switch (config.kind) {
    case BackendConfig::Kind::none: return AnyBackend(NullBackend{});
    case BackendConfig::Kind::redis: {
      const auto maker = detail::any::redis_maker().load(std::memory_order_acquire);
      if (maker == nullptr)
        throw std::invalid_argument(
            "corocache: a Redis backend was asked for, but this program does not include "
            "<corocache/any_backend_redis.hpp> (link corocache::redis)");
      return maker(std::move(ex), config.redis);
    }
    case BackendConfig::Kind::redis_sentinel: {
      const auto maker = detail::any::redis_sentinel_maker().load(std::memory_order_acquire);
      if (maker == nullptr)
        throw std::invalid_argument(
            "corocache: a Redis Sentinel backend was asked for, but this program does not include "
            "<corocache/any_backend_redis.hpp> (link corocache::redis)");
      return maker(std::move(ex), config.sentinel);
    }
    case BackendConfig::Kind::redis_cluster: {
      const auto maker = detail::any::redis_cluster_maker().load(std::memory_order_acquire);
      if (maker == nullptr)
        throw std::invalid_argument(
            "corocache: a Redis Cluster backend was asked for, but this program does not include "
            "<corocache/any_backend_redis.hpp> (link corocache::redis)");
      return maker(std::move(ex), config.redis_cluster);
    }
    case BackendConfig::Kind::memory: break;
  }
  return AnyBackend(MemoryBackend(std::move(ex), config.memory));
}

/// make_backend(ex, BackendConfig::from_url(url)): one call from a URL to a backend.
inline AnyBackend make_backend(asio::any_io_executor ex, std::string_view url) {
  return make_backend(std::move(ex), BackendConfig::from_url(url));
}

/// make_backend(ex, BackendConfig::from_env()): the backend the environment asks for.
inline AnyBackend backend_from_env(asio::any_io_executor ex) {
  return make_backend(std::move(ex), BackendConfig::from_env());
}

}  // namespace corocache
