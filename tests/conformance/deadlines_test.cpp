// Conformance: deadlines and cancellation through a scope, where the behaviour does not
// depend on the backend: with_timeout bounds every call (memoized calls included, the
// computation too), a waiting pop waits its own wait, Duration::max() means "forever"
// everywhere, and in a single flight a caller that times out or is cancelled leaves alone.
// Paused-server cases (a deadline longer or shorter than request_timeout) are in
// tests/redis/deadlines_test.cpp.

#include "conformance/world.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>

#include <atomic>
#include <limits>
#include <mutex>
#include <vector>

using namespace corocache;
using namespace corocache::test;

namespace {

/// What an awaited call ended with: no error, or the code of the system_error it threw.
template <class T>
asio::awaitable<boost::system::error_code> error_of(asio::awaitable<T> op) {
  boost::system::error_code ec;
  try {
    co_await std::move(op);
  } catch (const boost::system::system_error& e) {
    ec = e.code();
  }
  co_return ec;
}

asio::awaitable<void> nap(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(asio::use_awaitable);
}

/// A memoized function that takes `delay` and counts its real runs.
struct SlowDouble {
  std::shared_ptr<std::atomic<int>> runs = std::make_shared<std::atomic<int>>(0);
  std::chrono::milliseconds delay;
  asio::awaitable<int> operator()(int x) const {
    ++*runs;
    asio::steady_timer t(co_await asio::this_coro::executor, delay);
    co_await t.async_wait(asio::use_awaitable);
    co_return 2 * x;
  }
};

}  // namespace

TEMPLATE_LIST_TEST_CASE("every operation works through a scope whose timeout is Duration::max()",
                        "[deadline][edge]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme").with_timeout(Duration::max());
  CHECK(w.sync(s.set_key("k", "v", SetOptions{.indices = indices("i")})));
  CHECK(w.sync(s.get_key("k")) == std::optional<std::string>("v"));
  CHECK(w.sync(s.refresh_key("k", 1h)));
  CHECK(w.sync(s.list_keys_by_index("i")) == std::vector<std::string>{"k"});
  w.sync(s.push_to_queue("q", "a"));
  CHECK(w.sync(s.pop_from_queue("q")) == std::optional<std::string>("a"));
  CHECK(w.sync(s.pop_from_queue("q", 50ms)) == std::nullopt);
  auto lock = w.sync(s.attempt_distributed_lock("l", 30s));
  REQUIRE(lock.has_value());
  CHECK(w.sync(s.release_distributed_lock(*lock)));
  auto batch = s.batch();
  batch.set_key("b", "1").push_to_queue("q", "x");
  w.sync(batch.commit());
  CHECK(w.sync(s.get_key("b")) == std::optional<std::string>("1"));
  SlowDouble slow{.delay = 10ms};
  auto twice = w.cache.func_cache("twice", slow);
  CHECK(w.sync(twice(s, 21)) == 42);
  CHECK(w.sync(s.invalidate_if([](std::string_view name, std::string_view) { return name == "b"; })) == 1);
  CHECK(w.sync(s.invalidate_prefix("k")) == 1);
  CHECK(w.sync(s.delete_key("nothing")) == false);
  w.sync(s.flush());
  CHECK(w.sync(s.pop_from_queue("q")) == std::nullopt);
}

TEMPLATE_LIST_TEST_CASE("Duration::max() as an expiry, ttl, refresh or wait means forever",
                        "[deadline][edge]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme");
  CHECK(w.sync(s.set_key("forever", "v", SetOptions{.expire = Duration::max()})));
  CHECK(w.sync(s.get_key("forever")) == std::optional<std::string>("v"));
  CHECK(w.sync(s.set_key("refreshed", "v", SetOptions{.expire = 100ms})));
  CHECK(w.sync(s.refresh_key("refreshed", Duration::max())));
  auto lock = w.sync(s.attempt_distributed_lock("forever", Duration::max()));
  REQUIRE(lock.has_value());
  CHECK_FALSE(w.sync(s.attempt_distributed_lock("forever", 30s)).has_value());
  w.sleep(250ms);
  CHECK(w.sync(s.get_key("refreshed")) == std::optional<std::string>("v"));
  CHECK(w.sync(s.get_key("forever")) == std::optional<std::string>("v"));
  CHECK_FALSE(w.sync(s.attempt_distributed_lock("forever", 30s)).has_value());
  CHECK(w.sync(s.release_distributed_lock(*lock)));

  SlowDouble slow{.delay = 1ms};
  auto twice = w.cache.func_cache("twice", slow, FuncCacheOptions{.expire = Duration::max()});
  CHECK(w.sync(twice(s, 2)) == 4);
  CHECK(w.sync(twice(s, 2)) == 4);
  CHECK(*slow.runs == 1);

  // A pop told to wait forever still returns what is pushed while it waits.
  std::optional<std::string> received;
  w.run_threads(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        asio::co_spawn(
            ex,
            [&]() -> asio::awaitable<void> {
              co_await nap(100ms);
              co_await s.push_to_queue("jobs", "job");
            },
            asio::detached);
        received = co_await s.with_timeout(Duration::max()).pop_from_queue("jobs", Duration::max());
      },
      1);
  CHECK(received == std::optional<std::string>("job"));
}

