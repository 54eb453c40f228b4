// Deadlines, cancellation and edge durations on the memory backend and the facade above it:
// a pop cancelled after a value was handed to it gives the value back, Duration::max() is
// "forever" in every timer and expiry (UBSan checks the arithmetic), a lock attempt whose
// outcome is unknown (the backend took the lock, the caller got an error) is released, and a
// memoized result whose store's outcome is unknown is still fenced by a clear.

#include "memory_test_support.hpp"
#include "support/run.hpp"

#include <corocache/cache.hpp>
#include <corocache/errors.hpp>
#include <corocache/memory/backend.hpp>
#include <corocache/null_backend.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace memory_deadlines_test {

using namespace std::chrono_literals;
using namespace corocache;
using corocache::test::run;
using corocache::test::sleep_for;
using corocache::test::wait_until;

namespace {

/// Takes the lock, then reports a timeout: what a caller sees when the server ran the
/// attempt but its reply came too late.
struct LostReplyBackend : MemoryBackend {
  using MemoryBackend::MemoryBackend;
  asio::awaitable<bool> try_lock(std::string key, std::string token, Duration ttl, Deadline deadline = {}) {
    co_await MemoryBackend::try_lock(std::move(key), std::move(token), ttl, deadline);
    throw boost::system::system_error(make_error_code(errc::timeout));
  }
};
static_assert(Backend<LostReplyBackend>);

/// Takes the lock, then waits a second before replying: cancelling the attempt meanwhile
/// leaves the lock taken under the attempt's token.
struct SlowReplyBackend : MemoryBackend {
  using MemoryBackend::MemoryBackend;
  asio::awaitable<bool> try_lock(std::string key, std::string token, Duration ttl, Deadline deadline = {}) {
    const bool taken = co_await MemoryBackend::try_lock(std::move(key), std::move(token), ttl, deadline);
    co_await sleep_for(1s);
    co_return taken;
  }
};
static_assert(Backend<SlowReplyBackend>);

/// Stores a memoized result (keys with ":f:"), then, as another process's cache_clear would,
/// writes a new clear token under `epoch_key`, then reports a timeout: the store landed,
/// but its reply was lost.
struct LostStoreReplyBackend : MemoryBackend {
  using MemoryBackend::MemoryBackend;
  std::string epoch_key;
  asio::awaitable<bool> set(std::string key, std::string value, StoreParams params, Deadline deadline = {}) {
    const bool memo = key.find(":f:") != std::string::npos;
    const bool stored = co_await MemoryBackend::set(std::move(key), std::move(value), params, deadline);
    if (!memo) co_return stored;
    StoreParams token_params;
    token_params.ttl = std::chrono::hours(1);
    const bool token = co_await MemoryBackend::set(epoch_key, "another-process", token_params, deadline);
    static_cast<void>(token);
    throw boost::system::system_error(make_error_code(errc::timeout));
  }
};
static_assert(Backend<LostStoreReplyBackend>);

/// Whether a fresh token can take `key` now (and then gives it back).
template <class B>
asio::awaitable<bool> free_now(B& backend, std::string key) {
  const bool taken = co_await backend.MemoryBackend::try_lock(key, "probe", 1h);
  if (taken) co_await backend.MemoryBackend::unlock(key, "probe");
  co_return taken;
}

}  // namespace

TEST_CASE("a lock attempt that fails after the backend took the lock releases it") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    Cache<LostReplyBackend> cache{LostReplyBackend(ex), CacheOptions{.prefix = "app"}};
    auto s = cache.tenant("acme");
    boost::system::error_code ec;
    try {
      co_await s.attempt_distributed_lock("job", 1h);
    } catch (const boost::system::system_error& e) {
      ec = e.code();
    }
    CHECK(ec == errc::timeout);
    const std::string key = "app:{acme:default}:l:job";
    bool released = false;
    const bool in_time = co_await wait_until(
        [&] {
          // Probed synchronously: the memory backend's operations complete inline.
          released = cache.backend().stats().locks == 0;
          return released;
        },
        2s);
    CHECK(in_time);
    const bool free = co_await free_now(cache.backend(), key);
    CHECK(free);  // not held for the hour of its ttl
  });
}

// The post-commit pattern across processes, when the store's reply is lost: the result may
// be cached, and a clear from elsewhere overlapped it. It must not stay cached.
TEST_CASE("a memoized result whose store timed out is erased when a clear elsewhere overlapped it") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    LostStoreReplyBackend backend(ex);
    backend.epoch_key = corocache::detail::memo_epoch_key("app:{acme:default}:", "twice");
    Cache<LostStoreReplyBackend> cache{std::move(backend), CacheOptions{.prefix = "app"}};
    auto runs = std::make_shared<int>(0);
    auto twice = cache.func_cache("twice", [runs](int x) -> asio::awaitable<int> {
      ++*runs;
      co_return 2 * x;
    });
    auto acme = cache.tenant("acme");
    const int first = co_await twice(acme, 21);
    CHECK(first == 42);  // the function succeeded: its caller has the result
    const std::string memo_key = "app:{acme:default}:f:twice:=[21]";
    auto& store = cache.backend();
    // The caller had its result before the clear check ran; wait for the check.
    const bool erased = co_await wait_until([&] { return store.stats().entries == 1; }, 2s);  // the token
    CHECK(erased);
    const auto cached = co_await store.MemoryBackend::get(memo_key);
    CHECK(cached == std::nullopt);
    const int second = co_await twice(acme, 21);
    CHECK(second == 42);
    CHECK(*runs == 2);  // computed again: the overlapped result was not served
  });
}

