// Redis Cluster logic without a server: key slots (CRC16 + hash tags), the slot map from
// CLUSTER SLOTS / CLUSTER SHARDS replies, command routing, MOVED/ASK/TRYAGAIN/CLUSTERDOWN
// classification and the per-request redirect state machine.
#include <corocache/redis/detail/cluster_redirect.hpp>
#include <corocache/redis/detail/cluster_route.hpp>
#include <corocache/redis/detail/cluster_slots.hpp>
#include <corocache/redis/detail/cluster_walk.hpp>
#include <corocache/redis/detail/retry_backoff.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace redis_cluster_test {

using namespace corocache::detail::redis;
using namespace corocache::detail::redis::cluster;
using corocache::errc;
using namespace std::chrono_literals;

namespace {

Reply S(std::string s) { return Reply::make_string(std::move(s)); }
Reply I(long long v) { return Reply::make_integer(v); }
Reply A(std::vector<Reply> e) { return Reply::make_array(std::move(e)); }
Reply E(std::string s) { return Reply::make_error(std::move(s)); }

const NodeAddress origin{"127.0.0.1", 7000};

Route route(std::vector<std::string_view> argv) { return route_command(argv); }

/// A CLUSTER SLOTS reply shaped like the one a 3-primary redis-server 7.0 cluster gave.
Reply three_shard_slots() {
  auto node = [](std::string host, long long port, std::string id) {
    return A({S(host), I(port), S(id), A({})});
  };
  return A({A({I(0), I(5460), node("127.0.0.1", 7000, "id-a"), node("127.0.0.1", 7003, "id-d")}),
            A({I(5461), I(10922), node("127.0.0.1", 7001, "id-b"), node("127.0.0.1", 7004, "id-e")}),
            A({I(10923), I(16383), node("127.0.0.1", 7002, "id-c"), node("127.0.0.1", 7005, "id-f")})});
}

Reply shard_node(std::string id, long long port, std::string role, std::string health,
                 std::string endpoint = "127.0.0.1") {
  return A({S("id"), S(id), S("port"), I(port), S("tls-port"), I(port + 100), S("ip"), S("127.0.0.1"),
            S("endpoint"), S(endpoint), S("role"), S(role), S("replication-offset"), I(14), S("health"),
            S(health)});
}

}  // namespace

TEST_CASE("crc16 is CCITT/XMODEM as the cluster specification defines it") {
  STATIC_REQUIRE(crc16("123456789") == 0x31C3);
  STATIC_REQUIRE(crc16("") == 0);
}

TEST_CASE("key slots match redis-server's CLUSTER KEYSLOT, hash tags included") {
  // Recorded with `redis-cli CLUSTER KEYSLOT` on redis-server 7.0.15.
  struct Known {
    std::string_view key;
    int slot;
  };
  const Known known[] = {{"foo", 12182},
                         {"bar", 5061},
                         {"hello", 866},
                         {"a", 15495},
                         {"", 0},
                         {"123456789", 12739},
                         {"{user1000}.following", 3443},
                         {"{user1000}.followers", 3443},
                         {"foo{}{bar}", 8363},
                         {"foo{{bar}}zap", 4015},
                         {"foo{bar}{zap}", 5061},
                         {"{}", 15257},
                         {"{", 4092},
                         {"}{x}", 16287},
                         {"x{y", 2740},
                         {"cc:{t1:ns}:value:x", 10856}};
  for (const auto& k : known) {
    INFO("key '" << k.key << "'");
    CHECK(key_slot(k.key) == k.slot);
  }
  // The specification's examples: the tag is what is hashed.
  CHECK(key_slot("{user1000}.following") == key_slot("user1000"));
  CHECK(key_slot("foo{bar}{zap}") == key_slot("bar"));
  CHECK(key_slot("foo{{bar}}zap") == key_slot("{bar"));
  CHECK(hashed_part("foo{}{bar}") == "foo{}{bar}");
  CHECK(hashed_part("x{y") == "x{y");
  // corocache's key schema keeps a scope in one slot, whatever the kind and name.
  CHECK(key_slot("cc:{t1:ns}:value:x") == key_slot("cc:{t1:ns}:queue:some other name"));
  for (int i = 0; i < 1000; ++i) {
    const int s = key_slot("k" + std::to_string(i));
    REQUIRE(s >= 0);
    REQUIRE(s < slot_count);
  }
}

