// A fake server on loopback sends malformed, truncated, oversized, endless, unsolicited and
// too deeply nested replies. Malformed input fails the call with protocol_error (or
// connection_lost when the peer hangs up mid-reply), the link is reset, nothing crashes,
// nothing is buffered without bound, and the next call works on a fresh connection. A reply
// that is merely too large fails only its own call with reply_too_large: the link and every
// other call in flight on it are kept. A request written within its send window waits out a
// slow reply for its whole timeout. The last cases do the same against a real redis-server.
#include "redis/fault_support.hpp"
#include "support/run.hpp"

#include <corocache/redis/detail/connect_io.hpp>
#include <corocache/redis/detail/reader.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace fault_protocol_test {

using namespace corocache::test;
using corocache::errc;
using corocache::detail::redis::Connection;
using corocache::detail::redis::Reader;
using corocache::detail::redis::ReaderLimits;
using corocache::detail::redis::Reply;
using corocache::detail::redis::Request;

namespace {

/// The bytes the fake server answers to the `nth` command (from 0) of connection `conn`
/// (from 0), given the command's arguments.
using Responder = std::function<std::string(const std::vector<std::string>& command, int conn, int nth)>;

std::string bulk(const std::string& payload) {
  return "$" + std::to_string(payload.size()) + "\r\n" + payload + "\r\n";
}

/// Accepts connections on 127.0.0.1, decodes the commands it receives and answers each with
/// what `responder` returns (all the answers to one read leave in one write). With
/// `hang_up`, closes its first connection after the first answer. Counts connections and
/// the bytes it sent, and notices when a client closes.
class FakeServer {
 public:
  FakeServer(asio::any_io_executor ex, Responder responder, bool hang_up = false)
      : state_(std::make_shared<State>(ex)) {
    state_->responder = std::move(responder);
    state_->hang_up = hang_up;
    asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    state_->acceptor.open(ep.protocol());
    state_->acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true));
    state_->acceptor.bind(ep);
    state_->acceptor.listen();
    asio::co_spawn(ex, accept_loop(state_), asio::detached);
  }
  /// Answers the first command of the first connection with `first_reply`, every other
  /// command with +OK.
  FakeServer(asio::any_io_executor ex, std::string first_reply, bool hang_up = false)
      : FakeServer(
            std::move(ex),
            [first = std::move(first_reply)](const std::vector<std::string>&, int conn, int nth) {
              return conn == 0 && nth == 0 ? first : std::string("+OK\r\n");
            },
            hang_up) {}
  ~FakeServer() {
    boost::system::error_code ignored;
    state_->acceptor.close(ignored);
    for (auto& s : state_->sockets) s->close(ignored);
  }

  std::uint16_t port() const { return state_->acceptor.local_endpoint().port(); }
  int connections() const { return state_->connections; }
  int closed_by_client() const { return state_->closed_by_client; }
  std::size_t bytes_sent() const { return state_->bytes_sent; }
  /// Holds back the answers to a read containing a command for which `delay` says so.
  void delay_answers(std::function<std::chrono::milliseconds(const std::vector<std::string>&)> delay) {
    state_->delay = std::move(delay);
  }

  /// Options pointing at this server with small limits.
  corocache::RedisOptions options() const {
    corocache::RedisOptions o;
    o.port = port();
    // Long: a failure must come from the reader, not the deadline, even on a loaded
    // machine under ThreadSanitizer. Cases about deadlines pass their own timeout.
    o.request_timeout = 10s;
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
    Responder responder;
    std::function<std::chrono::milliseconds(const std::vector<std::string>&)> delay;
    bool hang_up = false;
    std::atomic<int> connections{0};
    std::atomic<int> closed_by_client{0};
    std::atomic<std::size_t> bytes_sent{0};
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
    std::vector<char> buf(64 * 1024);
    Reader commands(ReaderLimits{.max_bytes = std::size_t{1} << 30, .max_elements = 1 << 20});
    int nth = 0;
    for (;;) {
      auto [ec, n] = co_await s->async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (ec == asio::error::eof || ec == asio::error::connection_reset) ++st->closed_by_client;
        co_return;
      }
      commands.feed(buf.data(), n);
      std::string answer;
      std::chrono::milliseconds hold{0};
      Reply command;
      while (commands.next(command) == Reader::Status::reply) {
        std::vector<std::string> argv;
        for (const auto& arg : command.elements) argv.push_back(arg.str);
        answer += st->responder(argv, index, nth++);
        if (st->delay) hold = std::max(hold, st->delay(argv));
      }
      if (answer.empty()) continue;
      if (hold > 0ms) co_await sleep_for(hold);
      auto [wec, wn] =
          co_await asio::async_write(*s, asio::buffer(answer), asio::as_tuple(asio::use_awaitable));
      st->bytes_sent += wn;
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

/// Runs all `requests` on `c` at once (each its own coroutine); their outcomes, in order.
asio::awaitable<std::vector<Outcome>> all_at_once(Connection& c, std::vector<Request> requests) {
  struct Shared {
    std::vector<Outcome> outcomes;
    std::size_t finished = 0;
  };
  auto shared = std::make_shared<Shared>();
  shared->outcomes.resize(requests.size());
  auto ex = co_await asio::this_coro::executor;
  for (std::size_t i = 0; i < requests.size(); ++i)
    asio::co_spawn(ex, outcome_of(c.exec(std::move(requests[i]))),
                   [shared, i](std::exception_ptr, Outcome o) {
                     shared->outcomes[i] = std::move(o);
                     ++shared->finished;
                   });
  std::function<bool()> all_finished = [shared] { return shared->finished == shared->outcomes.size(); };
  const bool all = co_await wait_until(all_finished, 20s);
  CHECK(all);
  co_return shared->outcomes;
}

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
        CHECK(first.took < 5s);  // detected by the reader, well before the 10 s deadline
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

TEST_CASE("a bulk string without its CRLF fails with protocol_error") {
  expect_failure_then_recovery("$3\r\nabcdef\r\n", errc::protocol_error);
}

TEST_CASE("a reply truncated by the server hanging up fails with connection_lost") {
  expect_failure_then_recovery("$10\r\nabc", errc::connection_lost, /*hang_up=*/true);
}

TEST_CASE("a huge declared bulk length fails at once instead of being buffered or skipped") {
  // Beyond what is worth skipping (ReaderLimits::max_skip_bytes): a new link is cheaper.
  expect_failure_then_recovery("$999999999999\r\n", errc::protocol_error, false, "max_reply_bytes");
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

TEST_CASE("an endless status line is cut off at the line limit") {
  expect_failure_then_recovery("+" + std::string(200 * 1024, 'x'), errc::protocol_error, false,
                               "longer than");
}

TEST_CASE("an endless integer or length line is cut off after a few bytes") {
  expect_failure_then_recovery(":" + std::string(10000, '1'), errc::protocol_error);
  expect_failure_then_recovery("$" + std::string(10000, '1'), errc::protocol_error);
}

TEST_CASE("a status line of 40 MB without CRLF: the link is dropped after a bounded read") {
  const std::size_t total = 40u << 20;
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        FakeServer fake(ex, "+" + std::string(total - 1, 'x'));
        auto options = fake.options();
        options.max_reply_bytes = corocache::RedisOptions{}.max_reply_bytes;  // 64 MiB: the line limit cuts
        Connection c(ex, options);
        auto first = co_await outcome_of(c.exec(cmd("GET", "k")));
        CHECK(first.ec == errc::protocol_error);
        CHECK(first.took < 5s);  // detected by the reader, well before the 10 s deadline
        // The client closed the link while the server was still sending: it read no more
        // than the line limit plus what the kernel buffers held, not 40 MB.
        const bool closed = co_await wait_until([&] { return fake.closed_by_client() >= 1; }, 5s);
        CHECK(closed);
        INFO("the fake server sent " << fake.bytes_sent() << " of " << total << " bytes");
        CHECK(fake.bytes_sent() < total / 2);
        auto second = co_await outcome_of(c.exec(cmd("GET", "k")));
        CHECK_FALSE(second.ec);
        CHECK(second.reply.is_status("OK"));
        CHECK(fake.connections() == 2);
      },
      1, std::chrono::seconds(30));
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

TEST_CASE("an unsolicited reply is never handed to the call made right after the last answered one") {
  // The server answers GET a with two replies in one write. The caller of GET a resumes
  // while the second reply is already in the client's buffer and at once sends GET b: that
  // reply cannot be GET b's (it arrived before GET b left). It resets the link instead.
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        FakeServer fake(ex, [](const std::vector<std::string>& command, int conn, int nth) {
          if (conn == 0 && nth == 0) return std::string(":1\r\n$6\r\nforged\r\n");
          return bulk("value-of-" + command.back());
        });
        Connection c(ex, fake.options());
        auto a = co_await outcome_of(c.exec(cmd("GET", "a")));
        auto b = co_await outcome_of(c.exec(cmd("GET", "b")));
        CHECK_FALSE(a.ec);
        CHECK(a.reply.integer == 1);
        CHECK(b.reply.str != "forged");
        // GET b was queued on the link that broke (never sent): it fails, or it ran on the
        // next link; either way with nobody else's reply.
        INFO("GET b: " << b.ec.message() << " " << b.reply);
        CHECK((b.ec == errc::protocol_error || (!b.ec && b.reply.str == "value-of-b")));
        auto c3 = co_await outcome_of(c.exec(cmd("GET", "c")));
        CHECK_FALSE(c3.ec);
        CHECK(c3.reply.str == "value-of-c");
        CHECK(fake.connections() == 2);
        CHECK(fake.closed_by_client() >= 1);
      },
      1, std::chrono::seconds(20));
}