TEMPLATE_LIST_TEST_CASE("a waiting pop waits its own wait, beyond the scope's timeout", "[deadline][queues]",
                        TestedBackends) {
  World<TestType> w;
  // The scope's timeout bounds the trip (on Redis it includes opening a blocking connection,
  // which takes more than 100 ms on a loaded CI machine under ASan): 1 s, below the wait.
  auto hurried = w.cache.tenant("acme").with_timeout(1s);
  const auto start = std::chrono::steady_clock::now();
  const auto popped = w.sync(hurried.pop_from_queue("empty", 1500ms));
  CHECK(popped == std::nullopt);
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(waited >= 1450ms);
  CHECK(waited < 6s);

  // And receives what is pushed after the scope's timeout but within its wait.
  std::optional<std::string> received;
  w.run_threads(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        asio::co_spawn(
            ex,
            [&]() -> asio::awaitable<void> {
              co_await nap(1300ms);
              co_await hurried.push_to_queue("jobs", "late");
            },
            asio::detached);
        received = co_await hurried.pop_from_queue("jobs", 5s);
      },
      1);
  CHECK(received == std::optional<std::string>("late"));
}

TEMPLATE_LIST_TEST_CASE("a timed scope's batches, invalidations and flushes complete within it",
                        "[deadline][batch][invalidation]", TestedBackends) {
  World<TestType> w;
  auto s = w.cache.tenant("acme").with_timeout(2s);
  auto batch = s.batch();
  for (int i = 0; i < 50; ++i) batch.set_key("k" + std::to_string(i), "v");
  w.sync(batch.commit());
  CHECK(w.sync(s.invalidate_if(
            [](std::string_view name, std::string_view) { return name.ends_with("7"); })) == 5);
  CHECK(w.sync(s.invalidate_prefix("k1")) == 10);
  w.sync(s.flush());
  CHECK(w.sync(s.get_key("k2")) == std::nullopt);
}

TEMPLATE_LIST_TEST_CASE(
    "a memoized call times out with its scope while the computation goes on and is cached",
    "[deadline][func_cache]", TestedBackends) {
  World<TestType> w;
  w.connect();  // the short deadlines below are for the computation, not the connect
  SlowDouble slow{.delay = 2s};
  auto twice = w.cache.func_cache("twice", slow);
  auto acme = w.cache.tenant("acme");
  const auto start = std::chrono::steady_clock::now();
  CHECK(w.sync(error_of(twice(acme.with_timeout(100ms), 21))) == errc::timeout);
  CHECK(std::chrono::steady_clock::now() - start < 1500ms);  // not the computation's 2 s
  // A patient caller joins the computation the timed-out one started (or finds its result).
  CHECK(w.sync(twice(acme, 21)) == 42);
  CHECK(*slow.runs == 1);
}

TEMPLATE_LIST_TEST_CASE("a memoized result is stored even when every caller left", "[deadline][func_cache]",
                        TestedBackends) {
  World<TestType> w;
  w.connect();  // the 20 ms deadlines below are for the computation, not the connect
  SlowDouble slow{.delay = 200ms};
  auto twice = w.cache.func_cache("twice", slow);
  auto acme = w.cache.tenant("acme");
  CHECK(w.sync(error_of(twice(acme.with_timeout(20ms), 5))) == errc::timeout);
  CHECK(w.sync(error_of(twice(acme.with_timeout(20ms), 5))) == errc::timeout);
  w.sleep(400ms);  // the io_context keeps running: the computation completes meanwhile
  CHECK(*slow.runs == 1);
  CHECK(w.sync(twice(acme.with_timeout(2s), 5)) == 10);  // its stored result: no new run
  CHECK(*slow.runs == 1);
}

