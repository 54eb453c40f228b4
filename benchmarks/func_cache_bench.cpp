// Two comparisons on the memory backend, each measured in the same run as its baseline:
//
// 1. func_cache's hit path against a plain get_key of a key of the same length on the same
//    Cache<MemoryBackend>: the difference is what memoization costs per call (argument
//    encoding, key naming, result decoding, one more coroutine frame). Detail lines break
//    the cost down by step. Goal (issue 12): ratio >= 0.5, i.e. a hit within 2x a get_key.
// 2. Cache<AnyBackend> over memory against Cache<MemoryBackend>, get_key hits and set_key:
//    the cost of choosing the backend at run time. Goal: ratio >= 0.9 (within 10%).
//
// Times are the calling thread's CPU time (a time slice lost to another process on a
// shared machine does not count), best of `rounds`, baseline and contender alternating.
//
//   func_cache_bench        (COROCACHE_BENCH_QUICK=1 for a smoke run)

#include "bench_common.hpp"

#include <corocache/any_backend.hpp>
#include <corocache/cache.hpp>
#include <corocache/detail/json_codec.hpp>
#include <corocache/detail/memo_key.hpp>
#include <corocache/detail/sha256.hpp>
#include <corocache/func_cache.hpp>
#include <corocache/memory/backend.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace {

namespace asio = boost::asio;
using corocache::bench::detail;
using corocache::bench::thread_cpu_seconds;

constexpr int rounds = 5;

/// CPU ns per call of `step` (a synchronous step of the hit path), best of `rounds`.
template <class Step>
double ns_per_call(std::size_t calls, Step step) {
  double best = INFINITY;
  for (int r = 0; r < rounds; ++r) {
    const double start = thread_cpu_seconds();
    for (std::size_t i = 0; i < calls; ++i) corocache::bench::keep(step());
    best = std::min(best, (thread_cpu_seconds() - start) * 1e9 / static_cast<double>(calls));
  }
  return best;
}

/// Runs `body()` (returning awaitable<void>) on a fresh io_context until it completes.
template <class Body>
void run(asio::io_context& io, Body body) {
  bool done = false;
  asio::co_spawn(io, body(), [&](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
    done = true;
    io.stop();  // the backends' sweep timers would keep run() going
  });
  io.restart();
  io.run();
  if (!done) throw std::runtime_error("benchmark coroutine did not finish");
}

double ops_per_second(double ns) { return ns > 0 ? 1e9 / ns : 0; }

}  // namespace

