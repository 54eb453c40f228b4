// The I/O-free link state machine: every resolved address tried with its own timeout, the
// AUTH/SELECT handshake as requests and a reply classifier, and the reconnect backoff.
#include <corocache/redis/detail/link_fsm.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace redis_link_test {

using namespace std::chrono_literals;
using corocache::Duration;
using corocache::errc;
using corocache::RedisOptions;
using corocache::detail::redis::BackoffState;
using corocache::detail::redis::ConnectPlan;
using corocache::detail::redis::handshake_request;
using corocache::detail::redis::HandshakeClassifier;
using corocache::detail::redis::initial_backoff;
using corocache::detail::redis::LinkEnd;
using corocache::detail::redis::next_backoff;
using corocache::detail::redis::Reply;
using corocache::detail::redis::Request;
using corocache::detail::redis::stable_link_after;
using Step = ConnectPlan::Step;

TEST_CASE("a connect attempt tries every address, each with its own timeout") {
  ConnectPlan plan(3, 500ms);
  auto a = plan.start();
  REQUIRE(a.step == Step::connect);
  CHECK(a.address == 0);
  CHECK(a.timeout == 500ms);
  a = plan.on_timeout("10.0.0.1:6379");  // a timeout does not end the attempt
  REQUIRE(a.step == Step::connect);
  CHECK(a.address == 1);
  CHECK(a.timeout == 500ms);  // a full timeout again, not what is left of the first
  a = plan.on_error("10.0.0.2:6379", "connect: Connection refused");
  REQUIRE(a.step == Step::connect);
  CHECK(a.address == 2);
  a = plan.on_connected();
  CHECK(a.step == Step::handshake);
  CHECK(a.address == 2);
}

TEST_CASE("when every address fails the attempt names the last failure") {
  ConnectPlan plan(2, 100ms);
  plan.start();
  CHECK(plan.on_error("[::1]:6379", "connect: Connection refused").step == Step::connect);
  const auto a = plan.on_timeout("127.0.0.1:6379");
  CHECK(a.step == Step::failed);
  CHECK(plan.failure().code == errc::not_connected);
  CHECK_THAT(plan.failure().message, Catch::Contains("127.0.0.1:6379: connect timed out"));
  CHECK_THAT(plan.failure().message, Catch::Contains("all 2 addresses"));
  ConnectPlan none(0, 100ms);
  CHECK(none.start().step == Step::failed);
  CHECK_THAT(none.failure().message, Catch::Contains("no address"));
}

TEST_CASE("the handshake sends AUTH and SELECT only when configured") {
  RedisOptions o;
  CHECK(handshake_request(o).empty());
  o.password = "pw";
  Request auth;
  auth.add("AUTH", "pw");
  CHECK(handshake_request(o).bytes == auth.bytes);
  o.user = "app";
  o.db = 2;
  Request both;
  both.add("AUTH", "app", "pw");
  both.add("SELECT", 2);
  CHECK(handshake_request(o).bytes == both.bytes);
  CHECK(handshake_request(o).replies == 2);
  RedisOptions db_only;
  db_only.db = 5;
  CHECK(handshake_request(db_only).replies == 1);
}

TEST_CASE("a rejected AUTH is auth_failed naming the user, never the password") {
  RedisOptions o;
  o.user = "app";
  o.password = "s3cret-pw";
  o.db = 1;
  HandshakeClassifier c(o);
  const auto failure = c.on_reply(Reply::make_error("WRONGPASS invalid username-password pair"));
  REQUIRE(failure);
  CHECK(failure->code == errc::auth_failed);
  CHECK_THAT(failure->message, Catch::Contains("AUTH rejected for user 'app'"));
  CHECK(failure->message.find("s3cret-pw") == std::string::npos);
}

TEST_CASE("a rejected SELECT is auth_failed naming the database") {
  RedisOptions o;
  o.password = "pw";
  o.db = 7;
  HandshakeClassifier c(o);
  CHECK_FALSE(c.on_reply(Reply::make_status("OK")));
  CHECK_FALSE(c.done());
  const auto failure = c.on_reply(Reply::make_error("ERR DB index is out of range"));
  REQUIRE(failure);
  CHECK(failure->code == errc::auth_failed);
  CHECK_THAT(failure->message, Catch::Contains("SELECT 7 rejected"));
  RedisOptions fine = o;
  HandshakeClassifier ok(fine);
  CHECK_FALSE(ok.on_reply(Reply::make_status("OK")));
  CHECK_FALSE(ok.on_reply(Reply::make_status("OK")));
  CHECK(ok.done());
}

