// AnyBackend: URL and environment selection (all checked before anything is built), erased
// operations over each backend, access to the concrete backend, and awaitables that survive
// a move of the AnyBackend.
#include "support/redis_server.hpp"
#include "support/run.hpp"

#include <corocache/any_backend.hpp>
#include <corocache/any_backend_redis.hpp>
#include <corocache/cache.hpp>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace any_backend_test {

using namespace corocache;
using namespace std::chrono_literals;

namespace {

/// The message of the std::invalid_argument `f` throws ("" if it throws nothing).
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return {};
}

/// Clears the variables AnyBackend reads for one scope and restores them after.
class EnvGuard {
 public:
  static constexpr const char* names[] = {"COROCACHE_BACKEND", "USE_REDIS", "REDIS_URL",  "REDIS_HOST",
                                          "REDIS_PORT",        "REDIS_DB",  "REDIS_USER", "REDIS_PASSWORD"};
  EnvGuard() {
    for (const char* n : names) {
      const char* v = std::getenv(n);
      saved_.push_back(v ? std::optional<std::string>(v) : std::nullopt);
      ::unsetenv(n);
    }
  }
  ~EnvGuard() {
    for (std::size_t i = 0; i < std::size(names); ++i) {
      if (saved_[i])
        ::setenv(names[i], saved_[i]->c_str(), 1);
      else
        ::unsetenv(names[i]);
    }
  }
  EnvGuard(const EnvGuard&) = delete;
  EnvGuard& operator=(const EnvGuard&) = delete;
  void set(const char* name, const char* value) { ::setenv(name, value, 1); }

 private:
  std::vector<std::optional<std::string>> saved_;
};

using Kind = BackendConfig::Kind;

}  // namespace

TEST_CASE("backend URLs name memory, none or redis", "[any][url]") {
  CHECK(BackendConfig::from_url("memory://").kind == Kind::memory);
  CHECK(BackendConfig::from_url("memory").kind == Kind::memory);
  CHECK(BackendConfig::from_url(" MEMORY:// ").kind == Kind::memory);
  CHECK(BackendConfig::from_url("none").kind == Kind::none);
  CHECK(BackendConfig::from_url("null://").kind == Kind::none);
  CHECK(BackendConfig::from_url("none://").kind == Kind::none);

  const auto redis = BackendConfig::from_url("redis://:pw@cache.example:6380/2");
  CHECK(redis.kind == Kind::redis);
  CHECK(redis.redis.host == "cache.example");
  CHECK(redis.redis.port == 6380);
  CHECK(redis.redis.db == 2);
  CHECK(redis.redis.password == "pw");
  const auto unix_socket = BackendConfig::from_url("unix:///run/redis.sock?db=3");
  CHECK(unix_socket.kind == Kind::redis);
  CHECK(unix_socket.redis.unix_socket == "/run/redis.sock");
  CHECK(unix_socket.redis.db == 3);
}

TEST_CASE("memory URL parameters set MemoryOptions", "[any][url]") {
  const auto c = BackendConfig::from_url(
      "memory://?max_entries=1000&max_bytes=1048576&when_full=reject&sweep_interval_ms=0&shards=4");
  CHECK(c.kind == Kind::memory);
  CHECK(c.memory.max_entries == 1000);
  CHECK(c.memory.max_bytes == 1048576);
  CHECK(c.memory.when_full == WhenFull::reject);
  CHECK(c.memory.sweep_interval == Duration::zero());
  CHECK(c.memory.shards == 4);
  const auto defaults = BackendConfig::from_url("memory://");
  CHECK(defaults.memory.max_entries == 0);
  CHECK(defaults.memory.when_full == WhenFull::evict);
  CHECK(defaults.memory.sweep_interval == std::chrono::seconds(1));
  CHECK(BackendConfig::from_url("memory?max_entries=5").memory.max_entries == 5);
  CHECK(BackendConfig::from_url("memory:///?when_full=evict").memory.when_full == WhenFull::evict);
}

