// A server that stops answering (SIGSTOP) while the link stays open: stall detection and the
// idle health check drop the link, abandoned requests stop counting against max_pending, and
// after SIGCONT calls succeed again with no user action.
#include "redis/fault_support.hpp"
#include "support/run.hpp"

#include <boost/asio/co_spawn.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>

namespace fault_stall_test {

using namespace corocache::test;
using corocache::errc;
using corocache::detail::redis::Connection;

namespace {

struct Tally {
  std::atomic<int> ok{0}, timeout{0}, overloaded{0}, lost{0}, not_connected{0}, other{0}, finished{0};
  void add(const Outcome& o) {
    if (!o.ec)
      ++ok;
    else if (o.ec == errc::timeout)
      ++timeout;
    else if (o.ec == errc::overloaded)
      ++overloaded;
    else if (o.ec == errc::connection_lost)
      ++lost;
    else if (o.ec == errc::not_connected)
      ++not_connected;
    else
      ++other;
    ++finished;
  }
};

/// Fires `n` GETs without waiting for them.
void fire(Connection& c, asio::any_io_executor ex, const std::shared_ptr<Tally>& tally, int n) {
  for (int i = 0; i < n; ++i)
    asio::co_spawn(ex, outcome_of(c.exec(cmd("GET", "stall:k"))),
                   [tally](std::exception_ptr, Outcome o) { tally->add(o); });
}

}  // namespace

TEST_CASE(
    "a paused server with a small max_pending: the stalled link is replaced and calls recover after "
    "SIGCONT") {
  RedisServer server;
  auto opts = fault_options(server);
  opts.max_pending = 100;
  opts.request_timeout = 50ms;
  opts.stall_timeout = 400ms;
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        Connection c(ex, opts);
        auto warm = co_await outcome_of(c.exec(cmd("SET", "stall:k", "v")));
        REQUIRE_FALSE(warm.ec);
        server.pause();
        auto during = std::make_shared<Tally>();
        // Waves of calls for well over the stall limit: first max_pending timeouts, then
        // overloaded until the stalled link is dropped, then the abandoned requests no
        // longer count and calls queue (and time out) again.
        for (int wave = 0; wave < 20; ++wave) {
          fire(c, ex, during, 150);
          co_await sleep_for(60ms);
        }
        const bool settled = co_await wait_until([&] { return during->finished == 20 * 150; }, 5s);
        CHECK(settled);
        const auto paused_stats = c.stats();
        server.resume();
        INFO("ok " << during->ok << " timeout " << during->timeout << " overloaded " << during->overloaded
                   << " lost " << during->lost << " not_connected " << during->not_connected << " other "
                   << during->other);
        CHECK(paused_stats.stalls >= 1);
        CHECK(during->timeout > 100);  // not stuck in overloaded: later waves were queued again
        CHECK(during->other == 0);

        // No user action: the next calls succeed.
        bool back = false;
        for (int i = 0; i < 100 && !back; ++i) {
          auto r = co_await outcome_of(c.exec(cmd("GET", "stall:k"), 1s));
          back = !r.ec && r.reply.str == "v";
          if (!back) co_await sleep_for(20ms);
        }
        CHECK(back);
        auto after = std::make_shared<Tally>();
        for (int i = 0; i < 5; ++i) {
          auto r = co_await outcome_of(c.exec(cmd("GET", "stall:k"), 2s));
          after->add(r);
        }
        CHECK(after->ok == 5);
        CHECK(c.stats().connects >= 2);  // the stalled link was replaced
      },
      1, std::chrono::seconds(40));
}

