// TLS overhead: GET and SET of 16-byte values with N = 1, 16 and 256 requests in flight on
// one corocache connection, over TLS (rediss://, peer verification on) and over plain TCP
// to the SAME redis-server (listening on both ports), measured in the same run, alternating,
// best of R. One summary line per (op, N): "corocache" is TLS, "baseline" plain TCP.
//
//   redis_tls_bench [--ops COUNT] [--repeats R]
//
// Starts its own redis-server with certificates it generates (tests/support/redis_tls.hpp).

#include "bench_common.hpp"
#include "support/redis_process.hpp"
#include "support/redis_tls.hpp"

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

struct Run {
  const std::vector<std::string>* names = nullptr;
  Op op = Op::get;
  std::size_t total = 0;
  std::size_t issued = 0;
  std::size_t failures = 0;
  std::size_t workers_left = 0;
};

template <class Scope>
asio::awaitable<void> worker(Scope scope, Run& run) {
  while (run.issued < run.total) {
    const std::string& name = (*run.names)[run.issued % run.names->size()];
    ++run.issued;
    if (run.op == Op::get) {
      auto v = co_await scope.get_key(name);
      if (!v || v->size() != value.size()) ++run.failures;
    } else {
      const bool stored = co_await scope.set_key(name, value);  // not inside a condition (g++ 12)
      if (!stored) ++run.failures;
    }
  }
}

/// One Cache on one io_context thread; `measure` runs `total` operations with `in_flight`
/// coroutines and returns operations per second.
struct Bench {
  asio::io_context io{1};
  corocache::Cache<corocache::RedisBackend> cache;

  explicit Bench(corocache::RedisOptions o)
      : cache(corocache::RedisBackend(io.get_executor(), std::move(o)),
              corocache::CacheOptions{.prefix = "tlsb"}) {}

  void drive(Run& run, std::size_t in_flight) {
    auto scope = cache.tenant("t").ns("kv");
    run.workers_left = in_flight;
    for (std::size_t i = 0; i < in_flight; ++i)
      asio::co_spawn(io, worker(scope, run), [&](std::exception_ptr e) {
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
  const auto plain_port = corocache::test::free_loopback_port();
  corocache::test::RedisTlsServer::Options so;
  so.extra_args = {"--port", std::to_string(plain_port)};  // plain TCP too: the same server
  corocache::test::RedisTlsServer server(so);

  corocache::RedisOptions plain;
  plain.port = plain_port;
  plain.request_timeout = std::chrono::seconds(10);
  auto tls = corocache::RedisOptions::from_url(server.url() + "?tls_ca_file=" + server.ca_file());
  tls.request_timeout = plain.request_timeout;
  Bench plain_bench(plain), tls_bench(tls);

  const auto names = corocache::bench::make_names(10'000, 'k');
  std::printf("redis_tls_bench: redis-server with TCP port %u and TLS port %u, %zu ops per run, best of %d\n",
              plain_port, server.port(), total, repeats);
  for (Op op : {Op::set, Op::get}) {  // SET first: the GETs then hit
    for (std::size_t n : {std::size_t{1}, std::size_t{16}, std::size_t{256}}) {
      double best_plain = 0, best_tls = 0;
      for (int r = 0; r < repeats; ++r) {
        best_plain = std::max(best_plain, plain_bench.measure(names, op, n, total));
        best_tls = std::max(best_tls, tls_bench.measure(names, op, n, total));
      }
      corocache::bench::print_summary(
          std::string("redis TLS ") + op_name(op) + " N=" + std::to_string(n) + " vs plain TCP", best_tls,
          best_plain);
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "redis_tls_bench: %s\n", e.what());
  return 1;
}
