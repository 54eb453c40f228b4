// MemoryBackend under an io_context run by two threads: the atomicity promises of
// backend.hpp (read limits, nx, locks, commit), queue hand-off, and capacity bounds.

#include "memory_test_support.hpp"
#include "support/run.hpp"

#include <corocache/memory/backend.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace memory_concurrency_test {

using namespace std::chrono_literals;
using corocache::MemoryBackend;
using corocache::MemoryOptions;
using corocache::StoreParams;
using corocache::test::long_ttl;
using corocache::test::run;
using corocache::test::sleep_for;
namespace asio = boost::asio;

namespace {

constexpr int threads = 2;

/// Spawns body(i) for i in [0, n) on `ex`, releases them together, waits for all of them
/// and rethrows the first failure.
template <class Body>
asio::awaitable<void> run_together(asio::any_io_executor ex, int n, Body body) {
  std::atomic<bool> go{false};
  std::atomic<int> done{0};
  std::mutex failure_mu;
  std::exception_ptr failure;
  for (int i = 0; i < n; ++i) {
    asio::co_spawn(
        ex,
        [&, i]() -> asio::awaitable<void> {
          while (!go.load()) co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
          co_await body(i);
        },
        [&](std::exception_ptr e) {
          if (e) {
            std::lock_guard lock(failure_mu);
            if (!failure) failure = e;
          }
          ++done;
        });
  }
  go = true;
  while (done.load() < n) co_await sleep_for(1ms);
  if (failure) std::rethrow_exception(failure);
}

}  // namespace

TEST_CASE("of 64 concurrent readers of a read-limited key exactly max_reads succeed") {
  run(
      [](asio::any_io_executor ex) -> asio::awaitable<void> {
        MemoryBackend mem(ex);
        for (int round = 0; round < 30; ++round) {
          const std::string key = "limited" + std::to_string(round);
          StoreParams p = long_ttl();
          p.max_reads = 10;
          co_await mem.set(key, "v", p);
          std::atomic<int> successes{0};
          co_await run_together(ex, 64, [&](int) -> asio::awaitable<void> {
            const auto v = co_await mem.get(key);
            if (v) ++successes;
          });
          CHECK(successes.load() == 10);
        }
        CHECK(mem.stats().entries == 0);
      },
      threads);
}

TEST_CASE("of 64 concurrent nx stores of one key exactly one succeeds") {
  run(
      [](asio::any_io_executor ex) -> asio::awaitable<void> {
        MemoryBackend mem(ex);
        for (int round = 0; round < 30; ++round) {
          const std::string key = "nx" + std::to_string(round);
          std::atomic<int> stored{0};
          co_await run_together(ex, 64, [&](int i) -> asio::awaitable<void> {
            StoreParams p = long_ttl();
            p.nx = true;
            const bool ok = co_await mem.set(key, std::to_string(i), p);
            if (ok) ++stored;
          });
          CHECK(stored.load() == 1);
        }
      },
      threads);
}

TEST_CASE("of 64 concurrent lock attempts exactly one succeeds, and only it can unlock") {
  run(
      [](asio::any_io_executor ex) -> asio::awaitable<void> {
        MemoryBackend mem(ex);
        for (int round = 0; round < 30; ++round) {
          const std::string key = "lock" + std::to_string(round);
          std::atomic<int> holders{0};
          std::atomic<int> released{0};
          std::atomic<int> attempted{0};
          co_await run_together(ex, 64, [&](int i) -> asio::awaitable<void> {
            const bool taken = co_await mem.try_lock(key, "owner" + std::to_string(i), 1h);
            if (taken) ++holders;
            ++attempted;  // nobody unlocks before everyone tried: a second holder would be legal then
            while (attempted.load() < 64)
              co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
            const bool freed = co_await mem.unlock(key, "owner" + std::to_string(i));
            if (freed) ++released;
          });
          CHECK(holders.load() == 1);
          CHECK(released.load() == 1);
        }
      },
      threads);
}