TEST_CASE("a primary named by Sentinel must answer ROLE master in the handshake") {
  RedisOptions o;
  o.password = "pw";
  Request expected;
  expected.add("AUTH", "pw");
  expected.add("ROLE");
  CHECK(handshake_request(o, /*check_role=*/true).bytes == expected.bytes);
  CHECK(handshake_request(RedisOptions{}, true).replies == 1);

  HandshakeClassifier master(o, true);
  CHECK_FALSE(master.on_reply(Reply::make_status("OK")));
  CHECK_FALSE(master.done());
  std::vector<Reply> role;
  role.push_back(Reply::make_string("master"));
  role.push_back(Reply::make_integer(42));
  role.push_back(Reply::make_array({}));
  CHECK_FALSE(master.on_reply(Reply::make_array(role)));
  CHECK(master.done());

  HandshakeClassifier replica(RedisOptions{}, true);
  std::vector<Reply> slave;
  slave.push_back(Reply::make_string("slave"));
  slave.push_back(Reply::make_string("10.0.0.9"));
  slave.push_back(Reply::make_integer(6380));
  slave.push_back(Reply::make_string("connected"));
  slave.push_back(Reply::make_integer(42));
  const auto failure = replica.on_reply(Reply::make_array(slave));
  REQUIRE(failure);
  CHECK(failure->code == errc::not_connected);  // a failover in progress: retried, not a rejection
  CHECK_THAT(failure->message, Catch::Contains("ROLE slave of 10.0.0.9:6380"));

  HandshakeClassifier refused(RedisOptions{}, true);
  const auto error = refused.on_reply(Reply::make_error("NOPERM no permission"));
  REQUIRE(error);
  CHECK(error->code == errc::not_connected);
}

TEST_CASE("failed attempts back off exponentially up to reconnect_max") {
  RedisOptions o;
  o.reconnect_min = 50ms;
  o.reconnect_max = 1s;
  BackoffState s = initial_backoff(o);
  std::vector<Duration> delays;
  for (int i = 0; i < 7; ++i) {
    const auto d = next_backoff(o, s, {LinkEnd::Kind::connect_failed});
    delays.push_back(d.delay);
    s = d.state;
  }
  CHECK(delays == std::vector<Duration>{50ms, 100ms, 200ms, 400ms, 800ms, 1s, 1s});
  CHECK(next_backoff(o, s, {LinkEnd::Kind::auth_failed}).delay == 1s);
}

TEST_CASE("a link that dropped soon after its handshake never gets a zero delay") {
  RedisOptions o;
  o.reconnect_min = 20ms;
  o.reconnect_max = 500ms;
  CHECK(stable_link_after(o) == 1s);
  BackoffState s = initial_backoff(o);
  std::vector<Duration> delays;
  // A server that accepts AUTH and then closes: every link lives 5 ms.
  for (int i = 0; i < 6; ++i) {
    const auto d = next_backoff(o, s, {LinkEnd::Kind::dropped, 5ms});
    delays.push_back(d.delay);
    s = d.state;
  }
  CHECK(delays == std::vector<Duration>{20ms, 40ms, 80ms, 160ms, 320ms, 500ms});
  // A link that lived long enough resets the backoff, still to a non-zero delay.
  const auto stable = next_backoff(o, s, {LinkEnd::Kind::dropped, 2s});
  CHECK(stable.delay == 20ms);
  CHECK(next_backoff(o, stable.state, {LinkEnd::Kind::connect_failed}).delay == 20ms);
  // With a large reconnect_min, stability takes at least that long.
  o.reconnect_min = 3s;
  o.reconnect_max = 10s;
  CHECK(stable_link_after(o) == 3s);
  CHECK(next_backoff(o, initial_backoff(o), {LinkEnd::Kind::dropped, 2s}).state.next == 6s);
}

}  // namespace redis_link_test