TEST_CASE("a reply sent along with the handshake's is never handed to the first caller") {
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        FakeServer fake(ex, [](const std::vector<std::string>& command, int conn, int) {
          if (command.front() == "AUTH")
            return std::string(conn == 0 ? "+OK\r\n$6\r\nforged\r\n" : "+OK\r\n");
          return bulk("value-of-" + command.back());
        });
        auto options = fake.options();
        options.password = "secret";
        Connection c(ex, options);
        auto first = co_await outcome_of(c.exec(cmd("GET", "k")));
        CHECK_FALSE(first.ec);
        CHECK(first.reply.str == "value-of-k");
        CHECK(fake.connections() == 2);  // the first link was dropped during its handshake
        CHECK(c.stats().connects == 1);
      },
      1, std::chrono::seconds(20));
}

// --- too large, not malformed: only the one call fails, the link stays -----------------------

/// Sends GET k to a fake server whose first answer is `reply` (complete but too large):
/// the call fails with reply_too_large and the next call works on the same link.
void expect_too_large_on_same_link(const std::string& reply) {
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        FakeServer fake(ex, reply);
        Connection c(ex, fake.options());
        auto first = co_await outcome_of(c.exec(cmd("GET", "k")));
        CHECK(first.ec == errc::reply_too_large);
        auto second = co_await outcome_of(c.exec(cmd("GET", "k")));
        CHECK_FALSE(second.ec);
        CHECK(second.reply.is_status("OK"));
        CHECK(fake.connections() == 1);
        CHECK(fake.closed_by_client() == 0);
        CHECK(c.stats().connects == 1);
      },
      1, std::chrono::seconds(20));
}

