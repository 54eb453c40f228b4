// RedisBackend on a Redis Cluster (tests/support/redis_cluster.hpp: 3 primaries + 1 replica
// each): a slot moved by hand under 200 coroutines, plain values turned into indexed ones
// during a migration, a primary SIGKILLed (its connection dropped once it left the map),
// MOVED after a reshard, SCAN-based flushing across primaries, also onto a primary that
// joined empty after discovery; a request written as its node's link comes back, whose
// reply is slow, keeps the caller's whole deadline; nodes that refuse CLUSTER SHARDS are
// mapped from CLUSTER SLOTS; a waiting pop outlives its primary's planned failover. The fixture's steps are
// blocking; the cache runs on an io_context served by two background threads meanwhile.

#include "support/redis_cluster.hpp"
#include "support/redis_tls.hpp"

#include <corocache/cache.hpp>
#include <corocache/errors.hpp>
#include <corocache/redis/backend.hpp>
#include <corocache/redis/detail/cluster_topology.hpp>
#include <corocache/redis/detail/cluster_walk.hpp>
#include <corocache/redis/topology_options.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <iostream>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace cluster_backend_test {

namespace {

using namespace std::chrono_literals;
using corocache::Cache;
using corocache::RedisBackend;
using corocache::RedisClusterOptions;
using Clock = std::chrono::steady_clock;
namespace asio = boost::asio;

/// An io_context run by two threads for the life of a test.
struct Background {
  asio::io_context io{2};
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::vector<std::thread> threads;
  Background() {
    for (int i = 0; i < 2; ++i) threads.emplace_back([this] { io.run(); });
  }
  ~Background() { stop(); }
  void stop() {
    work.reset();
    io.stop();
    for (auto& t : threads)
      if (t.joinable()) t.join();
  }
  /// Runs `aw` on the io_context and waits for its result. A system_error it throws is
  /// caught there and thrown again here from a copy of its code and message: an exception
  /// object handed across threads through a future is reference-counted inside libstdc++,
  /// which ThreadSanitizer cannot see, and reading its message here was reported as a race.
  template <class T>
  T sync(asio::awaitable<T> aw) {
    auto future = asio::co_spawn(io, caught(std::move(aw)), asio::use_future);
    if (future.wait_for(30s) != std::future_status::ready) FAIL("a call did not finish within 30 s");
    auto [value, code, message] = future.get();
    if (code) throw boost::system::system_error(code, message);
    return std::move(*value);
  }
  void sync(asio::awaitable<void> aw) { sync(as_value(std::move(aw))); }

 private:
  template <class T>
  struct Caught {
    std::optional<T> value;
    boost::system::error_code code;
    std::string message;
  };
  template <class T>
  static asio::awaitable<Caught<T>> caught(asio::awaitable<T> aw) {
    Caught<T> out;
    try {
      out.value.emplace(co_await std::move(aw));
    } catch (const boost::system::system_error& e) {
      out.code = e.code();
      out.message = std::string(e.what());
    }
    co_return out;
  }
  static asio::awaitable<bool> as_value(asio::awaitable<void> aw) {
    co_await std::move(aw);
    co_return true;
  }
};

/// The slot of a tenant's default namespace (the hash tag of all its keys).
int scope_slot(corocache::test::RedisCluster& cluster, const std::string& tenant) {
  return cluster.key_slot("{" + tenant + ":default}");
}

/// Counters shared by the worker coroutines of a load test.
struct Load {
  std::atomic<bool> stop{false};
  std::atomic<long> ops{0};
  std::atomic<long> wrong{0};
  std::atomic<long> errors{0};
  std::atomic<long> late{0};  ///< calls that took longer than their deadline (+ 1 s slack)
  std::atomic<int> running{0};
  std::mutex mutex;
  std::string first_error;
  void error(const std::string& what) {
    errors.fetch_add(1);
    std::lock_guard lock(mutex);
    if (first_error.empty()) first_error = what;
  }
};

/// Worker `i`: writes "<i>:<n>" to its own key and reads it back, until told to stop. Every
/// tenth worker stores indexed values (hashes written by the store script, read by the read
/// script: multi-key scripts that meet TRYAGAIN while their slot migrates).
asio::awaitable<void> own_key_worker(corocache::Scope<RedisBackend> scope, int i, Load& load,
                                     std::chrono::milliseconds deadline) {
  const std::string key = "w" + std::to_string(i);
  const auto indexed = corocache::SetOptions().with_indices("idx" + std::to_string(i % 3));
  for (long n = 0; !load.stop.load(); ++n) {
    const std::string value = std::to_string(i) + ":" + std::to_string(n);
    const auto start = Clock::now();
    try {
      bool stored = false;
      if (i % 10 == 0)
        stored = co_await scope.set_key(key, value, indexed);
      else
        stored = co_await scope.set_key(key, value);
      const auto read = co_await scope.get_key(key);
      if (!stored || read != value) load.wrong.fetch_add(1);
    } catch (const std::exception& e) {
      load.error(e.what());
    }
    if (Clock::now() - start > 2 * deadline + 1s) load.late.fetch_add(1);
    load.ops.fetch_add(1);
  }
  load.running.fetch_sub(1);
}

/// Counts how one GET through `scope` ends: a value or nil, overloaded, or anything else.
struct GetOutcomes {
  std::atomic<int> ok{0}, overloaded{0}, other{0};
  int total() const { return ok.load() + overloaded.load() + other.load(); }
};
asio::awaitable<void> counted_get(corocache::Scope<RedisBackend> scope, GetOutcomes& outcomes) {
  try {
    const auto value = co_await scope.get_key("k");
    static_cast<void>(value);
    outcomes.ok.fetch_add(1);
  } catch (const boost::system::system_error& e) {
    (e.code() == corocache::errc::overloaded ? outcomes.overloaded : outcomes.other).fetch_add(1);
  }
}

/// Worker `i` of the failover test: writes increasing numbers to its key and reads them
/// back. A read may be behind (the dead primary's last writes can be lost) but never ahead.
asio::awaitable<void> failover_worker(corocache::Scope<RedisBackend> scope, int i, Load& load,
                                      std::atomic<bool>& recovered,
                                      std::atomic<long>& errors_after_recovery) {
  const std::string key = "k" + std::to_string(i);
  for (long n = 0; !load.stop.load(); ++n) {
    try {
      co_await scope.set_key(key, std::to_string(n));
      const auto read = co_await scope.get_key(key);
      if (read && std::stol(*read) > n) load.wrong.fetch_add(1);
    } catch (const boost::system::system_error& e) {
      const auto c = e.code();
      if (c != corocache::errc::timeout && c != corocache::errc::connection_lost &&
          c != corocache::errc::not_connected)
        load.error(e.what());
      if (recovered.load()) errors_after_recovery.fetch_add(1);
    }
    load.ops.fetch_add(1);
  }
  load.running.fetch_sub(1);
}

}  // namespace