TEST_CASE("addresses parse host:port, [v6]:port and reject bad ports") {
  CHECK(parse_address("127.0.0.1:7000") == NodeAddress{"127.0.0.1", 7000});
  CHECK(parse_address("redis-1.internal:6379") == NodeAddress{"redis-1.internal", 6379});
  CHECK(parse_address("[::1]:7001") == NodeAddress{"::1", 7001});
  CHECK(parse_address("::1:7001") == NodeAddress{"::1", 7001});
  CHECK((NodeAddress{"::1", 7001}.to_string()) == "[::1]:7001");
  CHECK((NodeAddress{"h", 1}.to_string()) == "h:1");
  for (auto bad : {"", "host", "host:", ":7000", "host:0", "host:65536", "host:7x", "[::1]7000", "[::1"})
    CHECK_FALSE(parse_address(bad).has_value());
}

TEST_CASE("the slot map from CLUSTER SLOTS covers every slot with the right primary and replicas") {
  const auto r = parse_cluster_slots(three_shard_slots(), origin);
  REQUIRE(r.ok());
  CHECK(r.map.complete());
  CHECK(r.map.shards().size() == 3);
  CHECK(r.map.primary_of(0)->port == 7000);
  CHECK(r.map.primary_of(5460)->port == 7000);
  CHECK(r.map.primary_of(5461)->port == 7001);
  CHECK(r.map.primary_of(16383)->port == 7002);
  CHECK(r.map.shard_of(10922)->replicas == std::vector<NodeAddress>{{"127.0.0.1", 7004}});
  CHECK(r.map.shard_of(0)->primary_id == "id-a");
  CHECK(r.map.primary_of_key("foo")->port == 7002);  // slot 12182
  CHECK(r.map.primary_of(-1) == nullptr);
  CHECK(r.map.primary_of(16384) == nullptr);
}

TEST_CASE("CLUSTER SLOTS: an empty endpoint is the node asked, '?' leaves the range unassigned") {
  auto reply =
      A({A({I(0), I(99), A({S(""), I(7000), S("x")})}), A({I(100), I(199), A({S("?"), I(7001), S("y")})}),
         A({I(200), I(16383), A({Reply::make_nil(), I(7002), S("z")})})});
  const auto r = parse_cluster_slots(reply, NodeAddress{"10.1.2.3", 7000});
  REQUIRE(r.ok());
  CHECK(*r.map.primary_of(5) == NodeAddress{"10.1.2.3", 7000});
  CHECK(r.map.primary_of(150) == nullptr);
  CHECK(r.map.primary_of(300) == nullptr);
  CHECK(r.map.assigned() == 100);
  CHECK_FALSE(r.map.complete());
}

TEST_CASE("malformed CLUSTER SLOTS replies are refused with a reason") {
  CHECK_FALSE(parse_cluster_slots(E("ERR This instance has cluster support disabled"), origin).ok());
  CHECK(parse_cluster_slots(E("ERR disabled"), origin).error.find("disabled") != std::string::npos);
  CHECK_FALSE(parse_cluster_slots(S("nope"), origin).ok());
  CHECK_FALSE(parse_cluster_slots(A({A({I(0), I(10)})}), origin).ok());
  CHECK_FALSE(parse_cluster_slots(A({A({I(0), I(16384), A({S("h"), I(1)})})}), origin).ok());
  CHECK_FALSE(parse_cluster_slots(A({A({I(10), I(5), A({S("h"), I(1)})})}), origin).ok());
  CHECK_FALSE(parse_cluster_slots(A({A({I(0), I(5), A({S("h"), I(0)})})}), origin).ok());
  CHECK_FALSE(parse_cluster_slots(A({A({S("0"), I(5), A({S("h"), I(1)})})}), origin).ok());
  const auto empty = parse_cluster_slots(A({}), origin);
  CHECK(empty.ok());
  CHECK(empty.map.empty());
}

