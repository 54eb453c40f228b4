// A fake server on loopback sends malformed, truncated, oversized and too deeply nested
// replies: the call fails with protocol_error (or connection_lost when the peer hangs up
// mid-reply), the link is reset, nothing crashes, nothing is buffered without bound, and
// the next call works on a fresh connection.
#include "redis/fault_support.hpp"
#include "support/run.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

using namespace corocache::test;
using corocache::errc;
using corocache::detail::redis::Connection;

namespace {

/// Accepts connections on 127.0.0.1. On its first connection, answers the first request
/// with `first_reply` (then hangs up if `hang_up`); afterwards every read is answered with
/// "+OK\r\n". Counts connections and the bytes it sent, and notices when a client closes.
class FakeServer {
 public:
  FakeServer(asio::any_io_executor ex, std::string first_reply, bool hang_up = false)
      : state_(std::make_shared<State>(ex)) {
    state_->first_reply = std::move(first_reply);
    state_->hang_up = hang_up;
    asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    state_->acceptor.open(ep.protocol());
    state_->acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true));
    state_->acceptor.bind(ep);
    state_->acceptor.listen();
    asio::co_spawn(ex, accept_loop(state_), asio::detached);
  }
  ~FakeServer() {
    boost::system::error_code ignored;
    state_->acceptor.close(ignored);
    for (auto& s : state_->sockets) s->close(ignored);
  }

  std::uint16_t port() const { return state_->acceptor.local_endpoint().port(); }
  int connections() const { return state_->connections; }
  int closed_by_client() const { return state_->closed_by_client; }

  /// Options pointing at this server with small limits.
  corocache::RedisOptions options() const {
    corocache::RedisOptions o;
    o.port = port();
    o.request_timeout = 2s;
    o.connect_timeout = 500ms;
    o.reconnect_min = 10ms;
    o.reconnect_max = 100ms;
    o.max_reply_bytes = 64 * 1024;
    o.max_reply_elements = 1000;
    return o;
  }

 private:
  struct State {
    explicit State(asio::any_io_executor ex) : acceptor(ex) {}
    asio::ip::tcp::acceptor acceptor;
    std::vector<std::shared_ptr<asio::ip::tcp::socket>> sockets;
    std::string first_reply;
    bool hang_up = false;
    std::atomic<int> connections{0};
    std::atomic<int> closed_by_client{0};
  };

  static asio::awaitable<void> accept_loop(std::shared_ptr<State> st) {
    for (;;) {
      auto [ec, socket] = co_await st->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      auto s = std::make_shared<asio::ip::tcp::socket>(std::move(socket));
      st->sockets.push_back(s);
      const int index = st->connections++;
      asio::co_spawn(st->acceptor.get_executor(), serve(st, s, index), asio::detached);
    }
  }

  static asio::awaitable<void> serve(std::shared_ptr<State> st, std::shared_ptr<asio::ip::tcp::socket> s,
                                     int index) {
    char buf[4096];
    bool first = true;
    for (;;) {
      auto [ec, n] = co_await s->async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (ec == asio::error::eof || ec == asio::error::connection_reset) ++st->closed_by_client;
        co_return;
      }
      const std::string reply = (index == 0 && first) ? st->first_reply : std::string("+OK\r\n");
      first = false;
      auto [wec, wn] =
          co_await asio::async_write(*s, asio::buffer(reply), asio::as_tuple(asio::use_awaitable));
      if (wec) {  // the client reset the link while we were still sending
        ++st->closed_by_client;
        co_return;
      }
      if (index == 0 && st->hang_up) {
        boost::system::error_code ignored;
        s->shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        s->close(ignored);
        co_return;
      }
    }
  }

  std::shared_ptr<State> state_;
};