TEST_CASE("with default stall settings a paused server never leaves the client overloaded for good") {
  RedisServer server;
  auto opts = fault_options(server);
  opts.max_pending = 100;
  opts.request_timeout = 50ms;
  const auto stall = opts.stall_timeout;
  REQUIRE(stall > corocache::Duration::zero());
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        Connection c(ex, opts);
        auto warm = co_await outcome_of(c.exec(cmd("PING")));
        REQUIRE_FALSE(warm.ec);
        server.pause();
        auto early = std::make_shared<Tally>();
        fire(c, ex, early, 300);
        co_await wait_until([&] { return early->finished == 300; }, 5s);
        CHECK(early->overloaded == 200);
        // Past the stall limit (1.25x at most) the link is dropped: calls are taken again.
        const bool dropped = co_await wait_until([&] { return c.stats().stalls >= 1; }, stall * 2);
        CHECK(dropped);
        auto later = std::make_shared<Tally>();
        fire(c, ex, later, 50);
        co_await wait_until([&] { return later->finished == 50; }, 5s);
        CHECK(later->overloaded == 0);
        server.resume();
        bool back = false;
        for (int i = 0; i < 100 && !back; ++i) {
          auto r = co_await outcome_of(c.exec(cmd("PING"), 1s));
          back = !r.ec;
          if (!back) co_await sleep_for(20ms);
        }
        CHECK(back);
      },
      1, std::chrono::seconds(40));
}

TEST_CASE("an idle link to a paused server fails its health check and is replaced") {
  RedisServer server;
  auto opts = fault_options(server);
  opts.health_check_interval = 200ms;
  opts.stall_timeout = 300ms;
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        Connection c(ex, opts);
        auto warm = co_await outcome_of(c.exec(cmd("PING")));
        REQUIRE_FALSE(warm.ec);
        const bool pinged = co_await wait_until([&] { return c.stats().health_checks >= 1; }, 3s);
        CHECK(pinged);
        CHECK(c.stats().stalls == 0);  // answered PINGs keep the link
        server.pause();
        const bool dropped = co_await wait_until([&] { return c.stats().stalls >= 1; }, 5s);
        server.resume();
        CHECK(dropped);
        bool back = false;
        for (int i = 0; i < 100 && !back; ++i) {
          auto r = co_await outcome_of(c.exec(cmd("PING"), 1s));
          back = !r.ec && r.reply.is_status("PONG");
          if (!back) co_await sleep_for(20ms);
        }
        CHECK(back);
        CHECK(c.stats().connects >= 2);
      },
      1, std::chrono::seconds(30));
}

TEST_CASE("a blocking command announcing a long wait is not taken for a stall") {
  RedisServer server;
  auto opts = fault_options(server);
  opts.stall_timeout = 200ms;
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        Connection c(ex, opts);
        // BLPOP blocks 0.8 s server-side and announces it (server_wait).
        auto blpop = cmd("BLPOP", "stall:none", "0.8");
        blpop.server_wait = 800ms;
        auto r = co_await outcome_of(c.exec(std::move(blpop), 2s));
        CHECK_FALSE(r.ec);
        CHECK(r.reply.is_nil());
        CHECK(c.stats().stalls == 0);
        CHECK(c.stats().connects == 1);
      },
      1, std::chrono::seconds(30));
}

// A caller's long deadline (with_timeout(30s), Duration::max()) is no reason for the server
// to be silent: it must not keep a stalled link (a cluster node paused while its replica
// was promoted stayed unreachable until it was resumed).
TEST_CASE("a request with a long timeout does not keep a link to a paused server") {
  RedisServer server;
  auto opts = fault_options(server);
  opts.stall_timeout = 300ms;
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        Connection c(ex, opts);
        auto warm = co_await outcome_of(c.exec(cmd("SET", "stall:k", "v")));
        REQUIRE_FALSE(warm.ec);
        server.pause();
        auto r = co_await outcome_of(c.exec(cmd("GET", "stall:k"), 30s));
        server.resume();
        CHECK(r.ec == errc::connection_lost);  // the stall dropped the link: not its 30 s timeout
        CHECK(c.stats().stalls >= 1);
      },
      1, std::chrono::seconds(40));
}

}  // namespace fault_stall_test