TEMPLATE_LIST_TEST_CASE("a memoized caller that times out leaves alone: patient callers get the result",
                        "[deadline][func_cache]", TestedBackends) {
  World<TestType> w;
  w.connect();  // the short deadlines below are for the computation, not the connect
  SlowDouble slow{.delay = 300ms};
  auto twice = w.cache.func_cache("twice", slow);
  auto acme = w.cache.tenant("acme");
  std::atomic<int> timeouts{0}, correct{0}, other{0};
  w.run_threads(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        std::atomic<int> finished{0};
        for (int i = 0; i < 40; ++i) {
          // Callers alternate: the first (the one that starts the computation) has 50 ms.
          const auto scope = i % 2 == 0 ? acme.with_timeout(50ms) : acme.with_timeout(5s);
          asio::co_spawn(
              ex,
              [&, scope]() -> asio::awaitable<void> {
                try {
                  const int r = co_await twice(scope, 21);
                  (r == 42 ? correct : other)++;
                } catch (const boost::system::system_error& e) {
                  (e.code() == errc::timeout ? timeouts : other)++;
                }
                ++finished;
              },
              asio::detached);
        }
        const bool all = co_await wait_until([&] { return finished == 40; }, 10s);
        CHECK(all);
      },
      1);
  CHECK(timeouts == 20);
  CHECK(correct == 20);
  CHECK(other == 0);
  CHECK(*slow.runs == 1);
}

TEMPLATE_LIST_TEST_CASE("a memoized first caller cancelled by its own timer does not fail the others",
                        "[deadline][func_cache][cancel]", TestedBackends) {
  // Issue 10, seen 4: a leader cancelled by its 10 ms timer made all 200 callers fail.
  using namespace asio::experimental::awaitable_operators;
  World<TestType> w;
  SlowDouble slow{.delay = 200ms};
  auto twice = w.cache.func_cache("twice", slow);
  auto acme = w.cache.tenant("acme");
  constexpr int callers = 200;
  std::atomic<int> correct{0}, cancelled{0}, other{0};
  w.run_threads(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        std::atomic<int> finished{0};
        for (int i = 0; i < callers; ++i) {
          asio::co_spawn(
              ex,
              [&, i]() -> asio::awaitable<void> {
                if (i == 0) {
                  auto raced = co_await (twice(acme, 21) || nap(10ms));
                  (raced.index() == 1 ? cancelled : other)++;
                } else {
                  try {
                    const int r = co_await twice(acme, 21);
                    (r == 42 ? correct : other)++;
                  } catch (...) {
                    ++other;
                  }
                }
                ++finished;
              },
              asio::detached);
        }
        const bool all = co_await wait_until([&] { return finished == callers; }, 10s);
        CHECK(all);
      },
      1);
  CHECK(cancelled == 1);
  CHECK(correct == callers - 1);
  CHECK(other == 0);
  CHECK(*slow.runs == 1);
}

TEMPLATE_LIST_TEST_CASE("memoized callers waiting for a computation can be cancelled one by one",
                        "[deadline][func_cache][cancel]", TestedBackends) {
  using namespace asio::experimental::awaitable_operators;
  World<TestType> w;
  SlowDouble slow{.delay = 300ms};
  auto twice = w.cache.func_cache("twice", slow);
  auto acme = w.cache.tenant("acme");
  constexpr int callers = 50;
  std::atomic<int> correct{0}, aborted{0}, other{0};
  w.run_threads(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        std::atomic<int> finished{0};
        for (int i = 0; i < callers; ++i) {
          asio::co_spawn(
              ex,
              [&, i]() -> asio::awaitable<void> {
                if (i % 5 == 4) {
                  // A follower cancelled through a signal: it throws operation_aborted.
                  asio::cancellation_signal signal;
                  auto timer_done = std::make_shared<bool>(false);
                  asio::steady_timer t(ex, 20ms);
                  t.async_wait([&signal, timer_done](boost::system::error_code) {
                    if (!*timer_done) signal.emit(asio::cancellation_type::terminal);
                  });
                  const auto here = co_await asio::this_coro::executor;
                  const auto ec = co_await asio::co_spawn(
                      here, error_of(twice(acme, 21)),
                      asio::bind_cancellation_slot(signal.slot(), asio::use_awaitable));
                  *timer_done = true;
                  t.cancel();
                  (ec == asio::error::operation_aborted ? aborted : other)++;
                } else {
                  const int r = co_await twice(acme, 21);
                  (r == 42 ? correct : other)++;
                }
                ++finished;
              },
              asio::detached);
        }
        const bool all = co_await wait_until([&] { return finished == callers; }, 10s);
        CHECK(all);
      },
      1);
  CHECK(aborted == callers / 5);
  CHECK(correct == callers - callers / 5);
  CHECK(other == 0);
  CHECK(*slow.runs == 1);
}
