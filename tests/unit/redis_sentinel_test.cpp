// Redis Sentinel discovery without a server: requests, reply parsers (master address,
// sentinel list, ROLE, +switch-master), the order sentinels are asked in, and the discovery
// state machine with its deadline.
#include <corocache/redis/detail/sentinel_discovery.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace redis_sentinel_test {

using namespace corocache::detail::redis;
using namespace corocache::detail::redis::sentinel;
using corocache::errc;
using namespace std::chrono_literals;

namespace {

Reply S(std::string s) { return Reply::make_string(std::move(s)); }
Reply I(long long v) { return Reply::make_integer(v); }
Reply A(std::vector<Reply> e) { return Reply::make_array(std::move(e)); }
Reply E(std::string s) { return Reply::make_error(std::move(s)); }

std::vector<NodeAddress> three() { return {{"10.0.0.1", 26379}, {"10.0.0.2", 26379}, {"10.0.0.3", 26379}}; }

using Kind = DiscoveryAction::Kind;
const auto t0 = DiscoveryFsm::Clock::time_point{} + 1h;

}  // namespace

TEST_CASE("sentinel requests are encoded as RESP commands") {
  CHECK(master_addr_request("mymaster").bytes ==
        "*3\r\n$8\r\nSENTINEL\r\n$23\r\nGET-MASTER-ADDR-BY-NAME\r\n$8\r\nmymaster\r\n");
  CHECK(sentinels_request("m").bytes == "*3\r\n$8\r\nSENTINEL\r\n$9\r\nSENTINELS\r\n$1\r\nm\r\n");
  CHECK(role_request().bytes == "*1\r\n$4\r\nROLE\r\n");
  CHECK(switch_master_subscription().bytes == "*2\r\n$9\r\nSUBSCRIBE\r\n$14\r\n+switch-master\r\n");
  CHECK(master_addr_request("m").replies == 1);
}

TEST_CASE("GET-MASTER-ADDR-BY-NAME replies: an address, an unknown master, errors, garbage") {
  auto found = parse_master_addr(A({S("127.0.0.1"), S("6380")}));
  CHECK(found.kind == MasterAddr::Kind::found);
  CHECK(found.address == NodeAddress{"127.0.0.1", 6380});
  CHECK(parse_master_addr(Reply::make_nil()).kind == MasterAddr::Kind::unknown_master);
  CHECK(parse_master_addr(A({})).kind == MasterAddr::Kind::unknown_master);
  auto err = parse_master_addr(E("NOAUTH Authentication required."));
  CHECK(err.kind == MasterAddr::Kind::error);
  CHECK(err.message.starts_with("NOAUTH"));
  for (const auto& bad : {A({S("127.0.0.1")}), A({S("127.0.0.1"), S("0")}), A({S("127.0.0.1"), S("70000")}),
                          A({S(""), S("6379")}), A({S("h"), I(6379)}), S("127.0.0.1:6379")})
    CHECK(parse_master_addr(bad).kind == MasterAddr::Kind::malformed);
}

TEST_CASE("SENTINEL SENTINELS lists the other sentinels' addresses") {
  auto entry = [](std::string ip, std::string port) {
    return A({S("name"), S("abc"), S("ip"), S(ip), S("port"), S(port), S("flags"), S("sentinel")});
  };
  const auto list = parse_sentinels(A({entry("10.0.0.2", "26379"), entry("10.0.0.3", "26380"), entry("", "1"),
                                       entry("10.0.0.4", "x"), S("junk")}));
  CHECK(list == std::vector<NodeAddress>{{"10.0.0.2", 26379}, {"10.0.0.3", 26380}});
  CHECK(parse_sentinels(E("ERR No such master with that name")).empty());
}

TEST_CASE("ROLE replies are classified: master, replica with its primary, sentinel, other") {
  CHECK(parse_role(A({S("master"), I(3129659), A({A({S("127.0.0.1"), S("9001"), S("3129242")})})})).role ==
        RoleInfo::Role::master);
  const auto r = parse_role(A({S("slave"), S("127.0.0.1"), I(9000), S("connected"), I(3167038)}));
  CHECK(r.role == RoleInfo::Role::replica);
  CHECK(r.primary == NodeAddress{"127.0.0.1", 9000});
  CHECK(r.link_state == "connected");
  CHECK(parse_role(A({S("sentinel"), A({S("mymaster")})})).role == RoleInfo::Role::sentinel);
  CHECK(parse_role(E("NOAUTH Authentication required.")).role == RoleInfo::Role::unknown);
  CHECK(parse_role(A({})).role == RoleInfo::Role::unknown);
  CHECK(parse_role(A({S("leader")})).role == RoleInfo::Role::unknown);
}