TEST_CASE("a cancelled lock attempt releases what the backend took") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    Cache<SlowReplyBackend> cache{SlowReplyBackend(ex), CacheOptions{.prefix = "app"}};
    auto s = cache.tenant("acme");
    auto raced = co_await (s.attempt_distributed_lock("job", 1h) || sleep_for(20ms));
    CHECK(raced.index() == 1);  // the timer won: the attempt was cancelled
    // Without the release the cancelled attempt's lock would stay for its ttl (1 h).
    const bool in_time = co_await wait_until([&] { return cache.backend().stats().locks == 0; }, 5s);
    CHECK(in_time);
    const bool free = co_await free_now(cache.backend(), std::string("app:{acme:default}:l:job"));
    CHECK(free);
  });
}

TEST_CASE("a successful or refused lock attempt releases nothing") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    Cache<MemoryBackend> cache{MemoryBackend(ex)};
    auto s = cache.tenant("acme").with_timeout(50ms);
    auto first = co_await s.attempt_distributed_lock("job", 1h);
    CHECK(first.has_value());
    auto second = co_await s.attempt_distributed_lock("job", 1h);
    CHECK_FALSE(second.has_value());
    co_await sleep_for(50ms);
    CHECK(cache.backend().stats().locks == 1);
    auto third = co_await s.attempt_distributed_lock("job", 1h);
    CHECK_FALSE(third.has_value());
  });
}

TEST_CASE("a pop cancelled after a push handed it a value gives the value back to the head") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex);
    asio::cancellation_signal signal;
    std::optional<std::string> got;
    boost::system::error_code ec;
    bool finished = false;
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          try {
            got = co_await mem.pop("q", 10s);
          } catch (const boost::system::system_error& e) {
            ec = e.code();
          }
        },
        asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr) { finished = true; }));
    const bool parked = co_await wait_until([&] { return mem.stats().waiting_pops == 1; }, 2s);
    REQUIRE(parked);
    // In one go on this thread: the push hands "first" to the parked pop (its resumption is
    // posted), then the pop is cancelled before it resumes.
    co_await mem.push("q", "first");
    co_await mem.push("q", "second");
    signal.emit(asio::cancellation_type::terminal);
    const bool done = co_await wait_until([&] { return finished; }, 2s);
    REQUIRE(done);
    CHECK(ec == asio::error::operation_aborted);
    CHECK_FALSE(got.has_value());
    // Nothing lost, order kept: the given-back value is the oldest again.
    CO_CHECK(co_await mem.pop("q", 0ms) == std::optional<std::string>("first"));
    CO_CHECK(co_await mem.pop("q", 0ms) == std::optional<std::string>("second"));
    CHECK(mem.stats().queued_values == 0);
  });
}

TEST_CASE("a pop whose deadline passes while it waits throws timeout and takes nothing") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex);
    boost::system::error_code ec;
    try {
      co_await mem.pop("q", 10s, Deadline::after(30ms));
    } catch (const boost::system::system_error& e) {
      ec = e.code();
    }
    CHECK(ec == errc::timeout);
    CHECK(mem.stats().waiting_pops == 0);
    co_await mem.push("q", "kept");
    CO_CHECK(co_await mem.pop("q", 0ms) == std::optional<std::string>("kept"));
  });
}

TEST_CASE("Duration::max() is forever in every memory timer, expiry and wait") {
  run([](asio::any_io_executor ex) -> asio::awaitable<void> {
    MemoryBackend mem(ex, MemoryOptions{.sweep_interval = Duration::max()});
    StoreParams forever;
    forever.ttl = Duration::max();
    co_await mem.set("k", "v", forever);
    CO_CHECK(co_await mem.get("k") == std::optional<std::string>("v"));
    CO_CHECK(co_await mem.expire("k", Duration::max()));
    CO_CHECK(co_await mem.get("k") == std::optional<std::string>("v"));
    CO_CHECK(co_await mem.try_lock("l", "t", Duration::max()));
    CO_CHECK(!co_await mem.try_lock("l", "u", 1s));
    // A pop with an endless wait and an endless deadline still gets a later push.
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          co_await sleep_for(30ms);
          co_await mem.push("q", "x");
        },
        asio::detached);
    CO_CHECK(co_await mem.pop("q", Duration::max(), Deadline::never()) == std::optional<std::string>("x"));
    // Deadline arithmetic saturates too.
    CHECK(Deadline::after(Duration::max()).is_never());
    CHECK(Deadline::after(1s).extended(Duration::max()).is_never());
    CHECK(detail::saturating_after(Duration::max()) == Deadline::Clock::time_point::max());
    CHECK(detail::memory::deadline_after(detail::memory::now_ns(), Duration::max()) == detail::memory::never);
  });
}

TEST_CASE("the null backend's pop saturates an endless wait against a short deadline") {
  run([](asio::any_io_executor) -> asio::awaitable<void> {
    NullBackend null;
    boost::system::error_code ec;
    try {
      co_await null.pop("q", Duration::max(), Deadline::after(20ms));
    } catch (const boost::system::system_error& e) {
      ec = e.code();
    }
    CHECK(ec == errc::timeout);
  });
}

}  // namespace memory_deadlines_test
