// Rejected credentials: clear auth_failed errors that never contain the password, and no
// reconnect storm (connection attempts are counted by the server).
#include "redis/fault_support.hpp"
#include "support/run.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace fault_auth_test {

using namespace corocache::test;
using corocache::errc;
using corocache::detail::redis::Connection;

namespace {

std::uint64_t connections_received(RedisServer& server) {
  const auto info = server.run({"INFO", "stats"});
  const std::string field = "total_connections_received:";
  const auto at = info.find(field);
  REQUIRE(at != std::string::npos);
  return std::stoull(info.substr(at + field.size()));
}

/// Calls repeatedly for `period`; every call must fail with auth_failed and a message that
/// names `expect` and never contains `password`. Returns the number of calls made.
asio::awaitable<int> hammer(Connection& c, std::chrono::milliseconds period, const std::string& expect,
                            const std::string& password) {
  const auto until = std::chrono::steady_clock::now() + period;
  int calls = 0;
  while (std::chrono::steady_clock::now() < until) {
    std::string what;
    boost::system::error_code ec;
    try {
      co_await c.exec(cmd("GET", "k"));
    } catch (const boost::system::system_error& e) {
      ec = e.code();
      what = e.what();
    }
    ++calls;
    {
      INFO(what);
      CHECK(ec == errc::auth_failed);
      CHECK_THAT(what, Catch::Contains(expect));
      CHECK(what.find(password) == std::string::npos);
    }
    co_await sleep_for(20ms);
  }
  co_return calls;
}

}  // namespace

TEST_CASE("a wrong password fails with auth_failed, without the password and without a reconnect storm") {
  RedisServer server({"--requirepass", "right-password"});
  auto opts = fault_options(server);
  opts.password = "Wr0ngPassw0rd";
  opts.reconnect_max = 300ms;
  const auto before = connections_received(server);
  int calls = 0;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    Connection c(ex, opts);
    calls = co_await hammer(c, 1500ms, "AUTH rejected", opts.password);
    // At most one attempt per reconnect_max (plus the first), however many calls were made.
    CHECK(c.stats().connect_attempts <= 1500 / 300 + 2);
  });
  const auto attempts = connections_received(server) - before - 1;  // minus our INFO
  INFO("calls " << calls << ", server saw " << attempts << " connections");
  CHECK(calls > 20);
  CHECK(attempts >= 2);               // it does retry...
  CHECK(attempts <= 1500 / 300 + 2);  // ...but slowly
}

TEST_CASE("a disabled ACL user fails with auth_failed naming the user, not the password") {
  RedisServer server;
  server.run({"ACL", "SETUSER", "blocked", "off", ">blocked-pw-77"});
  auto opts = fault_options(server);
  opts.user = "blocked";
  opts.password = "blocked-pw-77";
  opts.reconnect_max = 300ms;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    Connection c(ex, opts);
    co_await hammer(c, 700ms, "user 'blocked'", opts.password);
    CHECK(c.stats().connect_attempts <= 700 / 300 + 2);
  });
}

TEST_CASE("an ACL user without rights to SELECT its database fails with auth_failed") {
  RedisServer server;
  server.run({"ACL", "SETUSER", "weak", "on", ">weak-pw-42", "~*", "-@all"});
  auto opts = fault_options(server);
  opts.user = "weak";
  opts.password = "weak-pw-42";
  opts.db = 2;
  opts.reconnect_max = 300ms;
  const auto before = connections_received(server);
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    Connection c(ex, opts);
    co_await hammer(c, 900ms, "SELECT 2 rejected", opts.password);
  });
  const auto attempts = connections_received(server) - before - 1;
  CHECK(attempts <= 900 / 300 + 2);
}

TEST_CASE("an ACL user without command rights gets NOPERM error replies, not a dead connection") {
  RedisServer server;
  server.run({"ACL", "SETUSER", "reader", "on", ">reader-pw", "~*", "-@all", "+get"});
  auto opts = fault_options(server);
  opts.user = "reader";
  opts.password = "reader-pw";
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    Connection c(ex, opts);
    auto denied = co_await outcome_of(c.exec(cmd("SET", "k", "v")));
    REQUIRE_FALSE(denied.ec);
    CHECK(denied.reply.is_error("NOPERM"));
    auto allowed = co_await outcome_of(c.exec(cmd("GET", "k")));
    REQUIRE_FALSE(allowed.ec);
    CHECK(allowed.reply.is_nil());
    CHECK(c.stats().connects == 1);
  });
}

TEST_CASE("a connection recovers once the password becomes valid") {
  RedisServer server({"--requirepass", "old-pw"});
  auto opts = fault_options(server);
  opts.password = "new-pw";
  opts.reconnect_max = 200ms;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    Connection c(ex, opts);
    auto rejected = co_await outcome_of(c.exec(cmd("PING")));
    CHECK(rejected.ec == errc::auth_failed);
    server.run({"CONFIG", "SET", "requirepass", "new-pw"});
    bool ok = false;
    for (int i = 0; i < 100 && !ok; ++i) {
      auto r = co_await outcome_of(c.exec(cmd("PING")));
      ok = !r.ec && r.reply.is_status("PONG");
      if (!ok) co_await sleep_for(20ms);
    }
    CHECK(ok);
  });
}

}  // namespace fault_auth_test
