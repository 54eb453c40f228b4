#pragma once
// Lets make_backend / backend_from_env (any_backend.hpp) build RedisBackends: including this
// header anywhere in a program registers the Redis factory before main() runs. It needs
// hiredis (target corocache::redis); any_backend.hpp alone does not, so a memory-only
// program never links it. Include it in the file that calls make_backend: a file of a
// static library that nothing else references may be dropped by the linker, and its
// registration with it. Code that runs before main() can call register_redis_backend()
// itself first.

#include <corocache/any_backend.hpp>
#include <corocache/redis/backend.hpp>
#include <corocache/redis/options.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <atomic>
#include <utility>

namespace corocache {

namespace detail::any {
inline AnyBackend make_redis(asio::any_io_executor ex, RedisOptions options) {
  return AnyBackend(RedisBackend(std::move(ex), std::move(options)));
}
inline AnyBackend make_redis_sentinel(asio::any_io_executor ex, RedisSentinelOptions options) {
  return AnyBackend(RedisBackend(std::move(ex), std::move(options)));
}
inline AnyBackend make_redis_cluster(asio::any_io_executor ex, RedisClusterOptions options) {
  return AnyBackend(RedisBackend(std::move(ex), std::move(options)));
}
}  // namespace detail::any

/// Makes redis://, unix://, redis+sentinel:// and redis+cluster:// URLs work in make_backend. Idempotent;
/// runs automatically.
inline bool register_redis_backend() noexcept {
  detail::any::redis_maker().store(&detail::any::make_redis, std::memory_order_release);
  detail::any::redis_sentinel_maker().store(&detail::any::make_redis_sentinel, std::memory_order_release);
  detail::any::redis_cluster_maker().store(&detail::any::make_redis_cluster, std::memory_order_release);
  return true;
}

namespace detail::any {
inline const bool redis_registered = register_redis_backend();
}  // namespace detail::any

}  // namespace corocache