TEST_CASE("the slot map from CLUSTER SHARDS: online primary, replicas not failed, several ranges") {
  auto shards =
      A({A({S("slots"), A({I(0), I(100), I(200), I(5460)}), S("nodes"),
            A({shard_node("a", 7000, "master", "online"), shard_node("d", 7003, "replica", "loading")})}),
         A({S("slots"), A({I(101), I(199), I(5461), I(16383)}), S("nodes"),
            // after a failover: the old primary listed as a failed master, the promoted one online
            A({shard_node("b", 7001, "master", "failed"), shard_node("e", 7004, "master", "online"),
               shard_node("g", 7006, "replica", "fail")})}),
         A({S("slots"), A({}), S("nodes"), A({shard_node("c", 7002, "master", "online")})})});
  const auto r = parse_cluster_shards(shards, origin);
  REQUIRE(r.ok());
  CHECK(r.map.complete());
  // The shard without slots owns nothing, but its primary stays in the map: it may hold keys
  // MIGRATEd onto it, so walks over every primary must reach it, last (it can only import).
  CHECK(r.map.shards().size() == 3);
  CHECK(r.map.primaries() ==
        std::vector<NodeAddress>{{"127.0.0.1", 7000}, {"127.0.0.1", 7004}, {"127.0.0.1", 7002}});
  auto slotless_first = A({shards.elements[2], shards.elements[0], shards.elements[1]});
  CHECK(parse_cluster_shards(slotless_first, origin).map.primaries() ==
        std::vector<NodeAddress>{{"127.0.0.1", 7000}, {"127.0.0.1", 7004}, {"127.0.0.1", 7002}});
  int owned_by_slotless = 0;
  for (int slot = 0; slot < slot_count; ++slot) owned_by_slotless += r.map.primary_of(slot)->port == 7002;
  CHECK(owned_by_slotless == 0);
  // A dead primary after its replica's promotion is a shard of its own, without slots;
  // redis-server 7.0 reports its health as "fail": it is left out.
  auto after_failover = shards;
  after_failover.elements.push_back(
      A({S("slots"), A({}), S("nodes"), A({shard_node("x", 7009, "master", "fail")})}));
  const auto f = parse_cluster_shards(after_failover, origin);
  REQUIRE(f.ok());
  CHECK(f.map.shards().size() == 3);
  for (const auto& node : f.map.primaries()) CHECK(node.port != 7009);
  CHECK(r.map.primary_of(0)->port == 7000);
  CHECK(r.map.primary_of(150)->port == 7004);
  CHECK(r.map.primary_of(300)->port == 7000);
  CHECK(r.map.primary_of(16383)->port == 7004);
  CHECK(r.map.shard_of(0)->replicas == std::vector<NodeAddress>{{"127.0.0.1", 7003}});
  CHECK(r.map.shard_of(150)->replicas.empty());
  CHECK(r.map.shard_of(150)->primary_id == "e");
  // Over TLS the nodes' tls-port is used.
  const auto t = parse_cluster_shards(shards, origin, /*tls=*/true);
  REQUIRE(t.ok());
  CHECK(t.map.primary_of(0)->port == 7100);
}

TEST_CASE("CLUSTER SHARDS of primaries without slots lists them but is no usable map") {
  // A cluster being built (or a reply from a node that lost its view): primaries, no slot.
  const auto r = parse_cluster_shards(
      A({A({S("slots"), A({}), S("nodes"), A({shard_node("a", 7000, "master", "online")})}),
         A({S("slots"), A({}), S("nodes"), A({shard_node("b", 7001, "master", "online")})})}),
      origin);
  REQUIRE(r.ok());
  CHECK(r.map.shards().size() == 2);
  CHECK(r.map.empty());  // the topology keeps waiting for a map with owners
  CHECK(r.map.assigned() == 0);
  SlotMap moved = r.map;
  moved.apply_moved(7, NodeAddress{"127.0.0.1", 7001});
  CHECK_FALSE(moved.empty());
  CHECK(SlotMap{}.empty());
}

TEST_CASE("CLUSTER SHARDS: a missing tls-port or field is an error, an empty endpoint the node asked") {
  auto no_tls =
      A({A({S("slots"), A({I(0), I(16383)}), S("nodes"),
            A({A({S("id"), S("a"), S("port"), I(7000), S("endpoint"), S(""), S("role"), S("master")})})})});
  const auto plain = parse_cluster_shards(no_tls, NodeAddress{"10.0.0.9", 7000});
  REQUIRE(plain.ok());
  CHECK(*plain.map.primary_of(42) == NodeAddress{"10.0.0.9", 7000});
  CHECK(parse_cluster_shards(no_tls, origin, true).error.find("tls-port") != std::string::npos);
  CHECK_FALSE(parse_cluster_shards(A({A({S("slots"), A({I(0)}), S("nodes"), A({})})}), origin).ok());
  CHECK_FALSE(parse_cluster_shards(A({A({S("nodes"), A({})})}), origin).ok());
  CHECK_FALSE(parse_cluster_shards(E("ERR unknown subcommand 'SHARDS'"), origin).ok());
}