TEST_CASE("+switch-master messages give the old and new primary of the named master") {
  const auto msg = A({S("message"), S("+switch-master"), S("mymaster 127.0.0.1 6379 127.0.0.1 6380")});
  const auto sw = parse_switch_master(msg, "mymaster");
  REQUIRE(sw.has_value());
  CHECK(*sw == SwitchMaster{"mymaster", {"127.0.0.1", 6379}, {"127.0.0.1", 6380}});
  CHECK(parse_switch_master(msg).has_value());  // any master
  CHECK_FALSE(parse_switch_master(msg, "other").has_value());
  CHECK(parse_switch_master(A({S("pmessage"), S("*"), S("+switch-master"), S("m a 1 b 2")}), "m") ==
        SwitchMaster{"m", {"a", 1}, {"b", 2}});
  CHECK_FALSE(parse_switch_master(A({S("message"), S("+sdown"), S("master m 127.0.0.1 6379")})).has_value());
  CHECK_FALSE(parse_switch_master(A({S("subscribe"), S("+switch-master"), I(1)})).has_value());
  CHECK_FALSE(parse_switch_master(A({S("message"), S("+switch-master"), S("m a 1 b")})).has_value());
  CHECK_FALSE(parse_switch_master(A({S("message"), S("+switch-master"), S("m a 1 b 0")})).has_value());
  CHECK_FALSE(parse_switch_master(S("+switch-master m a 1 b 2")).has_value());
}

TEST_CASE("sentinels are asked in turn, the one that answers goes first, a full round is reported") {
  SentinelList list(three());
  CHECK(list.current().host == "10.0.0.1");
  CHECK(list.next());
  CHECK(list.current().host == "10.0.0.2");
  list.success();
  CHECK(list.current().host == "10.0.0.2");
  CHECK(list.addresses()[0].host == "10.0.0.2");
  CHECK(list.addresses()[1].host == "10.0.0.1");
  CHECK(list.next());
  CHECK(list.next());
  CHECK_FALSE(list.next());  // three failures in a row: a full round
  CHECK(list.current().host == "10.0.0.2");
  CHECK(list.merge({{"10.0.0.3", 26379}, {"10.0.0.9", 26379}}) == 1);
  CHECK(list.size() == 4);
}

TEST_CASE("discovery: a sentinel names the primary, ROLE confirms it") {
  SentinelList list(three());
  DiscoveryFsm fsm(list, "mymaster", t0 + 5s);
  auto a = fsm.start(t0);
  REQUIRE(a.kind == Kind::ask_sentinel);
  CHECK(a.node.host == "10.0.0.1");
  a = fsm.on_sentinel_error("connection refused", t0);
  REQUIRE(a.kind == Kind::ask_sentinel);
  CHECK(a.node.host == "10.0.0.2");
  a = fsm.on_sentinel_reply(Reply::make_nil(), t0);  // does not know the name: next one
  REQUIRE(a.kind == Kind::ask_sentinel);
  CHECK(a.node.host == "10.0.0.3");
  a = fsm.on_sentinel_reply(A({S("10.0.1.1"), S("6379")}), t0);
  REQUIRE(a.kind == Kind::check_role);
  CHECK(a.node == NodeAddress{"10.0.1.1", 6379});
  CHECK(list.current().host == "10.0.0.3");  // promoted to the front
  a = fsm.on_role_reply(A({S("master"), I(0), A({})}), t0);
  CHECK(a.kind == Kind::done);
  CHECK(a.node == NodeAddress{"10.0.1.1", 6379});
}

TEST_CASE("discovery: a demoted primary (failover in progress) is asked about again after a wait") {
  SentinelList list(three());
  DiscoveryFsm fsm(list, "m", t0 + 5s);
  fsm.start(t0);
  fsm.on_sentinel_reply(A({S("10.0.1.1"), S("6379")}), t0);
  auto a = fsm.on_role_reply(A({S("slave"), S("10.0.1.2"), I(6379), S("connected"), I(1)}), t0);
  REQUIRE(a.kind == Kind::wait);
  CHECK(a.delay == 50ms);
  a = fsm.resume(t0 + 50ms);
  REQUIRE(a.kind == Kind::ask_sentinel);
  CHECK(a.node.host == "10.0.0.1");
  a = fsm.on_sentinel_reply(A({S("10.0.1.2"), S("6379")}), t0 + 60ms);
  REQUIRE(a.kind == Kind::check_role);
  a = fsm.on_role_error("connection refused", t0 + 60ms);
  REQUIRE(a.kind == Kind::wait);
  CHECK(a.delay == 100ms);  // doubled
}

