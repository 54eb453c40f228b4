// The memory backend and the facade on an io_context run by 4 threads, with callers
// co_spawned straight on it (no strand): tiny with_timeout deadlines, waiting pops and
// memoized calls. No crash, every result correct, every pushed value counted exactly once.
// Callers that cancel through `||` or a cancellation_signal run on a strand of their own:
// Asio requires a cancellation signal to be emitted where the operation runs.
// Built as its own target (unit_memory_threads) so CI can run it under ThreadSanitizer.

#include "support/run.hpp"

#include <corocache/cache.hpp>
#include <corocache/errors.hpp>
#include <corocache/memory/backend.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace memory_threads_test {

using namespace std::chrono_literals;
using namespace corocache;
using corocache::test::run;
using corocache::test::wait_until;

namespace {

constexpr int threads = 4;

asio::awaitable<void> nap(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(asio::use_awaitable);
}

/// A strand for callers that emit cancellation. Made from the io_context's own executor
/// type, so any_io_executor holds it in place: a strand of any_io_executor is held through
/// a reference count that Asio releases with a standalone fence, which ThreadSanitizer
/// cannot see and reports as a race.
asio::any_io_executor strand_of(const asio::any_io_executor& ex) {
  return asio::make_strand(*ex.target<asio::io_context::executor_type>());
}

/// Every value received, and whether one came twice.
struct Ledger {
  std::mutex mutex;
  std::set<std::string> seen;
  int duplicates = 0;
  int unexpected_errors = 0;
  void received(std::string v) {
    std::lock_guard lock(mutex);
    if (!seen.insert(std::move(v)).second) ++duplicates;
  }
  void error() {
    std::lock_guard lock(mutex);
    ++unexpected_errors;
  }
};

}  // namespace

TEST_CASE("no popped value is lost or duplicated with tiny deadlines and cancellation on 4 threads",
          "[threads][queues]") {
  run(
      [](asio::any_io_executor ex) -> asio::awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        Cache<MemoryBackend> cache{MemoryBackend(ex)};
        auto scope = cache.tenant("acme");
        const std::string queue_key = "corocache:{acme:default}:q:q";
        constexpr int producers = 8, per_producer = 400;
        std::atomic<int> producing{producers};
        std::atomic<int> consumers_left{0};
        Ledger ledger;

        for (int p = 0; p < producers; ++p) {
          asio::co_spawn(
              ex,
              [&, p]() -> asio::awaitable<void> {
                for (int n = 0; n < per_producer; ++n) {
                  co_await scope.with_timeout(1ms).push_to_queue("q",
                                                                 std::to_string(p) + "-" + std::to_string(n));
                  if (n % 16 == 0) co_await nap(1ms);
                }
                --producing;
              },
              asio::detached);
        }
        // Each consumer kind loops until the producers are done; the rest is drained below.
        const auto consumer = [&](int kind, int id) -> asio::awaitable<void> {
          for (int round = 0; producing > 0; ++round) {
            const auto wait = std::chrono::milliseconds((id + round) % 4);
            try {
              if (kind == 0) {
                // A scope deadline of 1 ms on top of the pop's own wait.
                auto v = co_await scope.with_timeout(1ms).pop_from_queue("q", wait);
                if (v) ledger.received(std::move(*v));
              } else if (kind == 1) {
                // A backend deadline shorter than the wait: ends in timeout or a value.
                auto v = co_await cache.backend().pop(queue_key, 5ms, Deadline::after(wait));
                if (v) ledger.received(std::move(*v));
              } else if (kind == 2) {
                // Cancelled by a timer that often fires as a value arrives.
                auto raced = co_await (scope.pop_from_queue("q", 5ms) || nap(wait));
                if (raced.index() == 0) {
                  auto& v = std::get<0>(raced);
                  if (v) ledger.received(std::move(*v));
                }
              } else {
                // Cancelled through a signal emitted on this consumer's strand.
                // Timer, signal and consumer share the strand, so nothing here races.
                auto signal = std::make_shared<asio::cancellation_signal>();
                auto popped = std::make_shared<bool>(false);
                auto here = co_await asio::this_coro::executor;
                asio::steady_timer timer(here, wait);
                timer.async_wait([signal, popped](boost::system::error_code) {
                  if (!*popped) signal->emit(asio::cancellation_type::terminal);
                });
                std::optional<std::string> v;
                try {
                  v = co_await asio::co_spawn(
                      here, scope.pop_from_queue("q", 5ms),
                      asio::bind_cancellation_slot(signal->slot(), asio::use_awaitable));
                } catch (const boost::system::system_error& e) {
                  if (e.code() != asio::error::operation_aborted) throw;
                }
                *popped = true;
                timer.cancel();
                if (v) ledger.received(std::move(*v));
              }
            } catch (const boost::system::system_error& e) {
              if (e.code() != errc::timeout) ledger.error();
            }
          }
          --consumers_left;
        };
        for (int c = 0; c < 16; ++c) {
          const int kind = c % 4;
          ++consumers_left;
          // Consumers that emit cancellation run on their own strand; the others straight on ex.
          auto where = kind >= 2 ? strand_of(ex) : ex;
          asio::co_spawn(where, consumer(kind, c), asio::detached);
        }
        const bool finished = co_await wait_until([&] { return producing == 0 && consumers_left == 0; }, 60s);
        REQUIRE(finished);
        int remaining = 0;
        for (;;) {
          auto v = co_await scope.pop_from_queue("q");
          if (!v) break;
          ledger.received(std::move(*v));
          ++remaining;
        }
        CHECK(ledger.duplicates == 0);
        CHECK(ledger.unexpected_errors == 0);
        CHECK(ledger.seen.size() == std::size_t{producers * per_producer});
        CHECK(cache.backend().stats().waiting_pops == 0);
        CHECK(remaining < producers * per_producer);  // the consumers did take values
      },
      threads, 90s);
}