TEST_CASE("a MOVED updates one slot, a primary new to the map asks for a refresh") {
  auto r = parse_cluster_slots(three_shard_slots(), origin);
  REQUIRE(r.ok());
  auto map = r.map;
  CHECK(map.apply_moved(100, NodeAddress{"127.0.0.1", 7001}));  // known primary
  CHECK(map.primary_of(100)->port == 7001);
  CHECK(map.primary_of(99)->port == 7000);
  CHECK(map.shards().size() == 3);
  CHECK_FALSE(map.apply_moved(101, NodeAddress{"127.0.0.1", 7010}));  // unknown: refresh advised
  CHECK(map.primary_of(101)->port == 7010);
  CHECK(map.shards().size() == 4);
  CHECK(map.primaries().size() == 4);
  CHECK_FALSE(map.apply_moved(16384, NodeAddress{"127.0.0.1", 7001}));
}

TEST_CASE("commands are routed by their keys, cross-slot commands are refused before I/O") {
  CHECK(route({"GET", "foo"}) == Route{RouteKind::slot, 12182});
  CHECK(route({"set", "foo", "v", "PX", "100"}) == Route{RouteKind::slot, 12182});
  CHECK(route({"PING"}).kind == RouteKind::any_node);
  CHECK(route({"script", "LOAD", "return 1"}).kind == RouteKind::any_node);
  CHECK(route({"SCAN", "0", "MATCH", "foo*"}).kind == RouteKind::any_node);
  CHECK(route({"MGET", "{t}a", "{t}b", "{t}c"}) == Route{RouteKind::slot, key_slot("t")});
  CHECK(route({"MGET", "foo", "bar"}).kind == RouteKind::cross_slot);
  CHECK(route({"DEL", "{t}a", "foo"}).kind == RouteKind::cross_slot);
  CHECK(route({"MSET", "{t}a", "1", "{t}b", "2"}) == Route{RouteKind::slot, key_slot("t")});
  CHECK(route({"MSET", "{t}a", "1", "foo", "2"}).kind == RouteKind::cross_slot);
  CHECK(route({"MSET", "{t}a", "1", "{t}b"}).kind == RouteKind::malformed);
  // A value that would hash elsewhere does not count as a key.
  CHECK(route({"SET", "{t}a", "foo"}) == Route{RouteKind::slot, key_slot("t")});
  CHECK(route({"EVALSHA", "abc", "2", "{t}a", "{t}b", "foo"}) == Route{RouteKind::slot, key_slot("t")});
  CHECK(route({"EVALSHA", "abc", "2", "{t}a", "foo"}).kind == RouteKind::cross_slot);
  CHECK(route({"EVAL", "return 1", "0", "foo"}).kind == RouteKind::any_node);
  CHECK(route({"EVALSHA", "abc", "3", "{t}a"}).kind == RouteKind::malformed);
  CHECK(route({"EVALSHA", "abc", "x"}).kind == RouteKind::malformed);
  CHECK(route({"BLPOP", "{q}a", "{q}b", "5"}) == Route{RouteKind::slot, key_slot("q")});
  CHECK(route({"BLPOP", "foo", "5"}) == Route{RouteKind::slot, 12182});  // the timeout is no key
  CHECK(route({"BLMOVE", "{q}a", "{q}b", "LEFT", "RIGHT", "0"}) == Route{RouteKind::slot, key_slot("q")});
  CHECK(route({"LMOVE", "foo", "bar", "LEFT", "RIGHT"}).kind == RouteKind::cross_slot);
  CHECK(route({"GET"}).kind == RouteKind::malformed);
  CHECK(route({}).kind == RouteKind::malformed);
}

