// corocache/testing.hpp (run a coroutine with a deadline) and MemoryBackend::close().

#include <corocache/cache.hpp>
#include <corocache/memory_backend.hpp>
#include <corocache/testing.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST_CASE("testing::run returns the coroutine's value, with a memory backend alive inside it") {
  const std::string value =
      corocache::testing::run([](asio::any_io_executor ex) -> asio::awaitable<std::string> {
        corocache::Cache<corocache::MemoryBackend> cache{corocache::MemoryBackend{ex}, {.prefix = "t"}};
        auto s = cache.tenant("acme");
        co_await s.set_key("k", "v", 10min);
        auto got = co_await s.get_key("k");
        co_return got.value_or("<miss>");
      });
  CHECK(value == "v");
}

TEST_CASE("testing::run runs a void coroutine to its end") {
  int steps = 0;
  corocache::testing::run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    asio::steady_timer timer(ex, 1ms);
    co_await timer.async_wait(asio::use_awaitable);
    steps = 1;
  });
  CHECK(steps == 1);
}

TEST_CASE("testing::run rethrows what the coroutine threw") {
  auto body = [](asio::any_io_executor) -> asio::awaitable<int> {
    throw std::logic_error("from the test body");
    co_return 1;
  };
  CHECK_THROWS_AS(corocache::testing::run(body), std::logic_error);
  CHECK_THROWS_WITH(corocache::testing::run(body), "from the test body");
}

TEST_CASE("testing::run throws errc::timeout when the coroutine outlives its limit") {
  auto body = [](asio::any_io_executor ex) -> asio::awaitable<void> {
    asio::steady_timer timer(ex, 1h);
    co_await timer.async_wait(asio::use_awaitable);
  };
  try {
    corocache::testing::run(body, 20ms);
    FAIL("run returned although the coroutine was still waiting");
  } catch (const boost::system::system_error& e) {
    CHECK(e.code() == corocache::errc::timeout);
  }
}

TEST_CASE("io_context::run returns while a closed MemoryBackend lives") {
  asio::io_context io;
  corocache::MemoryBackend backend{io.get_executor(), {.sweep_interval = 10ms}};
  std::optional<std::string> got;
  corocache::StoreParams params;
  params.ttl = 1min;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await backend.set("k", "v", params);
        got = co_await backend.get("k");
      },
      asio::detached);
  backend.close();
  backend.close();  // idempotent
  // Without close() the sweep keeps the io_context busy and run_for returns only at its
  // limit, not stopped.
  io.run_for(10s);
  CHECK(io.stopped());
  CHECK(got == std::optional<std::string>("v"));
}
