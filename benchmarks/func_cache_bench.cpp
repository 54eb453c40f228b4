// func_cache's hit path against a plain get_key of a key of the same length on the same
// Cache<MemoryBackend>: the difference is what memoization costs per call (argument
// encoding to canonical JSON, SHA-256, key building, result decoding, one more coroutine
// frame). Detail lines break the cost down by step.
//
//   func_cache_bench        (COROCACHE_BENCH_QUICK=1 for a smoke run)

#include "bench_common.hpp"

#include <corocache/detail/json_codec.hpp>
#include <corocache/detail/sha256.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <corocache/cache.hpp>
#include <corocache/memory_backend.hpp>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace {

namespace asio = boost::asio;
using corocache::bench::Clock;
using corocache::bench::detail;
using corocache::bench::seconds_since;

/// ns per call of `step` (a synchronous step of the hit path), best of 3.
template <class Step>
double ns_per_call(std::size_t calls, Step step) {
  double best = INFINITY;
  for (int r = 0; r < 3; ++r) {
    const auto start = Clock::now();
    for (std::size_t i = 0; i < calls; ++i) corocache::bench::keep(step());
    best = std::min(best, seconds_since(start) * 1e9 / static_cast<double>(calls));
  }
  return best;
}

}  // namespace

int main() try {
  const std::size_t calls = corocache::bench::quick() ? 20'000 : 1'000'000;
  const std::string sku = "sku-000123";
  const int qty = 3;
  std::printf(
      "func_cache_bench: %zu hit-path calls per run, best of 3, arguments (\"%s\", %d), double result\n",
      calls, sku.c_str(), qty);

  // The synchronous steps of a hit, on their own.
  const double encode_ns =
      ns_per_call(calls, [&] { return corocache::detail::canonical_arguments(sku, qty).size(); });
  const std::string encoded = corocache::detail::canonical_arguments(sku, qty);
  const double hash_ns = ns_per_call(calls, [&] { return corocache::detail::sha256_hex(encoded).size(); });
  const double decode_ns = ns_per_call(
      calls, [&] { return static_cast<std::size_t>(corocache::detail::decode_json<double>("12.5")); });
  detail("steps: argument encoding %.0f ns, sha256 of %zu bytes %.0f ns, result decoding %.0f ns", encode_ns,
         encoded.size(), hash_ns, decode_ns);

  double memo_ops = 0, get_ops = 0;
  asio::io_context io;
  corocache::Cache<corocache::MemoryBackend> cache(
      corocache::MemoryBackend(io.get_executor(), corocache::MemoryOptions{.max_entries = 1000}),
      corocache::CacheOptions{.prefix = "bench"});
  auto scope = cache.tenant("acme").ns("prices");
  std::size_t computed = 0;
  auto price = cache.func_cache(
      "price",
      [&computed](std::string s, int q) -> asio::awaitable<double> {
        ++computed;
        co_return static_cast<double>(s.size()) * q + 0.5;
      },
      corocache::FuncCacheOptions{.expire = std::chrono::minutes(2)});

  // A plain value under a name as long as func_cache's ("price:" + 64 hex digits), holding
  // the same JSON text, so both paths look up equally long keys and copy equal values.
  const std::string plain_name = "price:" + std::string(64, 'a');

  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        const double first = co_await price(scope, sku, qty);  // computes and stores
        co_await scope.set_key(plain_name, corocache::detail::encode_json(first));
        double best_memo = 0, best_get = 0;
        for (int r = 0; r < 3; ++r) {
          auto start = Clock::now();
          double sum = 0;
          for (std::size_t i = 0; i < calls; ++i) sum += co_await price(scope, sku, qty);
          best_memo = std::max(best_memo, static_cast<double>(calls) / seconds_since(start));
          start = Clock::now();
          std::size_t bytes = 0;
          for (std::size_t i = 0; i < calls; ++i) {
            auto v = co_await scope.get_key(plain_name);
            bytes += v ? v->size() : 0;
          }
          best_get = std::max(best_get, static_cast<double>(calls) / seconds_since(start));
          corocache::bench::keep(sum);
          corocache::bench::keep(bytes);
        }
        memo_ops = best_memo;
        get_ops = best_get;
      },
      [&](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
        done = true;
        io.stop();  // the backend's sweep timer would keep run() going
      });
  io.run();
  if (!done) throw std::runtime_error("benchmark coroutine did not finish");
  if (computed != 1)
    throw std::runtime_error("the memoized function ran " + std::to_string(computed) + " times");
  detail("func_cache hit %.0f ns/call, get_key %.0f ns/call, memoization overhead %.0f ns/call",
         1e9 / memo_ops, 1e9 / get_ops, 1e9 / memo_ops - 1e9 / get_ops);
  corocache::bench::print_summary("func_cache hit vs get_key", memo_ops, get_ops);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "func_cache_bench: %s\n", e.what());
  return 1;
}