TEST_CASE("Redis Cluster backend: a slot moved by hand under 200 coroutines gives no wrong answers") {
  corocache::test::RedisCluster cluster;
  Background bg;
  Cache cache(RedisBackend(bg.io.get_executor(), RedisClusterOptions::from_url(cluster.url())));
  const auto deadline = 5000ms;
  auto scope = cache.tenant("mig").with_timeout(deadline);
  const int slot = scope_slot(cluster, "mig");
  const std::size_t from = cluster.owner_of_slot(slot);
  std::size_t to = 0;
  for (auto p : cluster.primaries())
    if (p != from) to = p;

  Load load;
  constexpr int workers = 200;
  load.running = workers;
  for (int i = 0; i < workers; ++i)
    asio::co_spawn(bg.io, own_key_worker(scope, i, load, deadline), asio::detached);
  // Progress between the steps: the load runs through every state of the migration.
  auto progress = [&](long more) {
    const long target = load.ops.load() + more;
    REQUIRE(corocache::test::poll_until([&] { return load.ops.load() >= target; }, 20000ms));
  };
  progress(workers * 2);
  cluster.begin_slot_migration(slot, to);
  progress(workers);
  std::size_t moved = 0;
  for (std::size_t n; (n = cluster.move_slot_keys(slot, 25)) > 0;) {
    moved += n;
    progress(workers / 2);
  }
  progress(workers);
  cluster.finish_slot_migration(slot);
  progress(workers * 2);
  load.stop = true;
  REQUIRE(corocache::test::poll_until([&] { return load.running.load() == 0; }, 20000ms));

  const auto stats = cache.backend().stats();
  INFO("first error: " << load.first_error);
  // Most keys were MIGRATEd; some were rewritten on the importing node (ASK) first.
  CHECK(moved >= workers / 2);
  CHECK(load.wrong == 0);
  CHECK(load.errors == 0);
  CHECK(load.late == 0);
  CHECK(stats.cluster.ask > 0);    // keys already moved were followed to the importing node
  CHECK(stats.cluster.moved > 0);  // and the slot's new owner learnt after the finish
  CHECK(cluster.owner_of_slot(slot) == to);
  std::cout << "slot migration under " << workers << " coroutines: " << load.ops << " set+get pairs, "
            << stats.cluster.ask << " ASK, " << stats.cluster.moved << " MOVED, " << stats.cluster.retries
            << " retries\n";
}

