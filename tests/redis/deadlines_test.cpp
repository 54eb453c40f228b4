// Deadlines through a scope against a paused redis-server (SIGSTOP): with_timeout longer
// than request_timeout rides out a pause, shorter ends the call on its own schedule, and
// this holds for batches, memoized calls, invalidations and flushes too. A lock attempt
// that timed out on the paused server does not leave the lock held after it resumes.
// Timing checks are generous upper bounds; what they tell apart is which deadline applied.

#include "support/redis_server.hpp"
#include "support/run.hpp"

#include <corocache/cache.hpp>
#include <corocache/errors.hpp>
#include <corocache/redis/backend.hpp>
#include <corocache/redis/detail/connection.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace deadlines_test {

using namespace std::chrono_literals;
using namespace corocache;
using corocache::test::RedisServer;
using corocache::test::run;
using corocache::test::wait_until;

namespace {

struct Outcome {
  boost::system::error_code ec;
  std::chrono::steady_clock::duration took{};
};

/// Awaits `op` (discarding its value) and reports its error code and duration.
template <class T>
asio::awaitable<Outcome> outcome_of(asio::awaitable<T> op) {
  Outcome o;
  const auto start = std::chrono::steady_clock::now();
  try {
    co_await std::move(op);
  } catch (const boost::system::system_error& e) {
    o.ec = e.code();
  }
  o.took = std::chrono::steady_clock::now() - start;
  co_return o;
}

asio::awaitable<void> nap(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(asio::use_awaitable);
}

RedisOptions options_for(const RedisServer& server, Duration request_timeout) {
  RedisOptions o;
  o.port = server.port();
  o.request_timeout = request_timeout;
  o.connect_timeout = 500ms;
  o.reconnect_min = 20ms;
  o.reconnect_max = 250ms;
  return o;
}

asio::awaitable<int> double_it(int x) { co_return 2 * x; }

/// The calls every scope case runs, one at a time, each a fresh awaitable.
std::vector<std::pair<std::string, std::function<asio::awaitable<Outcome>()>>> calls_through(
    Cache<RedisBackend>& cache, const Scope<RedisBackend>& s) {
  auto twice = cache.func_cache("twice", &double_it);
  std::vector<std::pair<std::string, std::function<asio::awaitable<Outcome>()>>> calls;
  calls.emplace_back("get_key", [s] { return outcome_of(s.get_key("k")); });
  calls.emplace_back("set_key", [s] { return outcome_of(s.set_key("k", "v")); });
  calls.emplace_back("batch.commit", [s] {
    auto batch = s.batch();
    batch.set_key("b", "1").push_to_queue("q", "x");
    return outcome_of(batch.commit());
  });
  calls.emplace_back("func_cache", [s, twice] { return outcome_of(twice(s, 21)); });
  calls.emplace_back("invalidate_prefix", [s] { return outcome_of(s.invalidate_prefix("k")); });
  calls.emplace_back("invalidate_index", [s] { return outcome_of(s.invalidate_index("i")); });
  calls.emplace_back("batch.commit with invalidate_index and cache_clear", [s, twice] {
    auto batch = s.batch();
    batch.invalidate_index("i").cache_clear(twice);
    return outcome_of(batch.commit());
  });
  calls.emplace_back("invalidate_if", [s] {
    return outcome_of(s.invalidate_if([](std::string_view, std::string_view) { return true; }));
  });
  calls.emplace_back("flush", [s] { return outcome_of(s.flush()); });
  return calls;
}

}  // namespace

TEST_CASE("a scope timeout longer than request_timeout rides out a paused server", "[deadline][pause]") {
  RedisServer server;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    Cache<RedisBackend> cache{RedisBackend(ex, options_for(server, 300ms)), CacheOptions{.prefix = "dl"}};
    auto patient = cache.tenant("acme").with_timeout(3s);
    const auto warm = co_await outcome_of(patient.set_key("k", "v"));
    REQUIRE_FALSE(warm.ec);
    for (auto& [name, call] : calls_through(cache, patient)) {
      INFO(name);
      server.pause();
      std::atomic<bool> done{false};
      auto outcome = std::make_shared<Outcome>();
      asio::co_spawn(ex, call(), [&done, outcome](std::exception_ptr, Outcome o) {
        *outcome = o;
        done = true;
      });
      co_await nap(800ms);  // well past request_timeout (300 ms)
      server.resume();
      const bool finished = co_await wait_until([&] { return done.load(); }, 10s);
      REQUIRE(finished);
      CHECK_FALSE(outcome->ec);  // succeeded after the pause, within the scope's 3 s
      CHECK(outcome->took >= 700ms);
    }
  });
}

