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

#include "bench_common.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"

#include <corocache/cache.hpp>
#include <corocache/redis/backend.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
using corocache::bench::Clock;
using corocache::bench::seconds_since;

const std::string value(16, 'v');
enum class Op { get, set };
const char* op_name(Op op) { return op == Op::get ? "GET" : "SET"; }
constexpr std::size_t tenants = 64;

struct Run {
  const std::vector<std::string>* names = nullptr;
  Op op = Op::get;
  std::size_t total = 0;
  std::size_t issued = 0;
  std::size_t failures = 0;
  std::size_t workers_left = 0;
};

using Scope = corocache::Scope<corocache::RedisBackend>;

asio::awaitable<void> worker(std::vector<Scope>& scopes, Run& run) {
  while (run.issued < run.total) {
    const std::size_t i = run.issued++;
    const std::string& name = (*run.names)[i % run.names->size()];
    const Scope& scope = scopes[i % scopes.size()];
    if (run.op == Op::get) {
      auto v = co_await scope.get_key(name);
      if (!v || v->size() != value.size()) ++run.failures;
    } else {
      const bool stored = co_await scope.set_key(name, value);  // not inside a condition (g++ 12)
      if (!stored) ++run.failures;
    }
  }
}

struct Bench {
  asio::io_context io{1};
  corocache::Cache<corocache::RedisBackend> cache;
  std::vector<Scope> scopes;

  /// RedisOptions (one server) or RedisClusterOptions.
  template <class Options>
  explicit Bench(Options options)
      : cache(corocache::RedisBackend(io.get_executor(), std::move(options)),
              corocache::CacheOptions{.prefix = "clb"}) {
    for (std::size_t t = 0; t < tenants; ++t)
      scopes.push_back(cache.tenant("t" + std::to_string(t)).ns("kv"));
  }

  void drive(Run& run, std::size_t in_flight) {
    run.workers_left = in_flight;
    for (std::size_t i = 0; i < in_flight; ++i)
      asio::co_spawn(io, worker(scopes, run), [&](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
        if (--run.workers_left == 0) io.stop();
      });
    io.restart();
    io.run();
  }

  double measure(const std::vector<std::string>& names, Op op, std::size_t in_flight, std::size_t total) {
    Run warmup{&names, op, std::min<std::size_t>(total, 2000)};
    drive(warmup, in_flight);
    Run run{&names, op, total};
    const auto start = Clock::now();
    drive(run, in_flight);
    const double s = seconds_since(start);
    if (run.failures != 0) throw std::runtime_error("unexpected misses or failed sets");
    return static_cast<double>(total) / s;
  }
};

}  // namespace

int main(int argc, char** argv) try {
  std::size_t total = corocache::bench::quick() ? 5'000 : 200'000;
  int repeats = corocache::bench::quick() ? 1 : 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--ops") == 0)
      total = std::stoul(argv[i + 1]);
    else if (std::strcmp(argv[i], "--repeats") == 0)
      repeats = std::max(1, std::stoi(argv[i + 1]));
    else
      throw std::invalid_argument(std::string("unknown argument ") + argv[i]);
  }
  corocache::test::RedisServer single;
  corocache::test::RedisCluster::Options co;
  co.replicas_per_primary = 0;
  corocache::test::RedisCluster cluster(co);

  corocache::RedisOptions single_options;
  single_options.port = single.port();
  single_options.request_timeout = std::chrono::seconds(10);
  auto cluster_options = corocache::RedisClusterOptions::from_url(cluster.url());
  cluster_options.request_timeout = single_options.request_timeout;
  Bench single_bench(single_options);
  Bench cluster_bench(cluster_options);

  const auto names = corocache::bench::make_names(10'000, 'k');
  std::printf(
      "redis_cluster_bench: single redis-server on %u, cluster of 3 primaries (%s), %zu tenants, "
      "%zu ops per run, best of %d\n",
      single.port(), cluster.url().c_str(), tenants, total, repeats);
  for (Op op : {Op::set, Op::get}) {  // SET first: the GETs then hit
    for (std::size_t n : {std::size_t{1}, std::size_t{16}, std::size_t{256}}) {
      double best_single = 0, best_cluster = 0;
      for (int r = 0; r < repeats; ++r) {
        best_single = std::max(best_single, single_bench.measure(names, op, n, total));
        best_cluster = std::max(best_cluster, cluster_bench.measure(names, op, n, total));
      }
      corocache::bench::print_summary(
          std::string("redis Cluster ") + op_name(op) + " N=" + std::to_string(n) + " vs single server",
          best_cluster, best_single);
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "redis_cluster_bench: %s\n", e.what());
  return 1;
}