TEST_CASE(
    "Redis Cluster backend: turning plain values into indexed ones while their slot migrates loses none") {
  // Redis stops a script that writes a key it has just deleted on a slot being migrated
  // away. A plain value becomes a hash by such a delete and write: the store and the batch
  // declare a key that never exists, so the server keeps them off the slot until the
  // migration ends, and they wait within their deadline.
  corocache::test::RedisCluster cluster;
  Background bg;
  Cache cache(RedisBackend(bg.io.get_executor(), RedisClusterOptions::from_url(cluster.url())));
  auto scope = cache.tenant("conv");
  const int slot = scope_slot(cluster, "conv");
  const std::size_t from = cluster.owner_of_slot(slot);
  std::size_t to = 0;
  for (auto p : cluster.primaries())
    if (p != from) to = p;
  const auto grouped = corocache::SetOptions().with_indices("g");
  bg.sync(scope.set_key("in-g", "x", grouped));  // the index set exists: every declared key is here
  bg.sync(scope.set_key("a", "old-a"));
  bg.sync(scope.set_key("b", "old-b"));
  bg.sync(scope.set_key("p", "old-p"));
  cluster.begin_slot_migration(slot, to);

  auto timed_out = [&](auto call) {
    try {
      bg.sync(std::move(call));
      return false;
    } catch (const boost::system::system_error& e) {
      return e.code() == corocache::errc::timeout;
    }
  };
  auto hurried = scope.with_timeout(300ms);
  CHECK(timed_out(hurried.set_key("a", "new-a", grouped)));
  auto converting = hurried.batch();
  converting.set_key("b", "new-b", grouped).set_key("p", "new-p");
  CHECK(timed_out(converting.commit()));
  CHECK(bg.sync(scope.get_key("a")) == std::optional<std::string>("old-a"));
  CHECK(bg.sync(scope.get_key("b")) == std::optional<std::string>("old-b"));
  CHECK(bg.sync(scope.get_key("p")) == std::optional<std::string>("old-p"));
  // Stores that delete nothing still run during the migration.
  CHECK(bg.sync(hurried.set_key("in-g", "y", grouped)));
  auto plain = hurried.batch();
  plain.set_key("p", "plain-p").refresh_key("p", 1h);
  bg.sync(plain.commit());
  CHECK(bg.sync(scope.get_key("p")) == std::optional<std::string>("plain-p"));

  // Started during the migration, the conversions complete once it ended.
  auto patient = scope.with_timeout(20s);
  auto store = asio::co_spawn(bg.io, patient.set_key("a", "new-a", grouped), asio::use_future);
  auto batch = patient.batch();
  batch.set_key("b", "new-b", grouped);
  auto committed = asio::co_spawn(bg.io, batch.commit(), asio::use_future);
  std::this_thread::sleep_for(200ms);
  CHECK(store.wait_for(0s) == std::future_status::timeout);  // still waiting for the slot
  while (cluster.move_slot_keys(slot, 2) > 0) {
  }
  cluster.finish_slot_migration(slot);
  REQUIRE(store.wait_for(15s) == std::future_status::ready);
  REQUIRE(committed.wait_for(15s) == std::future_status::ready);
  CHECK(store.get());
  CHECK_NOTHROW(committed.get());
  CHECK(bg.sync(scope.get_key("a")) == std::optional<std::string>("new-a"));
  CHECK(bg.sync(scope.get_key("b")) == std::optional<std::string>("new-b"));
  CHECK(bg.sync(scope.list_keys_by_index("g")) == std::vector<std::string>{"a", "b", "in-g"});
  CHECK(cluster.owner_of_slot(slot) == to);
}

TEST_CASE("Redis Cluster: a request written as its node's link comes back gets the caller's whole deadline") {
  using corocache::detail::redis::ClusterTopology;
  using corocache::detail::redis::Request;
  corocache::test::RedisCluster cluster;
  Background bg;
  auto options = RedisClusterOptions::from_url(cluster.url());
  options.connection.reconnect_min = 200ms;  // the request goes out while the link is down
  auto topo = std::make_shared<ClusterTopology>(bg.io.get_executor(), options);
  const std::string key = "{slow}";
  const int slot = cluster.key_slot(key);
  const std::size_t owner = cluster.owner_of_slot(slot);
  Request warm;
  warm.add("GET", key);
  bg.sync(ClusterTopology::exec(topo, slot, std::move(warm), 5s));
  // The server drops the link; the client reconnects after its backoff (200 ms). A request
  // sent meanwhile gets a short window (500 ms) to be written in. Written when the link is
  // back, it runs 700 ms: its reply comes past the window, well within 5 s. A machine that
  // stalls past the backoff may see the link back before the request is sent: kill it again.
  // Each kill of a short-lived link doubles the backoff (400, 800 ms, ...); past the window
  // the request comes back unwritten and is resent, and once written it still gets 5 s.
  bool link_down = false;
  for (int attempt = 0; attempt < 5 && !link_down; ++attempt) {
    const auto up = topo->connection_stats();
    corocache::test::SyncClient::once(cluster.port(owner),
                                      {"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"});
    REQUIRE(corocache::test::poll_until([&] { return topo->connection_stats().link_drops > up.link_drops; },
                                        5000ms, 1ms));
    const auto down = topo->connection_stats();
    link_down = down.connects - down.link_drops < up.connects - up.link_drops;
  }
  REQUIRE(link_down);
  Request slow;
  slow.add("EVAL",
           "local t = redis.call('TIME') local start = t[1] * 1000000 + t[2] "
           "repeat local n = redis.call('TIME') until n[1] * 1000000 + n[2] - start > 700000 "
           "return 'done'",
           1, key);
  const auto start = Clock::now();
  const auto reply = bg.sync(ClusterTopology::exec(topo, slot, std::move(slow), 5s));
  CHECK(reply.str == "done");
  CHECK(Clock::now() - start >= 700ms);  // it did run, after the link came back
  topo->close();
}

