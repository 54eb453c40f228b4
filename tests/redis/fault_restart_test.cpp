// A redis-server SIGKILLed and restarted on the same port under load; a server that accepts
// the handshake and then closes.
#include "redis/fault_support.hpp"
#include "support/run.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace fault_restart_test {

using namespace corocache::test;
using corocache::errc;
using corocache::detail::redis::Connection;

TEST_CASE("1000 concurrent calls survive a server kill and restart, each within its deadline") {
  // Also with busy polling: the link may drop while the connection polls instead of reading.
  const auto busy_poll = GENERATE(0us, 200us);
  INFO("busy_poll " << busy_poll.count() << " us");
  RedisServer server;
  auto opts = fault_options(server);
  opts.request_timeout = 1s;
  opts.busy_poll = busy_poll;
  constexpr int workers = 1000;
  // Slack for a loaded 2-core machine: a call may finish this much after its deadline.
  constexpr auto slack = 1500ms;

  std::atomic<bool> stop{false};
  std::atomic<int> finished{0}, succeeded{0}, failed{0}, wrong_value{0}, unexpected_error{0}, late{0};
  std::atomic<bool> killed{false}, restarted{false};
  std::atomic<long long> first_success_after_restart_ns{-1};
  std::chrono::steady_clock::time_point restart_time{};
  std::mutex restart_mutex;

  asio::io_context io(2);
  auto conn = std::make_shared<Connection>(io.get_executor(), opts);

  // Kills and restarts the server from outside the io_context (start() blocks until PING).
  std::thread chaos([&] {
    std::this_thread::sleep_for(400ms);
    server.kill();
    killed = true;
    std::this_thread::sleep_for(500ms);
    server.start();
    {
      std::lock_guard lock(restart_mutex);
      restart_time = std::chrono::steady_clock::now();
    }
    restarted = true;
  });

  run_on(
      io,
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        for (int w = 0; w < workers; ++w) {
          asio::co_spawn(
              ex,
              [&, w]() -> asio::awaitable<void> {
                const auto key = "restart:" + std::to_string(w);
                const auto value = "v" + std::to_string(w);
                while (!stop) {
                  auto set = co_await outcome_of(conn->exec(cmd("SET", key, value)));
                  auto get = co_await outcome_of(conn->exec(cmd("GET", key)));
                  for (const auto* o : {&set, &get}) {
                    if (o->took > opts.request_timeout + slack) ++late;
                    if (!o->ec) {
                      ++succeeded;
                      if (restarted && first_success_after_restart_ns < 0) {
                        std::lock_guard lock(restart_mutex);
                        first_success_after_restart_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                             std::chrono::steady_clock::now() - restart_time)
                                                             .count();
                      }
                    } else if (o->ec == errc::timeout || o->ec == errc::connection_lost ||
                               o->ec == errc::not_connected) {
                      ++failed;
                    } else {
                      ++unexpected_error;
                    }
                  }
                  // A GET sees this worker's value, or nothing (the restarted server is empty).
                  if (!get.ec && !get.reply.is_nil() && get.reply.str != value) ++wrong_value;
                  if (get.ec) co_await sleep_for(10ms);  // don't spin while the server is down
                }
              },
              [&](std::exception_ptr e) {
                if (e) ++unexpected_error;
                ++finished;
              });
        }
        // Run until the server is back and calls succeed again, then a little longer.
        const bool back = co_await wait_until([&] { return first_success_after_restart_ns >= 0; }, 20s);
        CHECK(back);
        co_await sleep_for(300ms);
        stop = true;
        const bool all_done = co_await wait_until([&] { return finished == workers; }, 20s);
        CHECK(all_done);
      },
      2, std::chrono::seconds(60));
  chaos.join();

  INFO("succeeded " << succeeded << ", failed " << failed << ", unexpected " << unexpected_error);
  CHECK(killed);
  CHECK(restarted);
  CHECK(finished == workers);
  CHECK(unexpected_error == 0);
  CHECK(wrong_value == 0);
  CHECK(late == 0);
  CHECK(failed > 0);  // the kill was noticed
  REQUIRE(first_success_after_restart_ns >= 0);
  CHECK(std::chrono::nanoseconds(first_success_after_restart_ns.load()) < 5s);
  CHECK(conn->stats().connects >= 2);
}

TEST_CASE(
    "a call in flight when the server dies fails with connection_lost at once, one made while it is down "
    "waits for the restart") {
  RedisServer server;
  auto opts = fault_options(server);
  opts.request_timeout = 5s;
  std::thread restarter;
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        Connection c(ex, opts);
        auto warm = co_await outcome_of(c.exec(cmd("PING")));
        REQUIRE_FALSE(warm.ec);
        std::optional<Outcome> in_flight;
        asio::co_spawn(ex, outcome_of(c.exec(cmd("BLPOP", "restart:none", "10"))),
                       [&](std::exception_ptr, Outcome o) { in_flight = std::move(o); });
        co_await sleep_for(100ms);
        server.kill();
        const bool failed = co_await wait_until([&] { return in_flight.has_value(); }, 3s);
        REQUIRE(failed);
        CHECK(in_flight->ec == errc::connection_lost);
        CHECK(in_flight->took < 2s);  // at once, not at the 5 s deadline

        restarter = std::thread([&] {
          std::this_thread::sleep_for(300ms);
          server.start();
        });
        auto queued = co_await outcome_of(c.exec(cmd("SET", "restart:after", "yes")));
        CHECK_FALSE(queued.ec);
        CHECK(queued.reply.is_status("OK"));
        CHECK(queued.took >= 250ms);  // it waited for the restart
      },
      1, std::chrono::seconds(30));
  if (restarter.joinable()) restarter.join();
  CHECK(server.run({"GET", "restart:after"}) == "yes");
}

TEST_CASE("a server that accepts AUTH and then closes gets a growing reconnect delay, not a tight loop") {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  corocache::RedisOptions opts;
  opts.port = acceptor.local_endpoint().port();
  opts.password = "pw";
  opts.reconnect_min = 20ms;
  opts.reconnect_max = 250ms;
  opts.connect_timeout = 500ms;
  opts.request_timeout = 300ms;
  int accepted = 0;
  run_on(
      io,
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        // The fake server: reads the AUTH, answers +OK, closes.
        asio::co_spawn(
            ex,
            [&]() -> asio::awaitable<void> {
              for (;;) {
                auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
                if (ec) co_return;
                ++accepted;
                char buf[256];
                auto [rec, n] =
                    co_await socket.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
                if (!rec) {
                  static constexpr char ok[] = "+OK\r\n";
                  co_await asio::async_write(socket, asio::buffer(ok, 5),
                                             asio::as_tuple(asio::use_awaitable));
                }
                boost::system::error_code ignored;
                socket.close(ignored);
              }
            },
            asio::detached);
        Connection c(ex, opts);
        auto first = co_await outcome_of(c.exec(cmd("PING")));
        CHECK(first.ec);  // never answered
        co_await sleep_for(1000ms);
        const auto stats = c.stats();
        INFO("accepted " << accepted << ", connects " << stats.connects);
        CHECK(stats.connects >= 3);  // the handshake succeeded each time...
        // ...and each short-lived link doubled the delay: 20+40+80+160+250+250 ms fill ~1.3 s.
        CHECK(accepted <= 12);
        boost::system::error_code ignored;
        acceptor.close(ignored);
      },
      1, std::chrono::seconds(20));
}

}  // namespace fault_restart_test