TEST_CASE("bad backend URLs are rejected before anything is built", "[any][url]") {
  asio::io_context io;
  const auto ex = io.get_executor();
  CHECK_THAT(error_of([&] { make_backend(ex, "memcached://host"); }),
             Catch::Contains("unknown scheme 'memcached'"));
  CHECK_THAT(error_of([&] { make_backend(ex, ""); }), Catch::Contains("empty backend URL"));
  CHECK_THAT(error_of([&] { make_backend(ex, "memory://somehost"); }), Catch::Contains("no host or path"));
  CHECK_THAT(error_of([&] { make_backend(ex, "memory://?max_entries=lots"); }),
             Catch::Contains("max_entries"));
  CHECK_THAT(error_of([&] { make_backend(ex, "memory://?max_entries=-1"); }), Catch::Contains("max_entries"));
  CHECK_THAT(error_of([&] { make_backend(ex, "memory://?capacity=1"); }),
             Catch::Contains("unknown memory parameter"));
  CHECK_THAT(error_of([&] { make_backend(ex, "memory://?when_full=maybe"); }), Catch::Contains("when_full"));
  CHECK_THAT(error_of([&] { make_backend(ex, "memory://?shards"); }), Catch::Contains("without a value"));
  CHECK_THAT(error_of([&] { make_backend(ex, "none://host"); }), Catch::Contains("none takes no"));
  // rediss:// is TLS to one server (RedisOptions::from_url): a bad TLS parameter is named.
  CHECK(BackendConfig::from_url("rediss://:pw@host").redis.tls.enabled);
  CHECK_THAT(error_of([&] { make_backend(ex, "rediss://host?tls_verify=2"); }),
             Catch::Contains("tls_verify"));
  CHECK_THAT(error_of([&] { make_backend(ex, "redis?db=1"); }), Catch::Contains("redis://host"));
  // Nothing of a mangled URL that could be a secret is echoed.
  const auto bad_port = error_of([&] { make_backend(ex, "redis://:hunter2@host:99999"); });
  CHECK_THAT(bad_port, Catch::Contains("port"));
  CHECK_THAT(bad_port, !Catch::Contains("hunter2"));
  const auto odd = error_of([&] { make_backend(ex, "hunter2@host"); });
  CHECK_THAT(odd, Catch::Contains("unrecognized URL"));
  CHECK_THAT(odd, !Catch::Contains("hunter2"));
  // Nothing was posted to the executor: no sweep, no connection attempt.
  CHECK(io.poll() == 0);
}

TEST_CASE("the environment chooses the backend", "[any][env]") {
  EnvGuard env;
  CHECK(BackendConfig::from_env().kind == Kind::memory);  // nothing set

  env.set("USE_REDIS", "yes");
  env.set("REDIS_HOST", "redis.internal");
  env.set("REDIS_PORT", "6390");
  auto c = BackendConfig::from_env();
  CHECK(c.kind == Kind::redis);
  CHECK(c.redis.host == "redis.internal");
  CHECK(c.redis.port == 6390);

  env.set("REDIS_URL", "redis://other:7000/4");  // the URL wins over the parts
  c = BackendConfig::from_env();
  CHECK(c.kind == Kind::redis);
  CHECK(c.redis.host == "other");
  CHECK(c.redis.db == 4);

  env.set("COROCACHE_BACKEND", "memory://?max_entries=7");  // wins over USE_REDIS
  c = BackendConfig::from_env();
  CHECK(c.kind == Kind::memory);
  CHECK(c.memory.max_entries == 7);

  env.set("COROCACHE_BACKEND", "none");
  CHECK(BackendConfig::from_env().kind == Kind::none);

  env.set("COROCACHE_BACKEND", "redis");  // bare name: the server from REDIS_URL
  c = BackendConfig::from_env();
  CHECK(c.kind == Kind::redis);
  CHECK(c.redis.host == "other");

  env.set("COROCACHE_BACKEND", "bogus");
  CHECK_THAT(error_of([] { BackendConfig::from_env(); }), Catch::Contains("unknown scheme 'bogus'"));

  env.set("COROCACHE_BACKEND", "  ");  // blank: as if unset
  ::unsetenv("REDIS_URL");
  env.set("USE_REDIS", "0");
  CHECK(BackendConfig::from_env().kind == Kind::memory);
  env.set("USE_REDIS", "1");
  env.set("REDIS_PORT", "0");
  CHECK_THAT(error_of([] { BackendConfig::from_env(); }), Catch::Contains("REDIS_PORT"));
}