// The per-connection fields of RedisOptions set through RedisClusterOptions::connection act
// on every node's connection: here a small max_reply_bytes on each node a tenant lives on,
// which must not break discovery or SCAN walks (their replies are not values).
TEST_CASE("Redis Cluster backend: options.connection reaches every node's connections") {
  corocache::test::RedisCluster::Options co;
  co.replicas_per_primary = 0;
  corocache::test::RedisCluster cluster(co);
  Background bg;
  auto options = RedisClusterOptions::from_url(cluster.url());
  options.connection.max_reply_bytes = 4096;
  Cache cache(RedisBackend(bg.io.get_executor(), options), corocache::CacheOptions{.prefix = "tune"});
  const std::string big(8192, 'x');
  std::set<std::size_t> owners;
  for (int i = 0; i < 12; ++i) {
    const std::string tenant = "t" + std::to_string(i);
    const std::size_t owner = cluster.owner_of_slot(scope_slot(cluster, tenant));
    owners.insert(owner);
    // Written by another client: this backend refuses to write what it could not read back.
    corocache::test::SyncClient::once(cluster.port(owner),
                                      {"SET", "tune:{" + tenant + ":default}:v:big", big});
    auto scope = cache.tenant(tenant);
    bool too_large = false;
    try {
      bg.sync(scope.get_key("big"));
    } catch (const boost::system::system_error& e) {
      too_large = e.code() == corocache::errc::reply_too_large;
    }
    CHECK(too_large);
    bg.sync(scope.set_key("small", "s"));  // the same link goes on
    CHECK(bg.sync(scope.get_key("small")) == std::optional<std::string>("s"));
  }
  CHECK(owners.size() == 3);  // every primary's connection was checked
  // The backend's own replies are not values: the slot map (above: discovery worked) and
  // SCAN pages are read with at least the default limits. 80 keys in one page: > 4096 bytes.
  auto many = cache.tenant("many");
  for (int i = 0; i < 80; ++i) bg.sync(many.set_key("k" + std::to_string(i), "v"));
  CHECK(bg.sync(many.invalidate_prefix("k")) == 80);

  // max_pending and max_blocking_connections reach a node's connections too.
  auto limited_options = RedisClusterOptions::from_url(cluster.url());
  limited_options.connection.max_pending = 4;
  limited_options.connection.max_blocking_connections = 1;
  Cache limited(RedisBackend(bg.io.get_executor(), limited_options),
                corocache::CacheOptions{.prefix = "limited"});
  auto one = limited.tenant("one");
  bg.sync(one.set_key("k", "v"));  // the slot map is known and the node's link is up
  // 64 GETs at once on one node: no more than 4 may be queued or in flight.
  GetOutcomes outcomes;
  for (int i = 0; i < 64; ++i) asio::co_spawn(bg.io, counted_get(one, outcomes), asio::detached);
  REQUIRE(corocache::test::poll_until([&] { return outcomes.total() == 64; }, 10000ms));
  CHECK(outcomes.other.load() == 0);
  CHECK(outcomes.ok.load() >= 1);
  CHECK(outcomes.overloaded.load() >= 1);
  // Two waiting pops on one node share its single blocking connection: the second queues
  // (with the default pool it would open a second one as soon as the first is open).
  auto first_pop = asio::co_spawn(bg.io, one.pop_from_queue("jobs", 3000ms), asio::use_future);
  auto second_pop = asio::co_spawn(bg.io, one.pop_from_queue("jobs", 3000ms), asio::use_future);
  REQUIRE(corocache::test::poll_until([&] { return limited.backend().stats().blocking_open >= 1; }, 2000ms));
  std::this_thread::sleep_for(300ms);
  CHECK(limited.backend().stats().blocking_open == 1);
  REQUIRE(first_pop.wait_for(10s) == std::future_status::ready);
  REQUIRE(second_pop.wait_for(10s) == std::future_status::ready);
  CHECK_FALSE(first_pop.get());
  CHECK_FALSE(second_pop.get());
}

// A server older than 7.0 does not know CLUSTER SHARDS; here every node's default user may
// not run it (NOPERM), which takes the same path: the map comes from CLUSTER SLOTS. A reply
// limit of 2 elements is smaller than either map reply, which is not a value and may be read.
TEST_CASE("Redis Cluster backend: nodes that refuse CLUSTER SHARDS are mapped from CLUSTER SLOTS") {
  corocache::test::RedisCluster::Options co;
  co.replicas_per_primary = 0;
  corocache::test::RedisCluster cluster(co);
  for (std::size_t i = 0; i < cluster.size(); ++i)
    REQUIRE(
        corocache::test::SyncClient::once(cluster.port(i), {"ACL", "SETUSER", "default", "-cluster|shards"})
            .text == "OK");
  Background bg;
  auto options = RedisClusterOptions::from_url(cluster.url());
  options.connection.max_reply_elements = 2;
  Cache cache(RedisBackend(bg.io.get_executor(), options), corocache::CacheOptions{.prefix = "old"});
  std::set<std::size_t> owners;
  for (int i = 0; i < 12; ++i) {
    const std::string tenant = "t" + std::to_string(i);
    owners.insert(cluster.owner_of_slot(scope_slot(cluster, tenant)));
    auto scope = cache.tenant(tenant);
    bg.sync(scope.set_key("k", tenant));
    CHECK(bg.sync(scope.get_key("k")) == std::optional<std::string>(tenant));
    // Stored on the slot's owner, not only somewhere the client could read it back from.
    CHECK(corocache::test::SyncClient::once(cluster.port(cluster.owner_of_slot(scope_slot(cluster, tenant))),
                                            {"GET", "old:{" + tenant + ":default}:v:k"})
              .text == tenant);
  }
  CHECK(owners.size() == 3);
  // Per node, from INFO commandstats: SHARDS asked and refused, SLOTS answered instead.
  std::size_t slots_nodes = 0;
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    const auto stats = corocache::test::SyncClient::once(cluster.port(i), {"INFO", "commandstats"}).text;
    const auto line = [&](const std::string& command) {
      const auto at = stats.find("cmdstat_" + command + ":");
      return at == std::string::npos ? std::string() : stats.substr(at, stats.find('\n', at) - at);
    };
    if (line("cluster|slots").empty()) continue;
    ++slots_nodes;
    INFO(line("cluster|shards"));
    CHECK(line("cluster|shards").find(":calls=0,") != std::string::npos);
    CHECK(line("cluster|shards").find("rejected_calls=0,") == std::string::npos);
  }
  CHECK(slots_nodes >= 1);
  CHECK(bg.sync(cache.tenant("t0").invalidate_prefix("k")) == 1);  // SCAN pages still read
}

