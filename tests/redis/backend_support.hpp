#pragma once
// Helpers of the RedisBackend tests (tests/redis/backend_*_test.cpp): options for the
// shared test server, unique key names, and small awaitable utilities.

#include "support/redis_server.hpp"
#include "support/run.hpp"

#include <corocache/redis/backend.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace corocache::test {

using namespace std::chrono_literals;
using detail::redis::Reply;

/// Options reaching `server` (default: the process's shared server).
inline RedisOptions options_for(const RedisServer& server = shared_redis_server()) {
  RedisOptions o;
  o.port = server.port();
  return o;
}

/// How often `command` ran on `server` (INFO commandstats; 0 if never).
inline long long command_calls(const RedisServer& server, const std::string& command) {
  const auto info = server.run({"INFO", "commandstats"});
  const auto at = info.find("cmdstat_" + command + ":calls=");
  if (at == std::string::npos) return 0;
  return std::stoll(info.substr(at + command.size() + 15));
}

/// A key scope no other test (or earlier run against the same server) uses, in the
/// facade's layout: `<unique>:{t:n}:`.
inline std::string unique_scope() {
  static std::mt19937_64 engine{std::random_device{}()};
  return "bt" + std::to_string(engine()) + ":{t:n}:";
}

/// Store parameters, built fluently without braced lists (g++ 12 rejects an
/// initializer_list temporary inside a co_await expression):
///   P(60s).index(k1).index(k2).reads(5).nx()
struct P {
  StoreParams params;
  explicit P(Duration ttl = 60s) { params.ttl = ttl; }
  P& index(std::string key) {
    params.index_keys.push_back(std::move(key));
    return *this;
  }
  P& reads(std::uint32_t n) {
    params.max_reads = n;
    return *this;
  }
  P& nx() {
    params.nx = true;
    return *this;
  }
  operator StoreParams() const { return params; }
};

/// Parameters of a plain store with `ttl`.
inline StoreParams params(Duration ttl = 60s) { return P(ttl); }

/// A sorted list of keys (index listings come in no particular order).
template <class... Keys>
std::vector<std::string> list(const Keys&... keys) {
  std::vector<std::string> out;
  (out.emplace_back(keys), ...);
  std::sort(out.begin(), out.end());
  return out;
}

/// Waits (bounded) until `b` has no background settling job left (docs/redis_queues.md):
/// after a pop, its ledger's deletion runs behind the caller; a test that ends then would
/// leave it pending when its io_context is destroyed.
inline asio::awaitable<void> settled(const RedisBackend& b) {
  const bool done =
      co_await wait_until([&b] { return b.stats().settle_pending() == 0; }, std::chrono::seconds(20));
  CHECK(done);
}

/// Runs `n` copies of `task(i)` concurrently on `ex` and waits for all of them; rethrows
/// the first exception any of them threw. Waits by polling: Asio's ranged parallel_group
/// reads its range after launching it, which on a multi-threaded io_context may already be
/// freed by a group that completed on another thread (an ASan use-after-free).
template <class Task>
asio::awaitable<void> run_all(asio::any_io_executor ex, std::size_t n, Task task) {
  struct Shared {
    std::atomic<std::size_t> left;
    std::mutex mutex;
    std::exception_ptr first;
  };
  auto shared = std::make_shared<Shared>();
  shared->left.store(n);
  for (std::size_t i = 0; i < n; ++i)
    asio::co_spawn(ex, task(i), [shared](std::exception_ptr e) {
      if (e) {
        const std::lock_guard<std::mutex> lock(shared->mutex);
        if (!shared->first) shared->first = e;
      }
      shared->left.fetch_sub(1, std::memory_order_acq_rel);
    });
  const bool done = co_await wait_until(
      [&shared] { return shared->left.load(std::memory_order_acquire) == 0; }, std::chrono::seconds(60));
  if (!done) throw std::runtime_error("run_all: tasks still running after 60 s");
  const std::lock_guard<std::mutex> lock(shared->mutex);
  if (shared->first) std::rethrow_exception(shared->first);
}

/// The sorted elements of a newline-joined RedisServer::run() array reply.
inline std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  if (text.empty()) return out;
  for (;;) {
    const auto end = text.find('\n', start);
    out.push_back(text.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace corocache::test