TEST_CASE("a bulk string just over max_reply_bytes fails only its call with reply_too_large") {
  expect_too_large_on_same_link(bulk(std::string(64 * 1024 + 1, 'x')));
}

TEST_CASE("a value of 8 MB over max_reply_bytes is skipped, the link kept") {
  expect_too_large_on_same_link(bulk(std::string(8 << 20, 'x')));
}

TEST_CASE("many small elements over max_reply_bytes fail only their call") {
  std::string many = "*1000\r\n";
  for (int i = 0; i < 1000; ++i) many += bulk(std::string(100, 'y'));
  expect_too_large_on_same_link(many);
}

TEST_CASE("an array over max_reply_elements, nested arrays included, fails only its call") {
  std::string many = "*1001\r\n";
  for (int i = 0; i < 1001; ++i) many += "*2\r\n:1\r\n*1\r\n+x\r\n";
  expect_too_large_on_same_link(many);
}

TEST_CASE("a reply_too_large message names the limit") {
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        FakeServer fake(ex, bulk(std::string(100000, 'x')));
        Connection c(ex, fake.options());
        std::string what;
        try {
          co_await c.exec(cmd("GET", "k"));
        } catch (const boost::system::system_error& e) {
          CHECK(e.code() == errc::reply_too_large);
          what = e.what();
        }
        CHECK_THAT(what, Catch::Contains("max_reply_bytes"));
      },
      1, std::chrono::seconds(20));
}