TEST_CASE("MOVED, ASK, TRYAGAIN and CLUSTERDOWN replies are classified") {
  auto moved = classify_reply(E("MOVED 3999 127.0.0.1:6381"), origin);
  CHECK(moved.kind == ErrorClass::moved);
  CHECK(moved.redirect == Redirect{3999, {"127.0.0.1", 6381}});
  auto ask = classify_reply(E("ASK 16287 127.0.0.1:17001"), origin);
  CHECK(ask.kind == ErrorClass::ask);
  CHECK(ask.redirect == Redirect{16287, {"127.0.0.1", 17001}});
  // No endpoint announced: the host of the node that answered.
  auto bare = classify_reply(E("MOVED 1 :7005"), NodeAddress{"10.0.0.2", 7000});
  CHECK(bare.redirect == Redirect{1, {"10.0.0.2", 7005}});
  CHECK(classify_reply(E("MOVED 2 [::1]:7005"), origin).redirect == Redirect{2, {"::1", 7005}});
  CHECK(classify_reply(E("MOVED 2 redis-3.svc:6379"), origin).redirect == Redirect{2, {"redis-3.svc", 6379}});
  CHECK(classify_reply(E("TRYAGAIN Multiple keys request during rehashing of slot"), origin).kind ==
        ErrorClass::tryagain);
  CHECK(classify_reply(E("ERR Script attempted to access a non local key in a cluster node script: 3a90, on "
                         "@user_script:20."),
                       origin)
            .kind == ErrorClass::tryagain);
  CHECK(classify_reply(E("ERR Script attempted to access keys that do not hash to the same slot"), origin)
            .kind == ErrorClass::other);
  CHECK(classify_reply(E("CLUSTERDOWN Hash slot not served"), origin).kind == ErrorClass::clusterdown);
  CHECK(classify_reply(E("CLUSTERDOWN The cluster is down"), origin).kind == ErrorClass::clusterdown);
  CHECK(classify_reply(E("CROSSSLOT Keys in request don't hash to the same slot"), origin).kind ==
        ErrorClass::other);
  CHECK(classify_reply(E("MOVEDX 1 h:1"), origin).kind == ErrorClass::other);
  CHECK(classify_reply(E("ERR MOVED"), origin).kind == ErrorClass::other);
  // Malformed redirects are not guessed at.
  for (auto bad :
       {"MOVED", "MOVED 1", "MOVED x h:1", "MOVED 16384 h:1", "MOVED 1 h", "ASK 1 h:0", "MOVED -1 h:1"})
    CHECK(classify_reply(E(bad), origin).kind == ErrorClass::other);
  CHECK(classify_reply(S("MOVED 1 h:1"), origin).kind == ErrorClass::none);
  CHECK(classify_reply(Reply::make_nil(), origin).kind == ErrorClass::none);
}

TEST_CASE("a request follows MOVED to the new owner and tells the topology layer to update its map") {
  const auto map = parse_cluster_slots(three_shard_slots(), origin).map;
  const auto t0 = ClusterRequestFsm::Clock::time_point{} + 1h;
  ClusterRequestFsm fsm(12182, t0 + 1s);
  auto a = fsm.start(map, t0);
  REQUIRE(a.kind == Action::Kind::send);
  CHECK(a.node.port == 7002);
  CHECK_FALSE(a.asking);
  a = fsm.on_reply(E("MOVED 12182 127.0.0.1:7001"), t0);
  REQUIRE(a.kind == Action::Kind::send);
  CHECK(a.node.port == 7001);
  CHECK_FALSE(a.asking);
  CHECK(a.update_map == Redirect{12182, {"127.0.0.1", 7001}});
  CHECK(a.refresh_map);
  a = fsm.on_reply(S("value"), t0);
  CHECK(a.kind == Action::Kind::complete);
  CHECK(fsm.reply() == S("value"));
  CHECK(fsm.redirects() == 1);
}

TEST_CASE("ASK sends once with ASKING and leaves the map alone") {
  const auto map = parse_cluster_slots(three_shard_slots(), origin).map;
  const auto t0 = ClusterRequestFsm::Clock::time_point{} + 1h;
  ClusterRequestFsm fsm(0, t0 + 1s);
  CHECK(fsm.start(map, t0).node.port == 7000);
  auto a = fsm.on_reply(E("ASK 0 127.0.0.1:7001"), t0);
  REQUIRE(a.kind == Action::Kind::send);
  CHECK(a.asking);
  CHECK(a.node.port == 7001);
  CHECK_FALSE(a.update_map.has_value());
  CHECK_FALSE(a.refresh_map);
  // Other errors are the request's own answer.
  a = fsm.on_reply(E("WRONGTYPE Operation against a key holding the wrong kind of value"), t0);
  CHECK(a.kind == Action::Kind::complete);
  CHECK(fsm.reply().is_error("WRONGTYPE"));
}

TEST_CASE("after ASK the command is written right behind ASKING, in one request") {
  Request get;
  get.add("GET", "{t}k");
  const auto r = with_asking(get);
  CHECK(r.replies == 2);
  CHECK(r.bytes == "*1\r\n$6\r\nASKING\r\n*2\r\n$3\r\nGET\r\n$4\r\n{t}k\r\n");
}

