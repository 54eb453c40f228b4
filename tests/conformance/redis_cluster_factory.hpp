#pragma once
// The conformance suite's RedisBackend on a Redis Cluster: 3 primaries + 1 replica each
// (tests/support/redis_cluster.hpp), one cluster per test process, started on first use
// (~2 s). Every key of a World shares its scope's hash tag, so each test's keys live in one
// slot; the cluster spreads the tests' scopes over all primaries.
#include "conformance/backend_factory.hpp"
#include "support/redis_cluster.hpp"

#include <corocache/redis/backend.hpp>
#include <corocache/redis/topology_options.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <utility>

namespace corocache::test {

inline RedisCluster& shared_redis_cluster() {
  static RedisCluster cluster;
  return cluster;
}

template <>
struct BackendFactory<RedisBackend> {
  static RedisBackend make(boost::asio::any_io_executor ex) {
    return RedisBackend(std::move(ex), RedisClusterOptions::from_url(shared_redis_cluster().url()));
  }
};
}  // namespace corocache::test
