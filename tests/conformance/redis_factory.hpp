#pragma once
// The conformance suite's RedisBackend, on the deployment named by `--deployment`
// (support/deployment.hpp):
//   single    the test process's shared redis-server (tests/support/redis_server.hpp)
//   tls       rediss:// (peer verification on, trusting the test CA) to one TLS-only
//             redis-server per test process (tests/support/redis_tls.hpp)
//   sentinel  redis+sentinel:// to one RedisSentinelGroup per process (a primary, a replica
//             and 3 sentinels, tests/support/redis_sentinel.hpp)
//   cluster   redis+cluster:// to one RedisCluster per process (3 primaries + 1 replica each,
//             tests/support/redis_cluster.hpp). Every key of a World shares its scope's
//             hash tag, so each test's keys live in one slot and the cluster spreads the
//             tests' scopes over all primaries.
// Servers start on first use. Each World uses a unique key prefix, so backends made here
// never see another test's keys.

#include "conformance/backend_factory.hpp"
#include "support/deployment.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_sentinel.hpp"
#include "support/redis_server.hpp"
#include "support/redis_tls.hpp"

#include <corocache/redis/backend.hpp>
#include <corocache/redis/topology_options.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <string>
#include <utility>

namespace corocache::test {

inline RedisTlsServer& shared_redis_tls_server() {
  static RedisTlsServer server;
  return server;
}

inline RedisSentinelGroup& shared_redis_sentinel_group() {
  static RedisSentinelGroup group;
  return group;
}

inline RedisCluster& shared_redis_cluster() {
  static RedisCluster cluster;
  return cluster;
}

template <>
struct BackendFactory<RedisBackend> {
  static RedisBackend make(boost::asio::any_io_executor ex) {
    const std::string& name = deployment({"single", "tls", "sentinel", "cluster"});
    if (name == "tls") {
      const auto& server = shared_redis_tls_server();
      return RedisBackend(std::move(ex),
                          RedisOptions::from_url(server.url() + "?tls_ca_file=" + server.ca_file()));
    }
    if (name == "sentinel")
      return RedisBackend(std::move(ex), RedisSentinelOptions::from_url(shared_redis_sentinel_group().url()));
    if (name == "cluster")
      return RedisBackend(std::move(ex), RedisClusterOptions::from_url(shared_redis_cluster().url()));
    RedisOptions options;
    options.port = shared_redis_server().port();
    return RedisBackend(std::move(ex), std::move(options));
  }
};

}  // namespace corocache::test