/// Sends one GET to a fake server answering `reply`; checks the error and the recovery.
void expect_failure_then_recovery(const std::string& reply, errc expected, bool hang_up = false,
                                  const char* message_part = nullptr) {
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        FakeServer fake(ex, reply, hang_up);
        Connection c(ex, fake.options());
        std::string what;
        auto first = co_await outcome_of(c.exec(cmd("GET", "k")));
        CHECK(first.ec == expected);
        CHECK(first.took < 1500ms);  // detected at once, not at the deadline
        if (message_part) {
          try {
            // Same reply again is not sent (the fake answers +OK after the first), so
            // reproduce the message through a fresh connection.
            FakeServer again(ex, reply, hang_up);
            Connection c2(ex, again.options());
            co_await c2.exec(cmd("GET", "k"));
          } catch (const boost::system::system_error& e) {
            what = e.what();
          }
          CHECK_THAT(what, Catch::Contains(message_part));
        }
        // The link was reset: the fake server saw its first connection closed.
        const bool reset = co_await wait_until([&] { return fake.closed_by_client() >= 1 || hang_up; }, 2s);
        CHECK(reset);
        // The next call works on a fresh connection.
        auto second = co_await outcome_of(c.exec(cmd("GET", "k")));
        CHECK_FALSE(second.ec);
        CHECK(second.reply.is_status("OK"));
        CHECK(fake.connections() >= 2);
      },
      1, std::chrono::seconds(20));
}

}  // namespace

TEST_CASE("a malformed reply fails with protocol_error and resets the connection") {
  expect_failure_then_recovery("?this is not RESP\r\n", errc::protocol_error);
}

TEST_CASE("a bad bulk length fails with protocol_error") {
  expect_failure_then_recovery("$-7\r\n", errc::protocol_error);
}

TEST_CASE("a reply truncated by the server hanging up fails with connection_lost") {
  expect_failure_then_recovery("$10\r\nabc", errc::connection_lost, /*hang_up=*/true);
}

TEST_CASE("a huge declared bulk length fails at once instead of being buffered") {
  expect_failure_then_recovery("$999999999999\r\n", errc::protocol_error, false, "max_reply_bytes");
}

TEST_CASE("a bulk string just over max_reply_bytes is refused from its header") {
  expect_failure_then_recovery("$65537\r\n" + std::string(1000, 'x'), errc::protocol_error);
}

TEST_CASE("too deeply nested arrays fail with protocol_error") {
  std::string nested;
  for (int i = 0; i < 20; ++i) nested += "*1\r\n";
  nested += ":1\r\n";
  expect_failure_then_recovery(nested, errc::protocol_error);
}

TEST_CASE("an array with a huge element count fails with protocol_error") {
  expect_failure_then_recovery("*2000000000\r\n", errc::protocol_error, false, "max_reply_elements");
}

TEST_CASE("an array count beyond any integer fails with protocol_error") {
  expect_failure_then_recovery("*99999999999999999999\r\n", errc::protocol_error);
}

TEST_CASE("an endless status line is cut off at max_reply_bytes") {
  expect_failure_then_recovery("+" + std::string(200 * 1024, 'x'), errc::protocol_error);
}

TEST_CASE("many small elements cannot exceed max_reply_bytes") {
  std::string many = "*1000\r\n";
  for (int i = 0; i < 1000; ++i) many += "$100\r\n" + std::string(100, 'y') + "\r\n";
  expect_failure_then_recovery(many, errc::protocol_error);
}

TEST_CASE("a reply nobody asked for resets the connection without harming later calls") {
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        FakeServer fake(ex, ":1\r\n:2\r\n");  // the second reply has no owner
        Connection c(ex, fake.options());
        auto first = co_await outcome_of(c.exec(cmd("GET", "k")));
        CHECK_FALSE(first.ec);
        CHECK(first.reply.integer == 1);
        const bool reset = co_await wait_until([&] { return fake.closed_by_client() >= 1; }, 2s);
        CHECK(reset);
        auto second = co_await outcome_of(c.exec(cmd("GET", "k")));
        CHECK_FALSE(second.ec);
        CHECK(second.reply.is_status("OK"));
      },
      1, std::chrono::seconds(20));
}
