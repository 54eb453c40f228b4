// A redis-server stopped with SIGSTOP: calls time out on schedule; after SIGCONT all is well.
#include "redis/fault_support.hpp"
#include "support/run.hpp"

#include <boost/asio/co_spawn.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <vector>

namespace fault_pause_test {

using namespace corocache::test;
using corocache::errc;
using corocache::detail::redis::Connection;

TEST_CASE("calls to a paused server time out on schedule and succeed again after it resumes") {
  RedisServer server;
  auto opts = fault_options(server);
  opts.request_timeout = 300ms;
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        Connection c(ex, opts);
        auto warm = co_await outcome_of(c.exec(cmd("SET", "pause:k", "before")));
        REQUIRE_FALSE(warm.ec);

        server.pause();
        constexpr int calls = 50;
        std::vector<Outcome> results(calls);
        std::atomic<int> finished{0};
        for (int i = 0; i < calls; ++i)
          asio::co_spawn(ex, outcome_of(c.exec(cmd("GET", "pause:k"))),
                         [&, i](std::exception_ptr, Outcome o) {
                           results[i] = std::move(o);
                           ++finished;
                         });
        // A per-call deadline shorter than the default is honoured too.
        auto short_call = co_await outcome_of(c.exec(cmd("GET", "pause:k"), 100ms));
        const bool all = co_await wait_until([&] { return finished == calls; }, 5s);
        server.resume();
        REQUIRE(all);
        CHECK(short_call.ec == errc::timeout);
        CHECK(short_call.took >= 100ms);
        CHECK(short_call.took < 300ms + 700ms);
        for (const auto& r : results) {
          CHECK(r.ec == errc::timeout);
          CHECK(r.took >= 300ms);
          CHECK(r.took < 300ms + 1500ms);  // on schedule, with slack for a loaded machine
        }

        // After SIGCONT the late replies are discarded and new calls get their own replies.
        std::vector<Outcome> after;
        for (int i = 0; i < 20; ++i) {
          const auto key = "pause:after:" + std::to_string(i);
          auto set = co_await outcome_of(c.exec(cmd("SET", key, std::to_string(i)), 3s));
          auto get = co_await outcome_of(c.exec(cmd("GET", key), 3s));
          CHECK_FALSE(set.ec);
          CHECK_FALSE(get.ec);
          CHECK(get.reply.str == std::to_string(i));
        }
        CHECK(c.stats().connects == 1);  // a pause is not a disconnect
      },
      1, std::chrono::seconds(30));
}

}  // namespace fault_pause_test
