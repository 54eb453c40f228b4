#pragma once
// The conformance suite's RedisBackend through Redis Sentinel: one RedisSentinelGroup
// (primary + replica + 3 sentinels, tests/support/redis_sentinel.hpp) per test process,
// started on first use; every backend discovers the primary from redis+sentinel://.
#include "conformance/backend_factory.hpp"
#include "support/redis_sentinel.hpp"

#include <corocache/redis/backend.hpp>
#include <corocache/redis/topology_options.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <utility>

namespace corocache::test {

inline RedisSentinelGroup& shared_redis_sentinel_group() {
  static RedisSentinelGroup group;
  return group;
}

template <>
struct BackendFactory<RedisBackend> {
  static RedisBackend make(boost::asio::any_io_executor ex) {
    auto options = RedisSentinelOptions::from_url(shared_redis_sentinel_group().url());
    return RedisBackend(std::move(ex), std::move(options));
  }
};
}  // namespace corocache::test