TEST_CASE("backend_from_env builds what the environment asks for", "[any][env]") {
  EnvGuard env;
  asio::io_context io;
  auto memory = backend_from_env(io.get_executor());
  CHECK(memory.target<MemoryBackend>() != nullptr);
  CHECK(memory.target<RedisBackend>() == nullptr);
  CHECK(memory.target_type() == typeid(MemoryBackend));
  env.set("COROCACHE_BACKEND", "null://");
  auto none = backend_from_env(io.get_executor());
  CHECK(none.target<NullBackend>() != nullptr);
  env.set("COROCACHE_BACKEND", "redis://127.0.0.1:1");  // built lazily: no connection yet
  auto redis = backend_from_env(io.get_executor());
  REQUIRE(redis.target<RedisBackend>() != nullptr);
  CHECK(redis.target<RedisBackend>()->options().port == 1);
  redis.close();
}

TEST_CASE("a program without any_backend_redis.hpp says how to get Redis", "[any][redis]") {
  auto& maker = detail::any::redis_maker();
  const auto saved = maker.exchange(nullptr);
  asio::io_context io;
  const auto message = error_of([&] { make_backend(io.get_executor(), "redis://127.0.0.1:6379"); });
  maker.store(saved);
  CHECK_THAT(message, Catch::Contains("corocache/any_backend_redis.hpp"));
  CHECK(register_redis_backend());
  CHECK(make_backend(io.get_executor(), "redis://127.0.0.1:1").target<RedisBackend>() != nullptr);
}

TEST_CASE("a Cache over AnyBackend works over memory and exposes the concrete backend", "[any]") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    Cache<AnyBackend> cache{make_backend(ex, "memory://?max_entries=100&sweep_interval_ms=0"),
                            {.prefix = "app"}};
    auto s = cache.tenant("acme");
    const bool stored = co_await s.set_key("k", "v");
    const auto read = co_await s.get_key("k");
    CHECK(stored);
    CHECK(read == std::optional<std::string>("v"));
    const MemoryBackend* memory = cache.backend().target<MemoryBackend>();
    REQUIRE(memory != nullptr);
    CHECK(memory->stats().entries == 1);
    CHECK(memory->stats().hits == 1);
    auto twice = cache.func_cache("twice", [](int x) -> asio::awaitable<int> { co_return 2 * x; });
    const int first = co_await twice(s, 21);
    const int again = co_await twice(s, 21);
    CHECK(first == 42);
    CHECK(again == 42);
    co_await cache.flush_all();
  });
}

TEST_CASE("caching switched off by URL behaves like NullBackend", "[any]") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    Cache<AnyBackend> cache{make_backend(ex, "none")};
    auto s = cache.tenant("acme");
    const bool stored = co_await s.set_key("k", "v");
    const auto read = co_await s.get_key("k");
    const auto lock = co_await s.attempt_distributed_lock("l", 1s);
    CHECK_FALSE(stored);
    CHECK_FALSE(read.has_value());
    CHECK(lock.has_value());
  });
}

TEST_CASE("an AnyBackend's awaitables stay valid when it is moved", "[any][lifetime]") {
  test::run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    AnyBackend original = make_backend(ex, "memory://?sweep_interval_ms=0");
    auto store = original.set("k", "v", StoreParams{1h, false, 0, {}});
    auto read = original.get("k");
    AnyBackend moved = std::move(original);
    AnyBackend assigned = make_backend(ex, "none");
    assigned = std::move(moved);
    const bool stored = co_await std::move(store);
    const auto value = co_await std::move(read);
    CHECK(stored);
    CHECK(value == std::optional<std::string>("v"));
    const auto again = co_await assigned.get("k");
    CHECK(again == std::optional<std::string>("v"));
    CHECK_THROWS_AS(original.get("k"), std::logic_error);  // NOLINT(bugprone-use-after-move)
    CHECK(original.target<MemoryBackend>() == nullptr);
  });
}

