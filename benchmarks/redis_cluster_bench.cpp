// Redis Cluster against a single server: GET and SET of 16-byte values with N = 1, 16 and
// 256 requests in flight from one io_context thread, through the same Cache API, in the same
// run, alternating, best of R. The keys are spread over 64 tenants, so over the cluster's
// slots (a scope lives in one slot). One summary line per (op, N): "corocache" is the
// cluster, "baseline" the single server.
//
//   redis_cluster_bench [--ops COUNT] [--repeats R]
//
// Starts its own redis-server and its own 3-primary cluster without replicas (replication
// would cost the 2-core machine CPU the single server does not pay).

#include "redis_ab_harness.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"

#include <cstdio>
#include <exception>
#include <string>

int main(int argc, char** argv) try {
  namespace ab = corocache::bench::redis_ab;
  std::size_t total = corocache::bench::quick() ? 5'000 : 200'000;
  int repeats = corocache::bench::quick() ? 1 : 3;
  ab::parse_args(argc, argv, total, repeats);
  constexpr std::size_t tenants = 64;  // scopes, hence slots spread over the cluster
  corocache::test::RedisServer single;
  corocache::test::RedisCluster::Options co;
  co.replicas_per_primary = 0;
  corocache::test::RedisCluster cluster(co);

  corocache::RedisOptions single_options;
  single_options.port = single.port();
  single_options.request_timeout = std::chrono::seconds(10);
  auto cluster_options = corocache::RedisClusterOptions::from_url(cluster.url());
  cluster_options.request_timeout = single_options.request_timeout;
  ab::Bench single_bench(single_options, "clb", tenants), cluster_bench(cluster_options, "clb", tenants);

  std::printf(
      "redis_cluster_bench: single redis-server on %u, cluster of 3 primaries (%s), %zu tenants, "
      "%zu ops per run, best of %d\n",
      single.port(), cluster.url().c_str(), tenants, total, repeats);
  ab::compare(cluster_bench, single_bench, "redis Cluster", "single server", total, repeats,
              "redis_cluster_bench");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "redis_cluster_bench: %s\n", e.what());
  return 1;
}