TEST_CASE("an oversized value fails only its caller while 200 other calls in flight on the link succeed") {
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        FakeServer fake(ex, [](const std::vector<std::string>& command, int, int) {
          const std::string& key = command.back();
          if (key == "big") return bulk(std::string(256 * 1024, 'B'));
          if (command.front() == "LRANGE") {  // 2000 elements: over max_reply_elements
            std::string reply = "*2000\r\n";
            for (int i = 0; i < 2000; ++i) reply += ":7\r\n";
            return reply;
          }
          return bulk("value-of-" + key);
        });
        Connection c(ex, fake.options());
        std::vector<Request> requests;
        for (int i = 0; i < 200; ++i) {
          if (i == 50) requests.push_back(cmd("GET", "big"));
          if (i == 150) requests.push_back(cmd("LRANGE", "list", "0", "-1"));
          requests.push_back(cmd("GET", "k" + std::to_string(i)));
        }
        auto outcomes = co_await all_at_once(c, std::move(requests));
        REQUIRE(outcomes.size() == 202);
        CHECK(outcomes[50].ec == errc::reply_too_large);
        CHECK(outcomes[151].ec == errc::reply_too_large);
        int own = 0;
        for (std::size_t i = 0; i < outcomes.size(); ++i) {
          if (i == 50 || i == 151) continue;
          const int key = static_cast<int>(i) - (i > 50 ? 1 : 0) - (i > 151 ? 1 : 0);
          if (!outcomes[i].ec && outcomes[i].reply.str == "value-of-k" + std::to_string(key)) ++own;
        }
        CHECK(own == 200);
        CHECK(c.stats().connects == 1);
        CHECK(fake.connections() == 1);
        CHECK(fake.closed_by_client() == 0);
      },
      1, std::chrono::seconds(30));
}

TEST_CASE("the too-large reply of a request that timed out is discarded and the link stays") {
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        FakeServer fake(ex, [](const std::vector<std::string>& command, int, int) {
          const std::string& key = command.back();
          return key == "big" ? bulk(std::string(256 * 1024, 'B')) : bulk("value-of-" + key);
        });
        fake.delay_answers(
            [](const std::vector<std::string>& command) { return command.back() == "big" ? 300ms : 0ms; });
        Connection c(ex, fake.options());
        auto warm = co_await outcome_of(c.exec(cmd("GET", "warm")));
        CHECK(warm.reply.str == "value-of-warm");
        auto big = co_await outcome_of(c.exec(cmd("GET", "big"), 100ms));
        CHECK(big.ec == errc::timeout);
        auto next = co_await outcome_of(c.exec(cmd("GET", "next")));  // answered after big's reply
        CHECK_FALSE(next.ec);
        CHECK(next.reply.str == "value-of-next");
        CHECK(c.stats().connects == 1);
        CHECK(fake.connections() == 1);
      },
      1, std::chrono::seconds(20));
}