TEST_CASE("a redirect loop ends at the redirect limit with the last server error") {
  const auto map = parse_cluster_slots(three_shard_slots(), origin).map;
  const auto t0 = ClusterRequestFsm::Clock::time_point{} + 1h;
  RedirectPolicy policy;
  policy.max_redirects = 3;
  ClusterRequestFsm fsm(5, t0 + 10s, policy);
  fsm.start(map, t0);
  Action a;
  for (int i = 0; i < 3; ++i) {
    a = fsm.on_reply(E(i % 2 ? "MOVED 5 127.0.0.1:7000" : "MOVED 5 127.0.0.1:7001"), t0);
    REQUIRE(a.kind == Action::Kind::send);
  }
  a = fsm.on_reply(E("MOVED 5 127.0.0.1:7001"), t0);
  CHECK(a.kind == Action::Kind::fail);
  CHECK(a.error == errc::server_error);
  CHECK(fsm.reply().is_error("MOVED"));
}

TEST_CASE("waiting out a migration (ASK then TRYAGAIN, over and over) ends at the deadline") {
  const auto map = parse_cluster_slots(three_shard_slots(), origin).map;
  const auto t0 = ClusterRequestFsm::Clock::time_point{} + 1h;
  RedirectPolicy policy;
  policy.max_redirects = 2;
  policy.retry_min = 10ms;
  policy.retry_max = 10ms;
  ClusterRequestFsm fsm(0, t0 + 115ms, policy);
  auto now = t0;
  int cycles = 0;
  for (;;) {
    REQUIRE(fsm.start(map, now).node.port == 7000);
    auto a = fsm.on_reply(E("ASK 0 127.0.0.1:7001"), now);
    REQUIRE(a.kind == Action::Kind::send);
    CHECK(a.asking);
    a = fsm.on_reply(E("TRYAGAIN Multiple keys request during rehashing of slot"), now);
    if (a.kind == Action::Kind::fail) {
      CHECK(a.error == errc::timeout);
      break;
    }
    REQUIRE(a.kind == Action::Kind::wait_then_send);
    now += a.delay;
    ++cycles;
  }
  CHECK(cycles == 10);  // five times the redirect limit
}

TEST_CASE("TRYAGAIN and CLUSTERDOWN back off within the deadline, then time out") {
  const auto map = parse_cluster_slots(three_shard_slots(), origin).map;
  const auto t0 = ClusterRequestFsm::Clock::time_point{} + 1h;
  RedirectPolicy policy;
  policy.retry_min = 10ms;
  policy.retry_max = 40ms;
  ClusterRequestFsm fsm(5, t0 + 100ms, policy);
  fsm.start(map, t0);
  auto now = t0;
  std::vector<long long> delays;
  for (;;) {
    auto a = fsm.on_reply(E(delays.size() % 2 ? "CLUSTERDOWN Hash slot not served" : "TRYAGAIN busy"), now);
    if (a.kind == Action::Kind::fail) {
      CHECK(a.error == errc::timeout);
      break;
    }
    REQUIRE(a.kind == Action::Kind::wait_then_send);
    CHECK(a.refresh_map == (delays.size() % 2 == 1));  // CLUSTERDOWN refreshes the map
    delays.push_back(a.delay.count());
    now += a.delay;
    REQUIRE(fsm.start(map, now).kind == Action::Kind::send);
  }
  // 10, 20, 40; the fourth (40, at 70) would leave no time to send: half the 30 ms left
  // instead. At 85, half of what is left (7 ms) is under retry_min: timeout.
  CHECK(delays == std::vector<long long>{10, 20, 40, 15});
  CHECK(now == t0 + 85ms);
  CHECK(fsm.reply().is_error());
}

TEST_CASE("retry_delay doubles up to its most, then fits the last waits into the time left") {
  // Every wait leaves at least `first` (10 ms) before the deadline for the attempt itself.
  using corocache::detail::redis::retry_delay;
  using ms = std::chrono::milliseconds;
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  const auto deadline = t0 + 1s;
  CHECK(retry_delay(ms(10), ms(200), 0, t0, deadline) == ms(10));
  CHECK(retry_delay(ms(10), ms(200), 3, t0, deadline) == ms(80));
  CHECK(retry_delay(ms(10), ms(200), 40, t0, deadline) == ms(200));  // no overflow past most
  CHECK(retry_delay(ms(10), ms(200), 40, deadline - 300ms, deadline) == ms(200));
  CHECK(retry_delay(ms(10), ms(200), 40, deadline - 210ms, deadline) == ms(200));  // 10 ms left to send
  CHECK(retry_delay(ms(10), ms(200), 40, deadline - 205ms, deadline) == ms(102));  // not 5 ms: half
  CHECK(retry_delay(ms(10), ms(200), 40, deadline - 150ms, deadline) == ms(75));
  CHECK(retry_delay(ms(10), ms(200), 0, deadline - 20ms, deadline) == ms(10));
  CHECK(retry_delay(ms(10), ms(200), 0, deadline - 19ms, deadline) == std::nullopt);
  CHECK(retry_delay(ms(10), ms(200), 40, deadline - 20ms, deadline) == ms(10));
  CHECK(retry_delay(ms(10), ms(200), 40, deadline - 19ms, deadline) == std::nullopt);
  CHECK(retry_delay(ms(10), ms(200), 0, deadline, deadline) == std::nullopt);
  CHECK(retry_delay(ms(10), ms(200), 0, deadline + 1s, deadline) == std::nullopt);
}

