// The topology fixtures themselves (tests/support/redis_cluster.hpp, redis_sentinel.hpp,
// redis_tls.hpp): each starts a real deployment on loopback, answers, behaves as the
// deployment it stands for (the cluster routes and redirects, sentinels fail over, the TLS
// server refuses plain TCP) and cleans up. Later Cluster/Sentinel/TLS tests rely on this.
#include "support/redis_cluster.hpp"
#include "support/redis_sentinel.hpp"
#include "support/redis_tls.hpp"

#include <corocache/redis/detail/cluster_slots.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

namespace topology_fixtures_test {

using namespace corocache::test;
namespace cluster = corocache::detail::redis::cluster;

namespace {

using Clock = std::chrono::steady_clock;

long long ms_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

/// redis-cli in cluster mode (-c: follows MOVED/ASK) against `port`; returns its output
/// without the trailing newline.
std::string cluster_cli(std::uint16_t port, const std::vector<std::string>& args) {
  std::vector<std::string> cmd = {"redis-cli", "-c", "-h", "127.0.0.1", "-p", std::to_string(port)};
  cmd.insert(cmd.end(), args.begin(), args.end());
  auto out = run_command_ok(cmd, std::chrono::seconds(10));
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

TEST_CASE("RedisCluster: 3 primaries with a replica each route keys, redirect, move a slot and fail over") {
  const auto started = Clock::now();
  std::vector<std::string> dirs;
  {
    RedisCluster c;
    std::cout << "cluster of " << c.size() << " nodes ready in " << ms_since(started) << " ms\n";
    REQUIRE(c.size() == 6);
    const auto primaries = c.primaries();
    REQUIRE(primaries.size() == 3);
    for (auto p : primaries) CHECK(c.replicas_of(p).size() == 1);
    for (std::size_t i = 0; i < c.size(); ++i) dirs.push_back(c.node(i).dir());
    CHECK(c.seeds().size() == 6);
    CHECK(c.url().starts_with("redis+cluster://127.0.0.1:"));

    // Our CRC16 slot agrees with the server's CLUSTER KEYSLOT, hash tags included.
    SyncClient any("127.0.0.1", c.port(0));
    std::vector<std::string> keys = {"",        "{",      "}",     "{}",    "{}x",
                                     "x{}y{z}", "{a}{b}", "a{b}c", "{{x}}", "cc:{t1:ns}:value:k"};
    for (int i = 0; i < 300; ++i)
      keys.push_back("key:" + std::to_string(i * 7919) + (i % 3 ? "" : "{tag" + std::to_string(i) + "}"));
    for (const auto& k : keys) {
      const auto server = std::stoi(any.ok({"CLUSTER", "KEYSLOT", k}).text);
      INFO("key '" << k << "'");
      CHECK(cluster::key_slot(k) == server);
    }

    // The slot map parsed from the live cluster's CLUSTER SHARDS and SLOTS matches the nodes.
    auto to_reply = [](auto&& self, const SyncReply& r) -> corocache::detail::redis::Reply {
      using corocache::detail::redis::Reply;
      switch (r.type) {
        case REDIS_REPLY_STRING: return Reply::make_string(r.text);
        case REDIS_REPLY_STATUS: return Reply::make_status(r.text);
        case REDIS_REPLY_ERROR: return Reply::make_error(r.text);
        case REDIS_REPLY_INTEGER: return Reply::make_integer(std::stoll(r.text));
        case REDIS_REPLY_ARRAY: {
          std::vector<Reply> e;
          for (const auto& x : r.elements) e.push_back(self(self, x));
          return Reply::make_array(std::move(e));
        }
        default: return Reply::make_nil();
      }
    };
    const cluster::NodeAddress origin{"127.0.0.1", c.port(0)};
    const auto from_shards =
        cluster::parse_cluster_shards(to_reply(to_reply, any.ok({"CLUSTER", "SHARDS"})), origin);
    const auto from_slots =
        cluster::parse_cluster_slots(to_reply(to_reply, any.ok({"CLUSTER", "SLOTS"})), origin);
    REQUIRE(from_shards.ok());
    REQUIRE(from_slots.ok());
    CHECK(from_shards.map.complete());
    CHECK(from_slots.map.complete());
    for (int slot : {0, 1, 5000, 5461, 10922, 10923, 16383}) {
      const auto owner = c.port(c.owner_of_slot(slot));
      CHECK(from_shards.map.primary_of(slot)->port == owner);
      CHECK(from_slots.map.primary_of(slot)->port == owner);
      CHECK(from_shards.map.shard_of(slot)->replicas.size() == 1);
    }

    // Keys spread over the primaries; redis-cli -c follows MOVED from any seed.
    for (int i = 0; i < 12; ++i)
      CHECK(cluster_cli(c.port(static_cast<std::size_t>(i) % c.size()),
                        {"SET", "k" + std::to_string(i), "v" + std::to_string(i)}) == "OK");
    for (int i = 0; i < 12; ++i)
      CHECK(cluster_cli(c.port(static_cast<std::size_t>(i + 3) % c.size()),
                        {"GET", "k" + std::to_string(i)}) == "v" + std::to_string(i));
    // A node that does not own a key's slot answers MOVED <slot> <owner>.
    const std::string key = "k0";
    const int slot = cluster::key_slot(key);
    const std::size_t owner = c.owner_of_slot(slot);
    const std::size_t other = primaries[0] == owner ? primaries[1] : primaries[0];
    CHECK(SyncClient::once(c.port(other), {"GET", key}).text ==
          "MOVED " + std::to_string(slot) + " " + c.address(owner));

    // Moving a slot by hand: ASK while it migrates, MOVED after, no key lost.
    const std::string tag = "{moving}";
    const int mslot = cluster::key_slot(tag);
    const std::size_t from = c.owner_of_slot(mslot);
    const std::size_t to = primaries[0] == from ? primaries[1] : primaries[0];
    for (int i = 0; i < 30; ++i) c.node(from).run({"SET", tag + std::to_string(i), std::to_string(i)});
    c.begin_slot_migration(mslot, to);
    CHECK(c.move_slot_keys(mslot, 10) == 10);
    SyncClient src("127.0.0.1", c.port(from));
    std::string moved_key;  // one of the keys now on the target
    for (int i = 0; i < 30 && moved_key.empty(); ++i) {
      const auto r = src.command({"GET", tag + std::to_string(i)});
      if (r.is_error()) {
        CHECK(r.text == "ASK " + std::to_string(mslot) + " " + c.address(to));
        moved_key = tag + std::to_string(i);
      }
    }
    REQUIRE_FALSE(moved_key.empty());
    SyncClient dst("127.0.0.1", c.port(to));
    CHECK(dst.command({"GET", moved_key}).text.starts_with("MOVED "));  // without ASKING
    dst.ok({"ASKING"});
    CHECK_FALSE(dst.command({"GET", moved_key}).is_error());
    std::size_t rest = 0;
    for (std::size_t n; (n = c.move_slot_keys(mslot)) > 0;) rest += n;
    CHECK(rest == 20);
    c.finish_slot_migration(mslot);
    CHECK(c.owner_of_slot(mslot) == to);
    CHECK(SyncClient::once(c.port(from), {"GET", moved_key}).text ==
          "MOVED " + std::to_string(mslot) + " " + c.address(to));
    for (int i = 0; i < 30; ++i)
      CHECK(cluster_cli(c.port(from), {"GET", tag + std::to_string(i)}) == std::to_string(i));
    // migrate_slot does the three steps at once (and back again).
    CHECK(c.migrate_slot(mslot, from) == 30);
    CHECK(c.owner_of_slot(mslot) == from);

    // redis-cli --cluster reshard moves a block of slots with their keys.
    for (int i = 0; i < 50; ++i) cluster_cli(c.port(0), {"SET", "r" + std::to_string(i), std::to_string(i)});
    const int before_from = c.slot_count_of(primaries[0]), before_to = c.slot_count_of(primaries[1]);
    const auto reshard_start = Clock::now();
    c.reshard(primaries[0], primaries[1], 100);
    std::cout << "redis-cli --cluster reshard of 100 slots: " << ms_since(reshard_start) << " ms\n";
    CHECK(c.slot_count_of(primaries[0]) == before_from - 100);
    CHECK(c.slot_count_of(primaries[1]) == before_to + 100);
    for (int i = 0; i < 50; ++i)
      CHECK(cluster_cli(c.port(2), {"GET", "r" + std::to_string(i)}) == std::to_string(i));

    // Kill a primary: its replica takes over its slots; the data written before is there.
    const std::size_t victim = c.owner_of_slot(slot);
    const auto replica = c.replicas_of(victim).at(0);
    c.node(victim).run({"WAIT", "1", "2000"});
    const auto killed = Clock::now();
    c.kill(victim);
    const auto took = c.wait_for_failover(victim);
    std::cout << "cluster failover after SIGKILL of a primary: " << took.count()
              << " ms (detected+agreed after " << ms_since(killed) << " ms)\n";
    CHECK(c.owner_of_slot(slot) == replica);
    CHECK(cluster_cli(c.port(other), {"GET", key}) == "v0");
  }
  for (const auto& d : dirs) CHECK_FALSE(std::filesystem::exists(d));
  std::cout << "cluster test total " << ms_since(started) << " ms\n";
}

TEST_CASE("RedisCluster over TLS: redis-cli follows redirects on the TLS ports, SHARDS reports them") {
  const auto started = Clock::now();
  TempDir dir("cluster-tls");
  const auto certs = TestCertificates::generate(dir.path());
  RedisCluster::Options options;
  options.tls = &certs;
  RedisCluster c(options);
  std::cout << "TLS cluster ready in " << ms_since(started) << " ms\n";
  REQUIRE(c.tls_seeds().size() == 6);
  auto tls_cli = [&](std::size_t node, std::vector<std::string> args) {
    std::vector<std::string> cmd = {"redis-cli",   "--tls", "--cacert",
                                    certs.ca_cert, "-c",    "-h",
                                    "127.0.0.1",   "-p",    std::to_string(c.tls_port(node))};
    cmd.insert(cmd.end(), args.begin(), args.end());
    auto out = run_command_ok(cmd, std::chrono::seconds(10));
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  };
  for (int i = 0; i < 9; ++i)
    CHECK(tls_cli(static_cast<std::size_t>(i) % 6, {"SET", "t" + std::to_string(i), "x"}) == "OK");
  for (int i = 0; i < 9; ++i)
    CHECK(tls_cli(static_cast<std::size_t>(i + 1) % 6, {"GET", "t" + std::to_string(i)}) == "x");
  // Over a plain connection, CLUSTER SHARDS lists both ports; parsed for TLS, owners are TLS ports.
  std::vector<std::uint16_t> tls_ports;
  for (std::size_t i = 0; i < c.size(); ++i) tls_ports.push_back(c.tls_port(i));
  const auto shards = SyncClient::once(c.port(0), {"CLUSTER", "SHARDS"});
  std::function<corocache::detail::redis::Reply(const SyncReply&)> to_reply = [&](const SyncReply& r) {
    using corocache::detail::redis::Reply;
    switch (r.type) {
      case REDIS_REPLY_STRING: return Reply::make_string(r.text);
      case REDIS_REPLY_STATUS: return Reply::make_status(r.text);
      case REDIS_REPLY_ERROR: return Reply::make_error(r.text);
      case REDIS_REPLY_INTEGER: return Reply::make_integer(std::stoll(r.text));
      case REDIS_REPLY_ARRAY: {
        std::vector<Reply> e;
        for (const auto& x : r.elements) e.push_back(to_reply(x));
        return Reply::make_array(std::move(e));
      }
      default: return Reply::make_nil();
    }
  };
  const auto map = cluster::parse_cluster_shards(to_reply(shards), {"127.0.0.1", c.port(0)}, /*tls=*/true);
  REQUIRE(map.ok());
  CHECK(map.map.complete());
  for (int slot : {0, 8000, 16383}) {
    CHECK(map.map.primary_of(slot)->port == c.tls_port(c.owner_of_slot(slot)));
    CHECK(std::find(tls_ports.begin(), tls_ports.end(), map.map.shard_of(slot)->replicas.at(0).port) !=
          tls_ports.end());
  }
  std::cout << "TLS cluster test total " << ms_since(started) << " ms\n";
}

TEST_CASE("RedisSentinelGroup: three sentinels fail over to the replica when the primary is killed") {
  const auto started = Clock::now();
  std::vector<std::string> dirs;
  {
    RedisSentinelGroup g;
    std::cout << "sentinel group ready in " << ms_since(started) << " ms\n";
    REQUIRE(g.sentinel_count() == 3);
    CHECK(g.sentinel_addresses().size() == 3);
    CHECK(g.url() == "redis+sentinel://" + g.sentinel_addresses()[0] + "," + g.sentinel_addresses()[1] + "," +
                         g.sentinel_addresses()[2] + "/" + g.master_name());
    for (std::size_t i = 0; i < g.data_count(); ++i) dirs.push_back(g.data_node(i).dir());
    REQUIRE(g.primary_index() == 0);
    CHECK(SyncClient::once(g.data_node(1).port(), {"ROLE"}).elements.at(0).text == "slave");
    CHECK(SyncClient::once(g.data_node(1).port(), {"SET", "x", "1"}).text.starts_with("READONLY"));

    g.data_node(0).run({"SET", "before", "failover"});
    g.data_node(0).run({"WAIT", "1", "2000"});
    const auto old_port = g.primary_port();
    const auto killed = g.kill_primary();
    CHECK(killed == 0);
    const auto took = g.wait_for_failover(old_port);
    std::cout << "sentinel failover after SIGKILL of the primary: " << took.count() << " ms\n";
    CHECK(g.primary_index() == 1);
    CHECK(g.data_node(1).run({"GET", "before"}) == "failover");
    CHECK(g.data_node(1).run({"SET", "after", "ok"}) == "OK");
    for (std::size_t s = 0; s < g.sentinel_count(); ++s) {
      const auto r =
          SyncClient::once(g.sentinel_port(s), {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", g.master_name()});
      REQUIRE(r.elements.size() == 2);
      CHECK(r.elements[1].text == std::to_string(g.data_node(1).port()));
    }
  }
  for (const auto& d : dirs) CHECK_FALSE(std::filesystem::exists(d));
  std::cout << "sentinel test total " << ms_since(started) << " ms\n";
}

TEST_CASE("RedisSentinelGroup over TLS: sentinels answer on TLS and report the primary's TLS port") {
  const auto started = Clock::now();
  TempDir dir("sentinel-tls");
  const auto certs = TestCertificates::generate(dir.path());
  RedisSentinelGroup::Options options;
  options.tls = &certs;
  RedisSentinelGroup g(options);
  std::cout << "TLS sentinel group ready in " << ms_since(started) << " ms\n";
  CHECK(g.tls_url().starts_with("rediss+sentinel://127.0.0.1:"));
  auto ask_tls = [&](std::size_t sentinel) {
    auto r = run_command({"redis-cli", "--tls", "--cacert", certs.ca_cert, "-h", "127.0.0.1", "-p",
                          std::to_string(g.sentinel_tls_port(sentinel)), "SENTINEL",
                          "GET-MASTER-ADDR-BY-NAME", g.master_name()},
                         std::chrono::seconds(5));
    CHECK(r.ok());
    return r.output;
  };
  CHECK(ask_tls(0).find(std::to_string(g.data_tls_port(0))) != std::string::npos);
  CHECK(g.reported_primary_port() == g.data_tls_port(0));
  const auto old_port = g.primary_port();
  CHECK(old_port == g.data_node(0).port());
  g.kill_primary();
  const auto took = g.wait_for_failover(old_port);
  std::cout << "TLS sentinel failover after SIGKILL of the primary: " << took.count() << " ms\n";
  CHECK(g.primary_index() == 1);
  CHECK(ask_tls(2).find(std::to_string(g.data_tls_port(1))) != std::string::npos);
}

TEST_CASE("RedisTlsServer: generated certificates verify, TLS clients are served, plain TCP is refused") {
  const auto started = Clock::now();
  std::string dir;
  {
    RedisTlsServer s;
    std::cout << "TLS server with fresh certificates ready in " << ms_since(started) << " ms\n";
    dir = s.dir();
    const auto& c = s.certs();
    for (const auto* f : {&c.ca_cert, &c.server_cert, &c.server_key, &c.client_cert, &c.client_key,
                          &c.other_ca_cert, &c.other_server_cert})
      CHECK(std::filesystem::exists(*f));

    // The chain verifies against the CA (file and hashed directory), not the other CA.
    CHECK(run_command({"openssl", "verify", "-CAfile", c.ca_cert, c.server_cert}).ok());
    CHECK(run_command({"openssl", "verify", "-CApath", c.ca_dir, c.client_cert}).ok());
    CHECK_FALSE(run_command({"openssl", "verify", "-CAfile", c.other_ca_cert, c.server_cert}).ok());
    CHECK(run_command({"openssl", "verify", "-CAfile", c.other_ca_cert, c.other_server_cert}).ok());
    // The server certificate names localhost and 127.0.0.1, and nothing else.
    CHECK(run_command({"openssl", "x509", "-noout", "-in", c.server_cert, "-checkhost", "localhost"})
              .output.find("does match") != std::string::npos);
    CHECK(run_command({"openssl", "x509", "-noout", "-in", c.server_cert, "-checkip", "127.0.0.1"})
              .output.find("does match") != std::string::npos);
    CHECK(run_command({"openssl", "x509", "-noout", "-in", c.server_cert, "-checkhost", "wrong.example"})
              .output.find("does NOT match") != std::string::npos);

    // TLS clients are served, with or without a client certificate (auth-clients optional).
    auto set = s.cli({"SET", "tls-key", "tls-value"});
    CHECK(set.ok());
    CHECK(set.output.find("OK") != std::string::npos);
    auto get = s.cli({"GET", "tls-key"}, std::chrono::seconds(5), /*with_client_cert=*/true);
    CHECK(get.ok());
    CHECK(get.output.find("tls-value") != std::string::npos);

    // A client that trusts the other CA does not get through.
    auto wrong_ca = s.cli({"PING"}, std::chrono::seconds(5), false, c.other_ca_cert);
    CHECK(wrong_ca.output.find("PONG") == std::string::npos);

    // Plain TCP: the connect succeeds, but no Redis reply ever comes back.
    bool plain_answered = true;
    try {
      SyncClient plain("127.0.0.1", s.port(), std::chrono::seconds(2));
      plain_answered = !plain.command({"PING"}).is_error();
    } catch (const std::runtime_error& e) {
      plain_answered = false;
      std::cout << "plain TCP client refused: " << e.what() << '\n';
    }
    CHECK_FALSE(plain_answered);
    auto plain_cli = run_command({"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(s.port()), "PING"},
                                 std::chrono::seconds(5));
    CHECK(plain_cli.output.find("PONG") == std::string::npos);

    // Kill and restart on the same port keeps the certificates.
    s.kill();
    CHECK_FALSE(s.running());
    s.start();
    CHECK(s.cli({"PING"}).output.find("PONG") != std::string::npos);
  }
  CHECK_FALSE(std::filesystem::exists(dir));

  // --tls-auth-clients yes: a client certificate from the CA is required.
  RedisTlsServer::Options strict;
  strict.auth_clients = "yes";
  RedisTlsServer s(strict);
  CHECK(s.cli({"PING"}, std::chrono::seconds(5), true).output.find("PONG") != std::string::npos);
  CHECK(s.cli({"PING"}, std::chrono::seconds(5), false).output.find("PONG") == std::string::npos);
  std::cout << "TLS test total " << ms_since(started) << " ms\n";
}

}  // namespace topology_fixtures_test