TEST_CASE("a request written within its send window gets its whole timeout for a slow reply") {
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        FakeServer fake(ex, [](const std::vector<std::string>& command, int, int) {
          return command.front() == "GET" ? bulk("slow") : std::string("+OK\r\n");
        });
        // The link comes up 150 ms after the call (AUTH is answered late), inside the 300 ms
        // window; the reply then takes 600 ms more, past the window, within the timeout.
        fake.delay_answers([](const std::vector<std::string>& command) {
          return command.front() == "AUTH" ? 150ms : command.front() == "GET" ? 600ms : 0ms;
        });
        auto options = fake.options();
        options.password = "secret";
        Connection c(ex, options);
        auto request = cmd("GET", "k");
        request.send_within = 300ms;
        auto slow = co_await outcome_of(c.exec(std::move(request), 30s));
        CHECK_FALSE(slow.ec);
        CHECK(slow.reply.str == "slow");
        CHECK(c.stats().connects == 1);
      },
      1, std::chrono::seconds(40));
}

TEST_CASE("a request still unwritten at the end of its send window fails with not_connected") {
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        corocache::RedisOptions options;
        options.port = 1;  // nothing listens: every connect is refused
        options.reconnect_min = 10ms;
        Connection c(ex, options);
        auto request = cmd("GET", "k");
        request.send_within = 200ms;
        auto unsent = co_await outcome_of(c.exec(std::move(request), 30s));
        CHECK(unsent.ec == errc::not_connected);
        CHECK(unsent.took < 20s);  // the window ended it, not the 30 s timeout
      },
      1, std::chrono::seconds(40));
}

TEST_CASE("a too-large reply during the handshake fails the link, never a caller's request") {
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        FakeServer fake(ex, [](const std::vector<std::string>& command, int, int) {
          return command.front() == "AUTH" ? bulk(std::string(100 * 1024, 'A')) : std::string("+OK\r\n");
        });
        auto options = fake.options();
        options.password = "secret";
        Connection c(ex, options);
        std::string what;
        try {
          co_await c.exec(cmd("GET", "k"), 300ms);
        } catch (const boost::system::system_error& e) {
          CHECK(e.code() == errc::not_connected);
          what = e.what();
        }
        CHECK_THAT(what, Catch::Contains("max_reply_bytes"));
        CHECK(c.stats().connects == 0);
        const bool closed = co_await wait_until([&] { return fake.closed_by_client() >= 1; }, 2s);
        CHECK(closed);
      },
      1, std::chrono::seconds(20));
}

/// A handshake with ROLE (a Sentinel's primary) on a fresh link to `fake`: what it failed with.
asio::awaitable<std::optional<corocache::detail::redis::LinkFailure>> handshake_with_role(
    asio::any_io_executor ex, const FakeServer& fake, const corocache::RedisOptions& options,
    Reader& reader) {
  namespace link_io = corocache::detail::redis::link_io;
  link_io::Socket socket(ex);
  const asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), fake.port());
  const asio::generic::stream_protocol::endpoint generic(ep);
  co_await socket.async_connect(generic, asio::use_awaitable);
  std::shared_ptr<link_io::TlsStream> no_tls;
  std::vector<char> buf(64 * 1024);
  auto failure =
      co_await link_io::open_link(socket, nullptr, no_tls, reader, buf, options, "127.0.0.1", true);
  co_return failure;
}