TEST_CASE("every pushed value reaches exactly one popper while waiters time out") {
  run(
      [](asio::any_io_executor ex) -> asio::awaitable<void> {
        MemoryBackend mem(ex);
        std::atomic<int> received{0};
        constexpr int pushes_each = 12;
        constexpr int pushes = 32 * pushes_each;  // 32 pushers, 32 poppers
        co_await run_together(ex, 64, [&](int i) -> asio::awaitable<void> {
          if (i % 2 == 0) {
            for (int n = 0; n < pushes_each; ++n) {
              co_await mem.push("q", "m");
              if (n % 4 == 0) co_await sleep_for(1ms);
            }
          } else {
            // Short waits, so many of them expire right as values arrive.
            for (int n = 0; n < 40; ++n) {
              const auto v = co_await mem.pop("q", std::chrono::milliseconds(1 + (i + n) % 3));
              if (v) ++received;
            }
          }
        });
        int left = 0;
        for (;;) {
          const auto v = co_await mem.pop("q", 0ms);
          if (!v) break;
          ++left;
        }
        CHECK(received.load() + left == pushes);
        CHECK(mem.stats().waiting_pops == 0);
      },
      threads);
}

TEST_CASE("concurrent writers never push the stats past the limits") {
  run(
      [](asio::any_io_executor ex) -> asio::awaitable<void> {
        constexpr std::size_t max_entries = 1000;
        constexpr std::size_t max_bytes = 400'000;
        MemoryBackend mem(ex, MemoryOptions{.max_entries = max_entries, .max_bytes = max_bytes});
        std::atomic<bool> writing{true};
        std::atomic<bool> within{true};
        std::atomic<int> writers_left{8};
        co_await run_together(ex, 9, [&](int i) -> asio::awaitable<void> {
          if (i == 8) {  // the observer
            while (writing.load()) {
              const auto s = mem.stats();
              if (s.entries > max_entries || s.bytes > max_bytes) within = false;
              co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
            }
            co_return;
          }
          for (int n = 0; n < 5000; ++n) {
            co_await mem.set("w" + std::to_string(i) + ":" + std::to_string(n), std::string(n % 300, 'x'),
                             long_ttl());
            if (n % 64 == 0) co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
          }
          if (--writers_left == 0) writing = false;
        });
        const auto s = mem.stats();
        CHECK(within.load());
        CHECK(s.entries <= max_entries);
        CHECK(s.bytes <= max_bytes);
        CHECK(s.evictions + s.entries == 8 * 5000);
      },
      threads);
}

TEST_CASE("a commit is never seen half applied") {
  run(
      [](asio::any_io_executor ex) -> asio::awaitable<void> {
        MemoryBackend mem(ex);
        co_await mem.set("x", "0", long_ttl());
        co_await mem.set("y", "0", long_ttl());
        std::atomic<bool> writing{true};
        std::atomic<int> torn{0};
        co_await run_together(ex, 2, [&](int i) -> asio::awaitable<void> {
          if (i == 0) {
            for (int n = 1; n <= 20000; ++n) {
              std::vector<corocache::BatchOp> ops;
              ops.emplace_back(corocache::batch_op::Store{"x", std::to_string(n), long_ttl()});
              ops.emplace_back(corocache::batch_op::Store{"y", std::to_string(n), long_ttl()});
              co_await mem.commit(std::move(ops));
            }
            writing = false;
          } else {
            while (writing.load()) {
              // x is written first: once x shows n, y must show n or later.
              const auto xs = co_await mem.get("x");
              const auto ys = co_await mem.get("y");
              const int x = std::stoi(xs.value());
              const int y = std::stoi(ys.value());
              if (y < x) ++torn;
            }
          }
        });
        CHECK(torn.load() == 0);
      },
      threads);
}

}  // namespace memory_concurrency_test