TEST_CASE("a lost link fails a written request and reroutes an unwritten one") {
  const auto map = parse_cluster_slots(three_shard_slots(), origin).map;
  const auto t0 = ClusterRequestFsm::Clock::time_point{} + 1h;
  ClusterRequestFsm written(5, t0 + 1s);
  written.start(map, t0);
  auto a = written.on_link_lost(true, t0);
  CHECK(a.kind == Action::Kind::fail);
  CHECK(a.error == errc::connection_lost);

  ClusterRequestFsm unwritten(5, t0 + 1s);
  unwritten.start(map, t0);
  a = unwritten.on_link_lost(false, t0);
  CHECK(a.kind == Action::Kind::wait_then_send);
  CHECK(a.refresh_map);
  a = unwritten.on_link_lost(false, t0 + 995ms);
  CHECK(a.kind == Action::Kind::fail);
  CHECK(a.error == errc::not_connected);
}

TEST_CASE("an unassigned slot waits for a map refresh, a passed deadline fails at once") {
  SlotMap empty;
  const auto t0 = ClusterRequestFsm::Clock::time_point{} + 1h;
  ClusterRequestFsm fsm(5, t0 + 1s);
  auto a = fsm.start(empty, t0);
  CHECK(a.kind == Action::Kind::wait_then_send);
  CHECK(a.refresh_map);
  CHECK(fsm.start(empty, t0 + 2s).kind == Action::Kind::fail);
}

TEST_CASE("group_by_slot: keys of one hash tag stay together, groups follow first appearance") {
  std::vector<std::string> keys = {"p:{a:ns}:v:1", "p:{b:ns}:v:1", "p:{a:ns}:v:2", "p:{c:ns}:v:1",
                                   "p:{b:ns}:v:2"};
  const auto groups = group_by_slot(keys);
  REQUIRE(groups.size() == 3);
  CHECK(groups[0] == std::vector<std::string>{"p:{a:ns}:v:1", "p:{a:ns}:v:2"});
  CHECK(groups[1] == std::vector<std::string>{"p:{b:ns}:v:1", "p:{b:ns}:v:2"});
  CHECK(groups[2] == std::vector<std::string>{"p:{c:ns}:v:1"});
  for (const auto& g : groups) {
    std::vector<std::string_view> argv = {"UNLINK"};
    argv.insert(argv.end(), g.begin(), g.end());
    CHECK(route_command(argv).kind == RouteKind::slot);  // each group is one sendable command
  }
  std::vector<std::string> none;
  CHECK(group_by_slot(none).empty());
}

TEST_CASE("DiscoveryFailure: not_connected naming each node, a rejected AUTH or TLS handshake outranks it") {
  DiscoveryFailure f;
  CHECK(f.empty());
  CHECK(f.code() == errc::not_connected);
  CHECK_FALSE(f.fatal());
  f.add(errc::not_connected, NodeAddress{"10.0.0.1", 7000},
        "corocache redis: not connected to 10.0.0.1:7000 (connect: Connection refused)");
  f.add(errc::protocol_error, NodeAddress{"::1", 7001}, "corocache: CLUSTER SLOTS failed: ERR disabled");
  CHECK(f.code() == errc::not_connected);
  CHECK_FALSE(f.fatal());
  CHECK(f.reasons() ==
        "not connected to 10.0.0.1:7000 (connect: Connection refused); [::1]:7001: CLUSTER SLOTS failed: ERR "
        "disabled");
  f.add(errc::auth_failed, NodeAddress{"h", 1}, "h:1: AUTH rejected");
  f.add(errc::tls_failed, NodeAddress{"h", 2}, "h:2: TLS failed");
  CHECK(f.code() == errc::auth_failed);  // the first configuration error stays
  CHECK(f.fatal());
  f.add(errc::not_connected, NodeAddress{"h", 3}, "refused");
  f.add(errc::not_connected, NodeAddress{"h", 4}, "refused");
  CHECK(f.reasons().ends_with("h:2: TLS failed; ..."));  // bounded: four reasons, then "..."
  CHECK(f.message().starts_with("corocache redis cluster: no slot map from any seed (not connected to"));
}

