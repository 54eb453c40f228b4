#pragma once
// The harness of the A/B Redis benchmarks (redis_tls_bench, redis_cluster_bench): one Cache
// on one io_context thread, GET or SET of 16-byte values through the public API with N
// coroutines in flight, spread over `tenants` scopes; `measure` returns operations per
// second and throws on a miss or a failed SET.

#include "bench_common.hpp"
#include "wake_regime.hpp"

#include <corocache/cache.hpp>
#include <corocache/redis_backend.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <cstddef>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corocache::bench::redis_ab {

namespace asio = boost::asio;

inline const std::string value(16, 'v');
enum class Op { get, set };
inline const char* op_name(Op op) { return op == Op::get ? "GET" : "SET"; }
using Scope = corocache::Scope<corocache::RedisBackend>;

struct Run {
  const std::vector<std::string>* names = nullptr;
  Op op = Op::get;
  std::size_t total = 0;
  std::size_t issued = 0;
  std::size_t failures = 0;
  std::size_t workers_left = 0;
};

inline asio::awaitable<void> worker(const std::vector<Scope>& scopes, Run& run) {
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

class Bench {
 public:
  /// RedisOptions (one server, TLS or not) or RedisClusterOptions.
  template <class Options>
  Bench(Options options, std::string prefix, std::size_t tenants)
      : cache_(corocache::RedisBackend(io_.get_executor(), std::move(options)),
               corocache::CacheOptions{.prefix = std::move(prefix)}) {
    for (std::size_t t = 0; t < tenants; ++t)
      scopes_.push_back(cache_.tenant("t" + std::to_string(t)).ns("kv"));
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

 private:
  void drive(Run& run, std::size_t in_flight) {
    run.workers_left = in_flight;
    for (std::size_t i = 0; i < in_flight; ++i)
      asio::co_spawn(io_, worker(scopes_, run), [&](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
        if (--run.workers_left == 0) io_.stop();
      });
    io_.restart();
    io_.run();
  }

  asio::io_context io_{1};
  corocache::Cache<corocache::RedisBackend> cache_;
  std::vector<Scope> scopes_;
};

/// Parses `--ops COUNT --repeats R` into `total` and `repeats`.
inline void parse_args(int argc, char** argv, std::size_t& total, int& repeats) {
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string_view(argv[i]) == "--ops")
      total = std::stoul(argv[i + 1]);
    else if (std::string_view(argv[i]) == "--repeats")
      repeats = std::max(1, std::stoi(argv[i + 1]));
    else
      throw std::invalid_argument(std::string("unknown argument ") + argv[i]);
  }
}

/// For SET then GET (the GETs then hit) and N = 1, 16, 256: best of `repeats` of each
/// side, alternating, one summary line "<label> <OP> N=<n> vs <baseline label>". The
/// machine's wake-up regime (wake_regime.hpp) is printed before and after, tagged `program`.
inline void compare(Bench& a, Bench& baseline, const std::string& label, const std::string& baseline_label,
                    std::size_t total, int repeats, const std::string& program) {
  print_wake_regime((program + " start").c_str());
  const auto names = make_names(10'000, 'k');
  for (Op op : {Op::set, Op::get}) {
    for (std::size_t n : {std::size_t{1}, std::size_t{16}, std::size_t{256}}) {
      double best_a = 0, best_baseline = 0;
      for (int r = 0; r < repeats; ++r) {
        best_baseline = std::max(best_baseline, baseline.measure(names, op, n, total));
        best_a = std::max(best_a, a.measure(names, op, n, total));
      }
      print_summary(label + " " + op_name(op) + " N=" + std::to_string(n) + " vs " + baseline_label, best_a,
                    best_baseline);
    }
  }
  print_wake_regime((program + " end").c_str());
}

}  // namespace corocache::bench::redis_ab