/// True once node `i` has a client blocked in a command (a waiting pop), within 5 s.
bool has_blocked_client(const corocache::test::RedisCluster& cluster, std::size_t i) {
  return corocache::test::poll_until(
      [&] {
        const auto clients = corocache::test::SyncClient::once(cluster.port(i), {"INFO", "clients"}).text;
        return clients.find("blocked_clients:1") != std::string::npos;
      },
      5000ms);
}

/// Checks that the waiting pop `pop` of the "jobs" queue returns `value` within 10 s, that
/// it was delivered once, and that the ledger's deletion behind it ends.
void check_popped(Background& bg, const Cache<RedisBackend>& cache,
                  const corocache::Scope<RedisBackend>& scope, std::future<std::optional<std::string>>& pop,
                  const std::string& value) {
  REQUIRE(pop.wait_for(10s) == std::future_status::ready);
  std::optional<std::string> popped;
  std::string error;
  try {
    popped = pop.get();
  } catch (const std::exception& e) {
    error = e.what();
  }
  INFO(error);
  CHECK(popped == std::optional<std::string>(value));
  CHECK_FALSE(bg.sync(scope.pop_from_queue("jobs")));  // delivered once
  CHECK(corocache::test::poll_until([&] { return cache.backend().stats().settle_pending() == 0; }, 5000ms));
}

// A planned failover (CLUSTER FAILOVER on the replica) demotes the primary, which answers
// every blocked command with -UNBLOCKED and closes the client: the BLMOVE did not run. The
// waiting pop must wait on for the rest of its wait on the new primary, not fail.
TEST_CASE("Redis Cluster backend: a waiting pop blocked on a primary demoted by CLUSTER FAILOVER waits on") {
  corocache::test::RedisCluster cluster;
  Background bg;
  Cache cache(RedisBackend(bg.io.get_executor(), RedisClusterOptions::from_url(cluster.url())));
  auto scope = cache.tenant("demote");
  const int slot = scope_slot(cluster, "demote");
  const std::size_t primary = cluster.owner_of_slot(slot);
  const auto replicas = cluster.replicas_of(primary);
  REQUIRE_FALSE(replicas.empty());
  bg.sync(scope.set_key("k", "v"));  // the slot map is known
  auto pop = asio::co_spawn(bg.io, scope.pop_from_queue("jobs", 60s), asio::use_future);
  REQUIRE(has_blocked_client(cluster, primary));
  const auto failed_over_at = Clock::now();
  REQUIRE(corocache::test::SyncClient::once(cluster.port(replicas.front()), {"CLUSTER", "FAILOVER"}).text ==
          "OK");
  REQUIRE(
      corocache::test::poll_until([&] { return cluster.owner_of_slot(slot) == replicas.front(); }, 15000ms));
  // Still waiting, now on the new primary: the push wakes it.
  CHECK(pop.wait_for(300ms) == std::future_status::timeout);
  bg.sync(scope.push_to_queue("jobs", "after"));
  check_popped(bg, cache, scope, pop, "after");
  CHECK(Clock::now() - failed_over_at < 30s);  // the push woke it, not the end of its wait
}

// A primary that dies takes the whole cluster down until its replica is promoted (Redis's
// default cluster-require-full-coverage), and the healthy shards answer the commands blocked
// on them with -CLUSTERDOWN. A waiting pop there waits on through the other shard's
// failover (until 2026-11-28 it returned nil when the cluster came back).
TEST_CASE("Redis Cluster backend: a waiting pop on a healthy shard waits through another shard's failover") {
  corocache::test::RedisCluster cluster;
  Background bg;
  Cache cache(RedisBackend(bg.io.get_executor(), RedisClusterOptions::from_url(cluster.url())));
  auto scope = cache.tenant("healthy");
  const std::size_t primary = cluster.owner_of_slot(scope_slot(cluster, "healthy"));
  std::size_t victim = primary;
  for (const int slot : {0, 8192, 16383})
    if (cluster.owner_of_slot(slot) != primary) victim = cluster.owner_of_slot(slot);
  REQUIRE(victim != primary);
  REQUIRE_FALSE(cluster.replicas_of(victim).empty());
  bg.sync(scope.set_key("k", "v"));  // the slot map is known
  auto pop = asio::co_spawn(bg.io, scope.pop_from_queue("jobs", 60s), asio::use_future);
  REQUIRE(has_blocked_client(cluster, primary));
  cluster.kill(victim);
  const auto failover = cluster.wait_for_failover(victim);
  INFO("failover took " << failover.count() << " ms");
  const auto errors = corocache::test::SyncClient::once(cluster.port(primary), {"INFO", "errorstats"}).text;
  CHECK(errors.find("errorstat_CLUSTERDOWN") != std::string::npos);
  // Still waiting once the cluster is back: a push wakes it.
  CHECK(pop.wait_for(500ms) == std::future_status::timeout);
  bg.sync(scope.push_to_queue("jobs", "after"));
  check_popped(bg, cache, scope, pop, "after");
}