TEST_CASE("discovery: every sentinel failing backs off, and gives up at the deadline naming the cause") {
  SentinelList list(three());
  DiscoveryPolicy policy;
  policy.retry_min = 100ms;
  policy.retry_max = 400ms;
  DiscoveryFsm fsm(list, "mymaster", t0 + 1s, policy);
  auto now = t0;
  auto a = fsm.start(now);
  std::vector<long long> waits;
  int asked = 0;
  while (a.kind == Kind::ask_sentinel || a.kind == Kind::wait) {
    if (a.kind == Kind::wait) {
      waits.push_back(a.delay.count());
      now += a.delay;
      a = fsm.resume(now);
    } else {
      ++asked;
      now += 10ms;
      a = fsm.on_sentinel_reply(E("ERR No such master with that name"), now);
    }
  }
  REQUIRE(a.kind == Kind::fail);
  CHECK(a.error == errc::timeout);
  CHECK(a.message.find("mymaster") != std::string::npos);
  CHECK(a.message.find("No such master") != std::string::npos);
  CHECK(waits == std::vector<long long>{100, 200, 400});
  CHECK(asked == 12);  // four rounds of three sentinels
  CHECK(now <= t0 + 1s);
}

TEST_CASE("discovery without sentinels or past its deadline fails at once") {
  SentinelList none({});
  DiscoveryFsm a(none, "m", t0 + 1s);
  CHECK(a.start(t0).kind == Kind::fail);
  SentinelList list(three());
  DiscoveryFsm late(list, "m", t0);
  const auto r = late.start(t0);
  CHECK(r.kind == Kind::fail);
  CHECK(r.error == errc::timeout);
}

TEST_CASE("discovery: every sentinel saying it does not know the name is a rejection, not a wait") {
  SentinelList list(three());
  DiscoveryFsm fsm(list, "typo", t0 + 5s);
  auto a = fsm.start(t0);
  a = fsm.on_sentinel_reply(Reply::make_nil(), t0);
  REQUIRE(a.kind == Kind::ask_sentinel);
  a = fsm.on_sentinel_reply(Reply::make_nil(), t0);
  REQUIRE(a.kind == Kind::ask_sentinel);
  a = fsm.on_sentinel_reply(Reply::make_nil(), t0);
  REQUIRE(a.kind == Kind::fail);
  CHECK(a.rejection);
  CHECK(a.error == errc::not_connected);
  CHECK_THAT(a.message, Catch::Contains("no sentinel monitors a master named 'typo'"));

  // One sentinel down in between: not proof of a wrong name (it may know it), so wait.
  SentinelList again(three());
  DiscoveryFsm partial(again, "m", t0 + 5s);
  partial.start(t0);
  partial.on_sentinel_reply(Reply::make_nil(), t0);
  partial.on_sentinel_error("connection refused", t0);
  const auto b = partial.on_sentinel_reply(Reply::make_nil(), t0);
  CHECK(b.kind == Kind::wait);
  CHECK_FALSE(b.rejection);
}

TEST_CASE("a question to one sentinel gets a quarter of connect_timeout, at least 100 ms") {
  CHECK(sentinel_timeout(2000ms) == 500ms);
  CHECK(sentinel_timeout(200ms) == 100ms);
}

TEST_CASE("a -READONLY reply marks a demoted primary, other errors do not") {
  CHECK(is_demoted(E("READONLY You can't write against a read only replica.")));
  CHECK_FALSE(is_demoted(E("ERR unknown command")));
  CHECK_FALSE(is_demoted(S("READONLY")));
}

TEST_CASE("+switch-master: a link up elsewhere drops, one on the new primary stays, a down one retries now") {
  const SwitchMaster notice{"m", {"10.0.1.1", 6379}, {"10.0.1.2", 6379}};
  CHECK(on_switch_master(notice, true, {"10.0.1.1", 6379}) == SwitchAction::drop_link);
  CHECK(on_switch_master(notice, true, {"10.0.1.2", 6379}) == SwitchAction::none);
  CHECK(on_switch_master(notice, false, {"10.0.1.1", 6379}) == SwitchAction::retry_now);
}

}  // namespace redis_sentinel_test
