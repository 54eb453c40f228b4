// Requests abandoned mid-flight (deadline or cancellation) must not shift replies: their
// late replies are discarded, never handed to the next caller.
#include "redis/fault_support.hpp"
#include "support/run.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <vector>

namespace fault_abandon_test {

using namespace corocache::test;
using corocache::errc;
using corocache::detail::redis::Connection;
using corocache::detail::redis::Request;

namespace {

constexpr int keys = 1000;

void load_keys(RedisServer& server) {
  std::vector<std::string> mset{"MSET"};
  for (int i = 0; i < keys; ++i) {
    mset.push_back("abandon:" + std::to_string(i));
    mset.push_back("value-" + std::to_string(i));
  }
  server.run(mset);
}

/// 1000 concurrent GETs of distinct keys; returns how many got exactly their own value.
asio::awaitable<int> get_all(Connection& c) {
  auto ex = co_await asio::this_coro::executor;
  std::atomic<int> own{0}, finished{0};
  for (int i = 0; i < keys; ++i)
    asio::co_spawn(ex, outcome_of(c.exec(cmd("GET", "abandon:" + std::to_string(i)), 5s)),
                   [&, i](std::exception_ptr, Outcome o) {
                     if (!o.ec && o.reply.str == "value-" + std::to_string(i)) ++own;
                     ++finished;
                   });
  co_await wait_until([&] { return finished == keys; }, 20s);
  co_return own.load();
}

}  // namespace

TEST_CASE("after a request times out mid-flight, 1000 GETs of distinct keys each get their own value") {
  RedisServer server;
  load_keys(server);
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        Connection c(ex, fault_options(server));
        // BLPOP holds the reply for 300 ms server-side; the caller gives up after 50 ms.
        auto timed_out = co_await outcome_of(c.exec(cmd("BLPOP", "abandon:none", "0.3"), 50ms));
        CHECK(timed_out.ec == errc::timeout);
        // A multi-command request abandoned mid-flight owns all of its replies.
        Request tx;
        tx.add("MULTI");
        tx.add("GET", "abandon:1");
        tx.add("EXEC");
        tx.add("BLPOP", "abandon:none", "0.2");
        auto multi = co_await outcome_of(c.exec(std::move(tx), 50ms));
        CHECK(multi.ec == errc::timeout);
        const int own = co_await get_all(c);
        CHECK(own == keys);
      },
      1, std::chrono::seconds(40));
}

TEST_CASE("after a request is cancelled mid-flight, 1000 GETs of distinct keys each get their own value") {
  using namespace asio::experimental::awaitable_operators;
  RedisServer server;
  load_keys(server);
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        Connection c(ex, fault_options(server));
        asio::steady_timer timer(ex, 50ms);
        auto raced =
            co_await (c.exec(cmd("BLPOP", "abandon:none", "0.3")) || timer.async_wait(asio::use_awaitable));
        CHECK(raced.index() == 1);
        // Explicit per-operation cancellation reports operation_aborted.
        asio::cancellation_signal signal;
        std::optional<Outcome> cancelled;
        asio::co_spawn(ex, outcome_of(c.exec(cmd("BLPOP", "abandon:none", "0.3"))),
                       asio::bind_cancellation_slot(signal.slot(),
                                                    [&](std::exception_ptr, Outcome o) { cancelled = o; }));
        co_await sleep_for(30ms);
        signal.emit(asio::cancellation_type::terminal);
        const bool done = co_await wait_until([&] { return cancelled.has_value(); }, 2s);
        REQUIRE(done);
        CHECK(cancelled->ec == asio::error::operation_aborted);
        CHECK(cancelled->took < 1s);
        const int own = co_await get_all(c);
        CHECK(own == keys);
      },
      1, std::chrono::seconds(40));
}

}  // namespace fault_abandon_test
