// A Redis Cluster backend whose seeds never give a slot map: each call says why. A rejected
// AUTH or TLS handshake fails calls at once with auth_failed / tls_failed, as on a single
// server; unreachable seeds, or seeds that are not cluster nodes, fail a call with
// not_connected (it was never sent) at its deadline, naming each seed's reason. Single
// redis-servers stand in for the seeds: discovery fails before any cluster is needed.

#include "support/redis_server.hpp"
#include "support/redis_tls.hpp"
#include "support/run.hpp"

#include <corocache/cache.hpp>
#include <corocache/errors.hpp>
#include <corocache/redis/backend.hpp>
#include <corocache/redis/topology_options.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace cluster_seeds_test {

using namespace corocache::test;
using namespace std::chrono_literals;
using corocache::Cache;
using corocache::errc;
using corocache::RedisBackend;
using corocache::RedisClusterOptions;
using Clock = std::chrono::steady_clock;

namespace {

struct Failure {
  boost::system::error_code ec;
  std::string what;
  Clock::duration took{};
};

/// Runs `call`; the error it threw (empty if none) and how long it took.
template <class T>
asio::awaitable<Failure> failure_of(asio::awaitable<T> call) {
  Failure f;
  const auto start = Clock::now();
  try {
    co_await std::move(call);
  } catch (const boost::system::system_error& e) {
    f.ec = e.code();
    f.what = e.what();
  }
  f.took = Clock::now() - start;
  co_return f;
}

RedisClusterOptions seeds_options(std::initializer_list<std::uint16_t> ports) {
  RedisClusterOptions o;
  for (auto port : ports) o.seeds.push_back({"127.0.0.1", port});
  o.connect_timeout = 200ms;  // a down seed's send window: 50 ms
  o.request_timeout = 2s;
  return o;
}

}  // namespace

TEST_CASE("Redis Cluster: unreachable seeds fail a call with not_connected at its deadline, naming each") {
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    Cache cache(RedisBackend(ex, seeds_options({1, 2})));
    auto scope = cache.tenant("t").with_timeout(1500ms);
    auto get = co_await failure_of(scope.get_key("k"));
    INFO(get.what);
    CHECK(get.ec == errc::not_connected);
    CHECK_THAT(get.what, Catch::Contains("no slot map from any seed"));
    CHECK_THAT(get.what, Catch::Contains("127.0.0.1:1"));
    CHECK_THAT(get.what, Catch::Contains("127.0.0.1:2"));
    CHECK(get.took >= 1000ms);  // it waited for a seed to come up (up to one retry before its deadline)
    // A walk over every primary (flush) needs the map too, and says the same.
    auto flush = co_await failure_of(scope.flush());
    INFO(flush.what);
    CHECK(flush.ec == errc::not_connected);
    CHECK_THAT(flush.what, Catch::Contains("127.0.0.1:1"));
  });
}

TEST_CASE("Redis Cluster: a seed that is not a cluster node fails calls with the server's reason") {
  RedisServer server;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    Cache cache(RedisBackend(ex, seeds_options({server.port()})));
    auto scope = cache.tenant("t").with_timeout(400ms);
    auto set = co_await failure_of(scope.set_key("k", "v"));
    INFO(set.what);
    CHECK(set.ec == errc::not_connected);
    CHECK_THAT(set.what, Catch::Contains("cluster support disabled"));
  });
  CHECK(server.run({"DBSIZE"}) == "0");  // nothing was written anywhere
}

TEST_CASE("Redis Cluster: a wrong password fails calls at once with auth_failed, never showing it") {
  RedisServer server({"--requirepass", "right-password"});
  auto options = seeds_options({server.port()});
  options.password = "Wr0ngPassw0rd";
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    Cache cache(RedisBackend(ex, options));
    auto scope = cache.tenant("t").with_timeout(10s);
    for (int i = 0; i < 3; ++i) {
      auto get = co_await failure_of(scope.get_key("k"));
      INFO(get.what);
      CHECK(get.ec == errc::auth_failed);
      CHECK_THAT(get.what, Catch::Contains("AUTH rejected"));
      CHECK(get.what.find(options.password) == std::string::npos);
      CHECK(get.took < 5s);  // at once, not at the 10 s deadline
    }
    // A waiting pop waits for the slot map first: it fails the same way.
    auto pop = co_await failure_of(scope.pop_from_queue("q", 10s));
    INFO(pop.what);
    CHECK(pop.ec == errc::auth_failed);
    CHECK(pop.took < 5s);
    // The password is fixed: once the seed's connection has reconnected (every
    // reconnect_max, 2 s), calls stop failing with the old rejection. This seed is no
    // cluster node, so what they get next is its refusal of CLUSTER SHARDS / SLOTS.
    server.run({"CONFIG", "SET", "requirepass", options.password});
    auto quick = cache.tenant("t").with_timeout(300ms);
    Failure walk;
    for (int i = 0; i < 40; ++i) {  // walks alone: they must ask the seeds again themselves
      walk = co_await failure_of(quick.flush());
      if (walk.ec != errc::auth_failed) break;
      co_await sleep_for(100ms);
    }
    INFO(walk.what);
    CHECK(walk.ec == errc::not_connected);
    CHECK_THAT(walk.what, Catch::Contains("cluster support disabled"));
    auto after = co_await failure_of(quick.get_key("k"));
    INFO(after.what);
    CHECK(after.ec == errc::not_connected);
    CHECK_THAT(after.what, Catch::Contains("cluster support disabled"));
  });
}

TEST_CASE("Redis Cluster over TLS: a certificate that does not verify fails calls at once with tls_failed") {
  RedisTlsServer server;
  RedisClusterOptions options = seeds_options({server.port()});
  options.seeds.front().host = "localhost";
  options.tls.enabled = true;
  options.tls.ca_file = server.other_ca_file();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    Cache cache(RedisBackend(ex, options));
    auto scope = cache.tenant("t").with_timeout(10s);
    auto get = co_await failure_of(scope.get_key("k"));
    INFO(get.what);
    CHECK(get.ec == errc::tls_failed);
    CHECK_THAT(get.what, Catch::Contains("localhost:" + std::to_string(server.port())));
    CHECK_THAT(get.what, Catch::Contains("does not verify"));
    CHECK(get.took < 5s);
  });
}

}  // namespace cluster_seeds_test