TEST_CASE("memoized calls on 4 threads: correct results, one run per arguments, only timeouts fail",
          "[threads][func_cache]") {
  run(
      [](asio::any_io_executor ex) -> asio::awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        Cache<MemoryBackend> cache{MemoryBackend(ex)};
        auto scope = cache.tenant("acme");
        constexpr int keys = 16, callers = 400;
        std::vector<std::atomic<int>> runs(keys);
        auto slow = cache.func_cache("slow", [&runs](int x) -> asio::awaitable<int> {
          ++runs[x];
          co_await nap(std::chrono::milliseconds(1 + x % 3));
          co_return x * 10;
        });
        std::atomic<int> correct{0}, timeouts{0}, cancelled{0}, wrong{0}, finished{0};
        for (int i = 0; i < callers; ++i) {
          const int x = i % keys;
          const int kind = i % 4;
          auto where = kind == 3 ? strand_of(ex) : ex;
          asio::co_spawn(
              where,
              [&, x, kind]() -> asio::awaitable<void> {
                try {
                  if (kind == 0) {
                    const int r = co_await slow(scope, x);
                    (r == x * 10 ? correct : wrong)++;
                  } else if (kind == 1 || kind == 2) {
                    const int r = co_await slow(scope.with_timeout(kind == 1 ? 1ms : Duration::max()), x);
                    (r == x * 10 ? correct : wrong)++;
                  } else {
                    auto raced = co_await (slow(scope, x) || nap(1ms));
                    if (raced.index() == 0) {
                      (std::get<0>(raced) == x * 10 ? correct : wrong)++;
                    } else {
                      ++cancelled;
                    }
                  }
                } catch (const boost::system::system_error& e) {
                  (e.code() == errc::timeout ? timeouts : wrong)++;
                } catch (...) {
                  ++wrong;
                }
                ++finished;
              },
              asio::detached);
        }
        const bool all = co_await wait_until([&] { return finished == callers; }, 60s);
        REQUIRE(all);
        CHECK(wrong == 0);
        CHECK(correct + timeouts + cancelled == callers);
        CHECK(correct >= callers / 2);  // callers without a short deadline always succeed
        for (int x = 0; x < keys; ++x) CHECK(runs[x] == 1);
        // Every computation stored its result, whoever was still waiting.
        for (int x = 0; x < keys; ++x) {
          const int r = co_await slow(scope.with_timeout(1s), x);
          CHECK(r == x * 10);
        }
        for (int x = 0; x < keys; ++x) CHECK(runs[x] == 1);
      },
      threads, 90s);
}

TEST_CASE("values through timed scopes on 4 threads stay correct", "[threads][values]") {
  run(
      [](asio::any_io_executor ex) -> asio::awaitable<void> {
        Cache<MemoryBackend> cache{MemoryBackend(ex)};
        constexpr int workers = 32;
        std::atomic<int> finished{0}, wrong{0};
        for (int w = 0; w < workers; ++w) {
          asio::co_spawn(
              ex,
              [&, w]() -> asio::awaitable<void> {
                auto scope = cache.tenant("acme").with_timeout(w % 2 == 0 ? 1ms : Duration::max());
                try {
                  for (int n = 0; n < 200; ++n) {
                    const std::string name = std::to_string(w) + ":" + std::to_string(n % 10);
                    co_await scope.set_key(name, std::to_string(n));
                    const auto v = co_await scope.get_key(name);
                    if (v != std::optional<std::string>(std::to_string(n))) ++wrong;
                    if (n % 50 == 0) {
                      auto batch = scope.batch();
                      batch.set_key(name + "b", "x").delete_key(name + "b");
                      co_await batch.commit();
                    }
                  }
                } catch (...) {
                  ++wrong;
                }
                ++finished;
              },
              asio::detached);
        }
        const bool all = co_await wait_until([&] { return finished == workers; }, 60s);
        REQUIRE(all);
        CHECK(wrong == 0);
      },
      threads, 90s);
}

}  // namespace memory_threads_test