int main() try {
  namespace cd = corocache::detail;
  const std::size_t calls = corocache::bench::quick() ? 20'000 : 500'000;
  const std::string sku = "sku-000123";
  const int qty = 3;
  const std::string long_sku(200, 's');
  std::printf(
      "func_cache_bench: %zu calls per round, best of %d rounds (thread CPU time), arguments (\"%s\", %d)\n",
      calls, rounds, sku.c_str(), qty);

  // The synchronous steps of a hit, on their own.
  const double encode_ns = ns_per_call(calls, [&] { return cd::canonical_arguments(sku, qty).size(); });
  const double json_encode_ns =
      ns_per_call(calls, [&] { return cd::canonical_arguments_via_json(sku, qty).size(); });
  const double name_ns = ns_per_call(calls, [&] { return cd::memo_name("price", sku, qty).size(); });
  const double long_name_ns =
      ns_per_call(calls, [&] { return cd::memo_name("price", long_sku, qty).size(); });
  const std::string long_text = cd::canonical_arguments(long_sku, qty);
  const double hash_ns = ns_per_call(calls, [&] {
    cd::Sha256 h;
    h.update(long_text);
    return h.finish()[0];
  });
  const double portable_hash_ns = ns_per_call(calls, [&] {
    cd::Sha256 h(true);
    h.update(long_text);
    return h.finish()[0];
  });
  const double decode_ns =
      ns_per_call(calls, [&] { return static_cast<std::size_t>(cd::decode_json<double>("12.5")); });
  detail(
      "steps: argument encoding %.0f ns (through a json tree: %.0f ns), key name %.0f ns (verbatim, %zu "
      "bytes)",
      encode_ns, json_encode_ns, name_ns, cd::memo_name("price", sku, qty).size());
  detail(
      "steps: key name of %zu-byte arguments %.0f ns (hashed); sha256 of them %.0f ns (portable code %.0f "
      "ns)",
      long_text.size(), long_name_ns, hash_ns, portable_hash_ns);
  detail("steps: result decoding %.0f ns", decode_ns);

  asio::io_context io;
  const corocache::MemoryOptions memory_options{.max_entries = 1000,
                                                .sweep_interval = corocache::Duration::zero()};

  // --- 1. func_cache hit vs get_key ------------------------------------------------------
  corocache::Cache<corocache::MemoryBackend> cache(
      corocache::MemoryBackend(io.get_executor(), memory_options),
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
  // A plain value under a name exactly as long as func_cache's, holding the same JSON text,
  // so both paths look up equally long keys and copy equal values.
  const std::string plain_name(cd::memo_name("price", sku, qty).size(), 'p');

  double memo_ns = INFINITY, get_ns = INFINITY, long_memo_ns = INFINITY, essential_ns = INFINITY;
  run(io, [&]() -> asio::awaitable<void> {
    const double first = co_await price(scope, sku, qty);  // computes and stores
    co_await price(scope, long_sku, qty);
    co_await scope.set_key(plain_name, cd::encode_json(first));
    co_await scope.set_key(cd::memo_name("price", sku, qty), cd::encode_json(first));
    for (int r = 0; r < rounds; ++r) {
      double start = thread_cpu_seconds();
      double sum = 0;
      for (std::size_t i = 0; i < calls; ++i) sum += co_await price(scope, sku, qty);
      memo_ns = std::min(memo_ns, (thread_cpu_seconds() - start) * 1e9 / static_cast<double>(calls));
      start = thread_cpu_seconds();
      std::size_t bytes = 0;
      for (std::size_t i = 0; i < calls; ++i) {
        auto v = co_await scope.get_key(plain_name);
        bytes += v ? v->size() : 0;
      }
      get_ns = std::min(get_ns, (thread_cpu_seconds() - start) * 1e9 / static_cast<double>(calls));
      // The work a hit cannot avoid: name, one lookup, decoding (here through get_key, so
      // without func_cache's own coroutine frame and copies).
      start = thread_cpu_seconds();
      for (std::size_t i = 0; i < calls; ++i) {
        auto v = co_await scope.get_key(cd::memo_name("price", sku, qty));
        sum += v ? cd::decode_json<double>(*v) : 0.0;
      }
      essential_ns =
          std::min(essential_ns, (thread_cpu_seconds() - start) * 1e9 / static_cast<double>(calls));
      start = thread_cpu_seconds();
      for (std::size_t i = 0; i < calls; ++i) sum += co_await price(scope, long_sku, qty);
      long_memo_ns =
          std::min(long_memo_ns, (thread_cpu_seconds() - start) * 1e9 / static_cast<double>(calls));
      corocache::bench::keep(sum);
      corocache::bench::keep(bytes);
    }
  });
  if (computed != 2)
    throw std::runtime_error("the memoized function ran " + std::to_string(computed) + " times");
  detail("func_cache hit %.0f ns/call, get_key %.0f ns/call, memoization overhead %.0f ns/call", memo_ns,
         get_ns, memo_ns - get_ns);
  detail("name + get_key + decode without func_cache's frame: %.0f ns/call (%.2fx get_key)", essential_ns,
         essential_ns / get_ns);
  detail("func_cache hit with %zu-byte (hashed) arguments %.0f ns/call", long_text.size(), long_memo_ns);
  detail("hit path: %s", cd::HasGetNow<corocache::MemoryBackend>
                             ? "MemoryBackend::get_now, one coroutine frame"
                             : "MemoryBackend::get, two coroutine frames (no get_now)");
  corocache::bench::print_summary("func_cache hit vs get_key", ops_per_second(memo_ns),
                                  ops_per_second(get_ns));

  // --- 2. Cache<AnyBackend> over memory vs Cache<MemoryBackend> ---------------------------
  corocache::Cache<corocache::AnyBackend> any_cache(
      corocache::make_backend(io.get_executor(), "memory://?max_entries=1000&sweep_interval_ms=0"),
      corocache::CacheOptions{.prefix = "bench"});
  corocache::Cache<corocache::MemoryBackend> concrete_cache(
      corocache::MemoryBackend(io.get_executor(), memory_options),
      corocache::CacheOptions{.prefix = "bench"});
  auto any_scope = any_cache.tenant("acme");
  auto concrete_scope = concrete_cache.tenant("acme");
  const std::string name = "user:0000000042";
  const std::string value(32, 'v');
  double any_get = INFINITY, concrete_get = INFINITY, any_set = INFINITY, concrete_set = INFINITY;
  run(io, [&]() -> asio::awaitable<void> {
    co_await any_scope.set_key(name, value);
    co_await concrete_scope.set_key(name, value);
    std::size_t bytes = 0;
    auto gets = [&](auto& s, double& best) -> asio::awaitable<void> {
      const double start = thread_cpu_seconds();
      for (std::size_t i = 0; i < calls; ++i) {
        auto v = co_await s.get_key(name);
        bytes += v ? v->size() : 0;
      }
      best = std::min(best, (thread_cpu_seconds() - start) * 1e9 / static_cast<double>(calls));
    };
    auto sets = [&](auto& s, double& best) -> asio::awaitable<void> {
      const double start = thread_cpu_seconds();
      for (std::size_t i = 0; i < calls; ++i) {
        const bool stored = co_await s.set_key(name, value);
        bytes += stored ? 1 : 0;
      }
      best = std::min(best, (thread_cpu_seconds() - start) * 1e9 / static_cast<double>(calls));
    };
    for (int r = 0; r < rounds; ++r) {  // alternate which goes first
      if (r % 2 == 0) co_await gets(concrete_scope, concrete_get);
      co_await gets(any_scope, any_get);
      if (r % 2 == 1) co_await gets(concrete_scope, concrete_get);
      if (r % 2 == 0) co_await sets(concrete_scope, concrete_set);
      co_await sets(any_scope, any_set);
      if (r % 2 == 1) co_await sets(concrete_scope, concrete_set);
    }
    corocache::bench::keep(bytes);
  });
  if (any_cache.backend().target<corocache::MemoryBackend>()->stats().hits < calls)
    throw std::runtime_error("AnyBackend gets did not reach the memory backend");
  detail("get_key hit: AnyBackend %.1f ns/call, MemoryBackend %.1f ns/call; set_key: %.1f vs %.1f ns/call",
         any_get, concrete_get, any_set, concrete_set);
  corocache::bench::print_summary("AnyBackend(memory) get_key vs MemoryBackend", ops_per_second(any_get),
                                  ops_per_second(concrete_get));
  corocache::bench::print_summary("AnyBackend(memory) set_key vs MemoryBackend", ops_per_second(any_set),
                                  ops_per_second(concrete_set));
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "func_cache_bench: %s\n", e.what());
  return 1;
}