// While its slot is being migrated, a BLMOVE on the queue and a new ledger runs on neither
// node (ASK, TRYAGAIN): the pop waits through the migration and then takes a push made
// meanwhile on the importing node (until 2026-11-28 it popped once through the routed path,
// which met TRYAGAIN until its request deadline and failed with timeout).
TEST_CASE("Redis Cluster backend: a waiting pop on a slot being migrated waits on and takes a later push") {
  corocache::test::RedisCluster cluster;
  Background bg;
  Cache cache(RedisBackend(bg.io.get_executor(), RedisClusterOptions::from_url(cluster.url())));
  auto scope = cache.tenant("moving");
  const int slot = scope_slot(cluster, "moving");
  const std::size_t from = cluster.owner_of_slot(slot);
  std::size_t to = from;
  for (const auto p : cluster.primaries())
    if (p != from) to = p;
  REQUIRE(to != from);
  bg.sync(scope.set_key("k", "v"));  // the slot map is known
  cluster.begin_slot_migration(slot, to);
  auto pop = asio::co_spawn(bg.io, scope.pop_from_queue("jobs", 20s), asio::use_future);
  CHECK(pop.wait_for(1500ms) == std::future_status::timeout);
  bg.sync(scope.push_to_queue("jobs", "during"));              // one key: ASK takes it to the importing node
  CHECK(pop.wait_for(1500ms) == std::future_status::timeout);  // still migrating: still waiting
  while (cluster.move_slot_keys(slot) > 0) {
  }
  cluster.finish_slot_migration(slot);
  check_popped(bg, cache, scope, pop, "during");
}

TEST_CASE("Redis Cluster backend: calls recover after a primary is SIGKILLed and its replica promoted") {
  corocache::test::RedisCluster cluster;
  Background bg;
  Cache cache(RedisBackend(bg.io.get_executor(), RedisClusterOptions::from_url(cluster.url())));
  auto scope = cache.tenant("fo").with_timeout(1000ms);
  const int slot = scope_slot(cluster, "fo");
  const std::size_t victim = cluster.owner_of_slot(slot);
  REQUIRE_FALSE(cluster.replicas_of(victim).empty());
  bg.sync(scope.set_key("before", "1"));
  REQUIRE(bg.sync(scope.get_key("before")) == std::optional<std::string>("1"));

  // Writers on the slot keep going through the failover; each read must see a value that
  // was written to its key (or nothing: an acknowledged write can die with the primary).
  Load load;
  constexpr int workers = 20;
  load.running = workers;
  std::atomic<long> errors_after_recovery{0};
  std::atomic<bool> recovered{false};
  for (int i = 0; i < workers; ++i)
    asio::co_spawn(bg.io, failover_worker(scope, i, load, recovered, errors_after_recovery), asio::detached);
  REQUIRE(corocache::test::poll_until([&] { return load.ops.load() >= workers * 5; }, 10000ms));

  // A waiting pop on the victim's slot leaves an idle connection in the victim's blocking pool.
  CHECK_FALSE(bg.sync(scope.pop_from_queue("jobs", 50ms)));
  REQUIRE(cache.backend().stats().blocking_open == 1);

  // Traffic on the victim, more than the test sends after the kill (see the last check).
  for (int i = 0; i < 2000; ++i) bg.sync(scope.get_key("before"));
  const auto requests_before_kill = cache.backend().stats().connection.requests;
  const auto killed_at = Clock::now();
  cluster.kill(victim);
  // Recovery: from the kill until a fresh set+get on the slot succeeds.
  std::optional<std::chrono::milliseconds> recovery;
  for (int attempt = 0; attempt < 60 && !recovery; ++attempt) {
    try {
      bg.sync(scope.set_key("probe", std::to_string(attempt)));
      const auto read = bg.sync(scope.get_key("probe"));
      REQUIRE(read == std::optional<std::string>(std::to_string(attempt)));
      recovery = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed_at);
    } catch (const boost::system::system_error& e) {
      const auto c = e.code();
      INFO(e.what());
      REQUIRE((c == corocache::errc::timeout || c == corocache::errc::connection_lost ||
               c == corocache::errc::not_connected));
    }
  }
  REQUIRE(recovery);
  recovered = true;
  const long ops_at_recovery = load.ops.load();
  REQUIRE(corocache::test::poll_until([&] { return load.ops.load() >= ops_at_recovery + workers * 10; },
                                      10000ms));
  load.stop = true;
  REQUIRE(corocache::test::poll_until([&] { return load.running.load() == 0; }, 20000ms));
  const auto failover = cluster.wait_for_failover(victim);
  std::cout << "primary SIGKILL: calls on its slots recovered after " << recovery->count()
            << " ms (fixture: cluster-node-timeout 1000 ms; failover agreed within " << failover.count()
            << " ms of the check)\n";
  INFO("first error: " << load.first_error);
  CHECK(load.errors == 0);
  CHECK(load.wrong == 0);
  // A call already written to the dead primary just before recovery may still fail once.
  CHECK(errors_after_recovery <= workers);
  CHECK(*recovery < 15000ms);  // a correctness bound (promotion ~2-3 s), not a measurement
  CHECK(cache.backend().stats().cluster.refreshes >= 2);
  // The dead primary left the map, and its connection with it (no reconnecting to it for
  // the life of the process): flush_all connects to every primary, three in all.
  CHECK(corocache::test::poll_until(
      [&] {
        bg.sync(cache.flush_all());
        return cache.backend().stats().cluster.nodes == 3;
      },
      5000ms));
  CHECK(cache.backend().stats().cluster.nodes == 3);
  // Its blocking pool went with it: the idle connection to the dead node is closed, not
  // left reconnecting; a waiting pop on the slot now opens one to the promoted replica.
  CHECK(cache.backend().stats().blocking_open == 0);
  bg.sync(scope.push_to_queue("jobs", "j1"));
  CHECK(bg.sync(scope.pop_from_queue("jobs", 1000ms)) == std::optional<std::string>("j1"));
  CHECK(cache.backend().stats().blocking_open == 1);
  // The pop's ledger is deleted in the background: let that job end before the io_context
  // stops (docs/redis_queues.md, "Background jobs and shutdown").
  CHECK(corocache::test::poll_until([&] { return cache.backend().stats().settle_pending() == 0; }, 5000ms));
  // The dropped connection's counters stay in the sums: they never go down.
  CHECK(cache.backend().stats().connection.requests >= requests_before_kill);
}