TEST_CASE("a primary's ROLE listing many replicas passes a small max_reply_bytes, AUTH's reply does not") {
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        // A primary with 60 replicas: its ROLE reply takes ~15 KB of reply nodes.
        std::string role = "*3\r\n" + bulk("master") + ":1000\r\n*60\r\n";
        for (int i = 0; i < 60; ++i)
          role += "*3\r\n" + bulk("10.0.0." + std::to_string(i)) + bulk("6379") + bulk("1000");
        std::string auth_reply = "+OK\r\n";
        FakeServer fake(ex, [&](const std::vector<std::string>& command, int, int) {
          return command.front() == "ROLE"   ? role
                 : command.front() == "AUTH" ? auth_reply
                                             : std::string("+OK\r\n");
        });
        auto options = fake.options();
        options.password = "secret";
        options.max_reply_bytes = 4096;
        options.max_reply_elements = 16;
        Reader reader(ReaderLimits{options.max_reply_bytes, options.max_reply_elements});
        // The connection's own answer (Request::control) must be back after the handshake.
        int asked = 0;
        reader.allow_wider(
            ReaderLimits{}, [](void* n) { return ++*static_cast<int*>(n) < 0; }, &asked);

        auto failure = co_await handshake_with_role(ex, fake, options, reader);
        CHECK_FALSE(failure.has_value());
        if (failure) FAIL_CHECK(failure->message);
        CHECK(reader.widening().context == &asked);
        CHECK(asked == 0);  // ROLE's reply was answered by the handshake, not the connection

        // AUTH's reply keeps the configured limit: a hostile one still fails the link.
        auth_reply = bulk(std::string(100 * 1024, 'A'));
        Reader fresh(ReaderLimits{options.max_reply_bytes, options.max_reply_elements});
        auto rejected = co_await handshake_with_role(ex, fake, options, fresh);
        REQUIRE(rejected.has_value());
        CHECK(rejected->code == errc::protocol_error);
        CHECK_THAT(rejected->message, Catch::Contains("max_reply_bytes"));
      },
      1, std::chrono::seconds(20));
}

// --- against a real redis-server ------------------------------------------------------------

TEST_CASE("redis: a value over max_reply_bytes fails only its GET among 200 concurrent GETs") {
  RedisServer server;
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        // Written (and readable) through a connection with the default, larger limit.
        Connection writer(ex, fault_options(server));
        const std::string big(1 << 20, 'B');
        auto stored = co_await outcome_of(writer.exec(cmd("SET", "toolarge:big", big)));
        CHECK_FALSE(stored.ec);
        Request mset;
        std::vector<std::string> args{"MSET"};
        for (int i = 0; i < 200; ++i) {
          args.push_back("toolarge:k" + std::to_string(i));
          args.push_back("value-" + std::to_string(i));
        }
        std::vector<std::string_view> argv(args.begin(), args.end());
        mset.add_argv(argv);
        auto loaded = co_await outcome_of(writer.exec(std::move(mset)));
        CHECK_FALSE(loaded.ec);
        auto back = co_await outcome_of(writer.exec(cmd("GET", "toolarge:big")));
        CHECK(back.reply.str == big);

        auto small = fault_options(server);
        small.max_reply_bytes = 64 * 1024;
        Connection c(ex, small);
        auto ping = co_await outcome_of(c.exec(cmd("PING")));
        CHECK_FALSE(ping.ec);
        std::vector<Request> requests;
        for (int i = 0; i < 200; ++i) {
          if (i == 100) requests.push_back(cmd("GET", "toolarge:big"));
          requests.push_back(cmd("GET", "toolarge:k" + std::to_string(i)));
        }
        auto outcomes = co_await all_at_once(c, std::move(requests));
        REQUIRE(outcomes.size() == 201);
        CHECK(outcomes[100].ec == errc::reply_too_large);
        int own = 0;
        for (std::size_t i = 0; i < outcomes.size(); ++i) {
          if (i == 100) continue;
          const int key = static_cast<int>(i) - (i > 100 ? 1 : 0);
          if (!outcomes[i].ec && outcomes[i].reply.str == "value-" + std::to_string(key)) ++own;
        }
        CHECK(own == 200);
        // Same link throughout, and it still works.
        auto after = co_await outcome_of(c.exec(cmd("GET", "toolarge:k7")));
        CHECK(after.reply.str == "value-7");
        auto again = co_await outcome_of(c.exec(cmd("GET", "toolarge:big")));
        CHECK(again.ec == errc::reply_too_large);
        CHECK(c.stats().connects == 1);
      },
      1, std::chrono::seconds(60));
}

}  // namespace fault_protocol_test