TEST_CASE("a Cache over AnyBackend works over Redis", "[any][redis]") {
  const auto url = "redis://127.0.0.1:" + std::to_string(test::shared_redis_server().port());
  test::run([url](asio::any_io_executor ex) -> asio::awaitable<void> {
    Cache<AnyBackend> cache{make_backend(ex, url), {.prefix = "anytest"}};
    REQUIRE(cache.backend().target<RedisBackend>() != nullptr);
    auto s = cache.tenant("acme");
    const bool stored = co_await s.set_key("k", "v");
    const auto read = co_await s.get_key("k");
    CHECK(stored);
    CHECK(read == std::optional<std::string>("v"));
    co_await cache.flush_all();
  });
}

TEST_CASE("redis+sentinel URLs name a RedisBackend through Sentinel", "[any][url][sentinel]") {
  const auto s = BackendConfig::from_url("Redis+Sentinel://:pw@10.0.0.1:26380,10.0.0.2/mymaster/3");
  CHECK(s.kind == Kind::redis_sentinel);
  CHECK(s.sentinel.sentinels.size() == 2);
  CHECK(s.sentinel.sentinels[1].port == 26379);
  CHECK(s.sentinel.master_name == "mymaster");
  CHECK(s.sentinel.db == 3);
  CHECK(s.sentinel.password == "pw");
  CHECK(BackendConfig::from_url("rediss+sentinel://10.0.0.1/m").sentinel.tls.enabled);
  CHECK_THROWS_AS(BackendConfig::from_url("redis+sentinel://10.0.0.1"), std::invalid_argument);  // no master
  auto& maker = detail::any::redis_sentinel_maker();
  const auto saved = maker.exchange(nullptr);
  asio::io_context io;
  const auto message = error_of([&] { make_backend(io.get_executor(), "redis+sentinel://127.0.0.1:1/m"); });
  maker.store(saved);
  CHECK_THAT(message, Catch::Contains("corocache/any_backend_redis.hpp"));
  auto backend = make_backend(io.get_executor(), "redis+sentinel://127.0.0.1:1/m");
  const auto* redis = backend.target<RedisBackend>();
  REQUIRE(redis != nullptr);
  CHECK(redis->options().sentinel != nullptr);
}

TEST_CASE("AnyBackend: redis+cluster:// selects a Redis Cluster backend, configured by RedisClusterOptions") {
  using Kind = BackendConfig::Kind;
  const auto config = BackendConfig::from_url("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2?max_redirects=3");
  CHECK(config.kind == Kind::redis_cluster);
  REQUIRE(config.redis_cluster.seeds.size() == 2);
  CHECK(config.redis_cluster.seeds[0] == RedisAddress{"10.0.0.1", 7000});
  CHECK(config.redis_cluster.seeds[1] == RedisAddress{"10.0.0.2", 6379});
  CHECK(config.redis_cluster.password == "pw");
  CHECK(config.redis_cluster.max_redirects == 3);
  CHECK(BackendConfig::from_url("rediss+cluster://10.0.0.1").redis_cluster.tls.enabled);
  CHECK(BackendConfig::from_url("REDIS+Cluster://10.0.0.1").kind == Kind::redis_cluster);
  // Built lazily: nothing connects before the first call.
  asio::io_context io;
  auto backend = make_backend(io.get_executor(), "redis+cluster://127.0.0.1:1");
  REQUIRE(backend.target<RedisBackend>() != nullptr);
  CHECK(backend.target<RedisBackend>()->options().port == 1);
}

}  // namespace any_backend_test