TEST_CASE("Redis Cluster backend: MOVED after a reshard updates the slot map once") {
  corocache::test::RedisCluster cluster;
  Background bg;
  Cache cache(RedisBackend(bg.io.get_executor(), RedisClusterOptions::from_url(cluster.url())));
  auto scope = cache.tenant("rs");
  const int slot = scope_slot(cluster, "rs");
  for (int i = 0; i < 20; ++i) bg.sync(scope.set_key("k" + std::to_string(i), "v" + std::to_string(i)));
  const auto before = cache.backend().stats().cluster;
  CHECK(before.moved == 0);
  const std::size_t from = cluster.owner_of_slot(slot);
  std::size_t to = 0;
  for (auto p : cluster.primaries())
    if (p != from) to = p;
  CHECK(cluster.migrate_slot(slot, to) == 20);

  CHECK(bg.sync(scope.get_key("k0")) == std::optional<std::string>("v0"));
  const auto after_first = cache.backend().stats().cluster;
  CHECK(after_first.moved == before.moved + 1);
  for (int i = 0; i < 20; ++i)
    CHECK(bg.sync(scope.get_key("k" + std::to_string(i))) ==
          std::optional<std::string>("v" + std::to_string(i)));
  CHECK(cache.backend().stats().cluster.moved == after_first.moved);  // the map learnt the new owner

  // With a short refresh_interval, a reshard is learnt from the periodic refresh (started by
  // any request once the interval passed), without a MOVED.
  Cache refreshing(RedisBackend(bg.io.get_executor(),
                                RedisClusterOptions::from_url(cluster.url() + "?refresh_interval_ms=50")));
  auto other = refreshing.tenant("rs2");
  const int other_slot = scope_slot(cluster, "rs2");
  bg.sync(other.set_key("k", "v"));
  const std::size_t other_from = cluster.owner_of_slot(other_slot);
  std::size_t other_to = 0;
  for (auto p : cluster.primaries())
    if (p != other_from) other_to = p;
  cluster.migrate_slot(other_slot, other_to);
  const auto refreshes = refreshing.backend().stats().cluster.refreshes;
  REQUIRE(corocache::test::poll_until(
      [&] {
        bg.sync(refreshing.tenant("elsewhere").get_key("x"));  // any request may start the refresh
        return refreshing.backend().stats().cluster.refreshes > refreshes;
      },
      5000ms));
  CHECK(bg.sync(other.get_key("k")) == std::optional<std::string>("v"));
  CHECK(refreshing.backend().stats().cluster.moved == 0);
}

TEST_CASE("Redis Cluster backend: flush_all and invalidate_prefix reach every primary") {
  corocache::test::RedisCluster cluster;
  Background bg;
  Cache cache(RedisBackend(bg.io.get_executor(), RedisClusterOptions::from_url(cluster.url())),
              corocache::CacheOptions{"clflush"});
  Cache other(RedisBackend(bg.io.get_executor(), RedisClusterOptions::from_url(cluster.url())),
              corocache::CacheOptions{"clother"});
  // Tenants whose slots lie on every primary.
  std::vector<std::string> tenants;
  std::vector<std::size_t> owners;
  for (int i = 0; owners.size() < 3 && i < 100; ++i) {
    const std::string t = "t" + std::to_string(i);
    const auto owner = cluster.owner_of_slot(scope_slot(cluster, t));
    tenants.push_back(t);
    if (std::find(owners.begin(), owners.end(), owner) == owners.end()) owners.push_back(owner);
  }
  REQUIRE(owners.size() == 3);
  for (const auto& t : tenants) {
    bg.sync(cache.tenant(t).set_key("a", "1"));
    bg.sync(cache.tenant(t).set_key("b", "2", corocache::SetOptions().with_indices("idx")));
    bg.sync(other.tenant(t).set_key("a", "kept"));
  }
  CHECK(bg.sync(cache.tenant(tenants.front()).list_keys_by_index("idx")) == std::vector<std::string>{"b"});
  bg.sync(cache.flush_all());
  for (const auto& t : tenants) {
    CHECK_FALSE(bg.sync(cache.tenant(t).get_key("a")));
    CHECK_FALSE(bg.sync(cache.tenant(t).get_key("b")));
    CHECK(bg.sync(other.tenant(t).get_key("a")) == std::optional<std::string>("kept"));
  }
}