TEST_CASE("send_window: a down link gets a short window to be written in, a live one none") {
  CHECK(send_window(true, 2000ms) == 0ms);  // no separate limit: the caller's deadline
  CHECK(send_window(false, 2000ms) == 500ms);
  CHECK(send_window(false, 400ms) == 100ms);
  CHECK(send_window(false, 10ms) == 50ms);  // long enough for a loopback connect
  CHECK(send_window(false, 60000ms) == 500ms);
}

TEST_CASE("refresh_order: live links first, then primaries, replicas and seeds, without repeats") {
  SlotMap map;
  const NodeAddress a{"10.0.0.1", 7000}, a_r{"10.0.0.4", 7000}, b{"10.0.0.2", 7000}, seed{"10.0.0.9", 7000};
  map.assign(0, 8191, map.add_shard(Shard{a, "", {a_r}}));
  map.assign(8192, 16383, map.add_shard(Shard{b, "", {}}));
  const auto none_up = refresh_order(map, {b, seed}, [](const NodeAddress&) { return false; });
  CHECK(none_up == std::vector<NodeAddress>{a, a_r, b, seed});
  const auto b_up = refresh_order(map, {b, seed}, [&](const NodeAddress& n) { return n == b || n == seed; });
  CHECK(b_up == std::vector<NodeAddress>{b, seed, a, a_r});
  CHECK(refresh_order(SlotMap{}, {seed}, [](const NodeAddress&) { return true; }) ==
        std::vector<NodeAddress>{seed});
}

TEST_CASE("CLUSTER NODES: a node's own line gives the slots it migrates and imports") {
  const std::string nodes =
      "aaa 127.0.0.1:7001@17001 master - 0 1 2 connected 5461-10922 [7000->-zzz]\n"
      "bbb 127.0.0.1:7000@17000,node-b myself,master - 0 0 1 connected 0-5460 [5460->-ccc] [6000-<-aaa]\n"
      "ccc 127.0.0.1:7002@17002 master - 0 1 3 connected\n";
  CHECK(parse_own_migrations(nodes) == std::vector<Migration>{{"bbb", "ccc"}, {"aaa", "bbb"}});
  CHECK(parse_own_migrations("bbb 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-16383\n").empty());
  CHECK(parse_own_migrations("").empty());
  CHECK(parse_own_migrations("garbage\nbbb x myself,master - 0 0 1 connected [1->-] [x]\n").empty());
}

TEST_CASE("walk order: every migration's source before the node importing from it") {
  auto node = [](std::string id, long long port, std::vector<long long> slots) {
    std::vector<Reply> ranges;
    for (auto s : slots) ranges.push_back(I(s));
    return A({S("slots"), A(std::move(ranges)), S("nodes"), A({shard_node(id, port, "master", "online")})});
  };
  // a and b own slots, c owns none.
  const auto map =
      parse_cluster_shards(
          A({node("a", 7000, {0, 8000}), node("b", 7001, {8001, 16383}), node("c", 7002, {})}), origin)
          .map;
  const NodeAddress a{"127.0.0.1", 7000}, b{"127.0.0.1", 7001}, c{"127.0.0.1", 7002};
  using V = std::vector<NodeAddress>;
  CHECK(walk_order(map, {}) == V{a, b, c});
  CHECK(walk_order(map, {Migration{"b", "a"}}) == V{b, a, c});  // a imports from b: b first
  CHECK(walk_order(map, {Migration{"a", "c"}}) == V{a, b, c});
  CHECK(walk_order(map, {Migration{"c", "a"}, Migration{"b", "c"}}) == V{b, c, a});
  // A cycle is broken at its first node, which is visited again after its sources.
  CHECK(walk_order(map, {Migration{"a", "b"}, Migration{"b", "a"}}) == V{a, b, c, a});
  CHECK(walk_order(map, {Migration{"b", "a"}, Migration{"c", "b"}, Migration{"a", "c"}}) == V{a, c, b, a});
  CHECK(walk_order(map, {Migration{"x", "a"}, Migration{"a", "a"}}) == V{a, b, c});  // unknown, self
}

}  // namespace redis_cluster_test