TEST_CASE("a scope timeout shorter than request_timeout ends calls to a paused server on time",
          "[deadline][pause]") {
  RedisServer server;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    Cache<RedisBackend> cache{RedisBackend(ex, options_for(server, 5s)), CacheOptions{.prefix = "dl"}};
    auto hurried = cache.tenant("acme").with_timeout(100ms);
    const auto warm = co_await outcome_of(hurried.set_key("k", "v"));
    REQUIRE_FALSE(warm.ec);
    server.pause();
    for (auto& [name, call] : calls_through(cache, hurried)) {
      INFO(name);
      const auto o = co_await call();
      CHECK(o.ec == errc::timeout);
      CHECK(o.took < 3s);  // the scope's 100 ms (with slack), not request_timeout's 5 s
    }
    server.resume();
    // After the pause the same scope works again.
    const auto after = co_await outcome_of(cache.tenant("acme").with_timeout(3s).get_key("k"));
    CHECK_FALSE(after.ec);
  });
}

TEST_CASE("a GET of a read-limited value whose read script is held keeps the scope's deadline and cancels",
          "[deadline]") {
  RedisServer server;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    Cache<RedisBackend> cache{RedisBackend(ex, options_for(server, 5s)), CacheOptions{.prefix = "dl"}};
    auto s = cache.tenant("acme");
    const auto limited = SetOptions().with_max_reads(10);
    const bool stored = co_await s.set_key("limited", "v", limited);
    REQUIRE(stored);
    // CLIENT PAUSE WRITE lets the GET through (it answers WRONGTYPE: the value is a hash)
    // but holds every script, so the read script that follows waits.
    detail::redis::Connection admin(ex, options_for(server, 5s));
    detail::redis::Request pause;
    pause.add("CLIENT", "PAUSE", "10000", "WRITE");  // ended by the UNPAUSE below
    co_await admin.exec(std::move(pause));
    const auto hurried = co_await outcome_of(s.with_timeout(200ms).get_key("limited"));
    CHECK(hurried.ec == errc::timeout);
    CHECK(hurried.took >= 150ms);
    CHECK(hurried.took < 5s);  // the scope's 200 ms (with slack), not the pause
    // Terminal cancellation reaches the read script too. Another backend (its own
    // connection: the first one's held script holds everything behind it) sends the GET,
    // then the script; the cancellation comes once both requests are out.
    Cache<RedisBackend> other{RedisBackend(ex, options_for(server, 5s)), CacheOptions{.prefix = "dl"}};
    const auto requests = [&] { return other.backend().stats().connection.requests; };
    const auto before = requests();
    asio::cancellation_signal signal;
    std::atomic<bool> done{false};
    auto outcome = std::make_shared<Outcome>();
    asio::co_spawn(
        ex, outcome_of(other.tenant("acme").get_key("limited")),
        asio::bind_cancellation_slot(signal.slot(), [&done, outcome](std::exception_ptr, Outcome o) {
          *outcome = o;
          done = true;
        }));
    const bool script_sent = co_await wait_until([&] { return requests() >= before + 2; }, 2s);
    REQUIRE(script_sent);
    CHECK_FALSE(done.load());  // held by the pause
    signal.emit(asio::cancellation_type::terminal);
    const bool cancelled = co_await wait_until([&] { return done.load(); }, 3s);  // before the pause ends
    REQUIRE(cancelled);
    CHECK(outcome->ec == asio::error::operation_aborted);
    detail::redis::Request unpause;
    unpause.add("CLIENT", "UNPAUSE");
    co_await admin.exec(std::move(unpause));
    std::optional<std::string> value = co_await s.get_key("limited");
    CHECK(value == std::optional<std::string>("v"));
  });
}

TEST_CASE("a scope timeout of Duration::max() works on Redis", "[deadline][edge]") {
  RedisServer server;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    Cache<RedisBackend> cache{RedisBackend(ex, options_for(server, 2s)), CacheOptions{.prefix = "dl"}};
    auto forever = cache.tenant("acme").with_timeout(Duration::max());
    for (auto& [name, call] : calls_through(cache, forever)) {
      INFO(name);
      const auto o = co_await call();
      CHECK_FALSE(o.ec);
    }
  });
}

TEST_CASE("a lock attempt that timed out on a paused server does not keep the lock after it resumes",
          "[deadline][locks][pause]") {
  RedisServer server;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    Cache<RedisBackend> cache{RedisBackend(ex, options_for(server, 300ms)), CacheOptions{.prefix = "dl"}};
    auto s = cache.tenant("acme");
    const auto warm = co_await outcome_of(s.get_key("warm"));
    REQUIRE_FALSE(warm.ec);
    server.pause();
    const auto attempt = co_await outcome_of(s.with_timeout(100ms).attempt_distributed_lock("job", 1h));
    CHECK(attempt.ec == errc::timeout);
    co_await nap(500ms);  // the background release times out too while the server is paused
    server.resume();
    // The attempt's SET ran after SIGCONT (it may have taken the lock); the release queued
    // behind it on the same connection gives it back. Without it the lock would stay 1 h.
    std::optional<Lock> taken;
    const bool free = co_await wait_until(
        [&] {
          return server.run({"EXISTS", "dl:{acme:default}:l:job"}) == "0";
        },
        5s);
    CHECK(free);
    taken = co_await s.with_timeout(3s).attempt_distributed_lock("job", 1h);
    CHECK(taken.has_value());
  });
}

}  // namespace deadlines_test