TEST_CASE("Redis Cluster backend: invalidation reaches keys MIGRATEd onto a primary added after discovery") {
  corocache::test::RedisCluster cluster;
  Background bg;
  Cache cache(RedisBackend(bg.io.get_executor(), RedisClusterOptions::from_url(cluster.url())),
              corocache::CacheOptions{"clgrow"});
  auto scope = cache.tenant("grow");
  const int slot = scope_slot(cluster, "grow");
  for (int i = 0; i < 30; ++i) bg.sync(scope.set_key("session:" + std::to_string(i), "stale"));
  for (int i = 0; i < 5; ++i) bg.sync(scope.set_key("kept:" + std::to_string(i), "fresh"));

  // A fourth primary joins with no slot, and the tenant's slot starts moving onto it: some
  // keys are on the new node, the others still on the old owner. The backend's map
  // predates the new node.
  const std::size_t added = cluster.add_empty_primary();
  const std::size_t from = cluster.owner_of_slot(slot);
  cluster.begin_slot_migration(slot, added);
  REQUIRE(cluster.move_slot_keys(slot, 20) == 20);
  auto keys_on = [&](std::size_t node) {
    return std::stoi(corocache::test::SyncClient::once(cluster.port(node),
                                                       {"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)})
                         .text);
  };
  REQUIRE(keys_on(added) == 20);
  REQUIRE(keys_on(from) == 15);
  // Both nodes report the migration in their own CLUSTER NODES line, as the walk reads it
  // to visit the source first (cluster_walk.hpp).
  const corocache::detail::redis::cluster::Migration moving{cluster.node_id(from), cluster.node_id(added)};
  for (const auto node : {from, added}) {
    const auto text = corocache::test::SyncClient::once(cluster.port(node), {"CLUSTER", "NODES"}).text;
    CHECK(corocache::detail::redis::cluster::parse_own_migrations(text) ==
          std::vector<corocache::detail::redis::cluster::Migration>{moving});
  }

  // Without the new node in the walk, the session keys moved there would survive.
  CHECK(bg.sync(scope.invalidate_prefix("session:")) == 30);
  for (int i = 0; i < 30; ++i) CHECK_FALSE(bg.sync(scope.get_key("session:" + std::to_string(i))));
  for (int i = 0; i < 5; ++i)
    CHECK(bg.sync(scope.get_key("kept:" + std::to_string(i))) == std::optional<std::string>("fresh"));
  CHECK(cache.backend().stats().cluster.nodes == 4);
  CHECK(keys_on(added) + keys_on(from) == 5);

  bg.sync(cache.flush_all());
  CHECK(keys_on(added) == 0);
  CHECK(keys_on(from) == 0);

  // Once the slot is the new node's, it stays in the map and answers directly.
  bg.sync(scope.set_key("after", "v"));
  while (cluster.move_slot_keys(slot) > 0) {
  }
  cluster.finish_slot_migration(slot);
  CHECK(bg.sync(scope.get_key("after")) == std::optional<std::string>("v"));
  CHECK(keys_on(added) == 1);
}

TEST_CASE("Redis Cluster backend over TLS: rediss+cluster:// reaches every primary on its TLS port") {
  corocache::test::TempDir dir("cluster-backend-tls");
  const auto certs = corocache::test::TestCertificates::generate(dir.path());
  corocache::test::RedisCluster::Options options;
  options.tls = &certs;
  corocache::test::RedisCluster cluster(options);
  std::string url = "rediss+cluster://";
  for (const auto& seed : cluster.tls_seeds()) url += (url.back() == '/' ? "" : ",") + seed;
  url += "?tls_ca_file=" + certs.ca_cert;
  Background bg;
  Cache cache(RedisBackend(bg.io.get_executor(), RedisClusterOptions::from_url(url)));
  std::vector<std::size_t> owners;
  for (int i = 0; owners.size() < 3 && i < 100; ++i) {
    const std::string t = "t" + std::to_string(i);
    const auto owner = cluster.owner_of_slot(scope_slot(cluster, t));
    if (std::find(owners.begin(), owners.end(), owner) != owners.end()) continue;
    owners.push_back(owner);
    bg.sync(cache.tenant(t).set_key("k", t));
    CHECK(bg.sync(cache.tenant(t).get_key("k")) == std::optional<std::string>(t));
  }
  CHECK(owners.size() == 3);
  const auto stats = cache.backend().stats();
  CHECK(stats.cluster.moved == 0);  // the map named the TLS ports: no redirect needed
  CHECK(stats.connection.connects >= 3);
}

}  // namespace cluster_backend_test
