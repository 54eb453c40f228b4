// RedisBackend through Redis Sentinel on a real deployment (RedisSentinelGroup: primary +
// replica + 3 sentinels): the primary is discovered, a wrong master name fails clearly, TLS
// sentinels lead to a TLS primary, a waiting pop outlives its primary's demotion, and a
// SIGKILL of the primary under load gives no wrong answers, every call ends within its
// deadline, and calls succeed again after the failover (the time to recover is printed;
// docs/redis_topology.md records it).
#include "support/redis_sentinel.hpp"
#include "support/redis_tls.hpp"
#include "support/run.hpp"

#include <corocache/any_backend_redis.hpp>
#include <corocache/cache.hpp>
#include <corocache/redis/backend.hpp>
#include <corocache/redis/detail/sentinel_monitor.hpp>
#include <corocache/redis/topology_options.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace sentinel_backend_test {

using namespace std::chrono_literals;
using corocache::Cache;
using corocache::CacheOptions;
using corocache::RedisBackend;
using corocache::RedisSentinelOptions;
using corocache::test::RedisSentinelGroup;
using corocache::test::run;
using corocache::test::SyncClient;
using corocache::test::TempDir;
using corocache::test::TestCertificates;
using corocache::test::wait_until;
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// A waiting pop's outcome, filled in by pop_into on the io_context's thread.
struct PopOutcome {
  std::atomic<bool> done{false};
  std::optional<std::string> value;
  std::string error;
};

asio::awaitable<void> pop_into(corocache::Scope<RedisBackend> scope, std::chrono::milliseconds wait,
                               std::shared_ptr<PopOutcome> out) {
  try {
    out->value = co_await scope.pop_from_queue("jobs", wait);
  } catch (const std::exception& e) {
    out->error = e.what();
  }
  out->done = true;
}

// Options that notice a lost or moved primary within about a second.
RedisSentinelOptions quick_options(const RedisSentinelGroup& group) {
  auto options = RedisSentinelOptions::from_url(group.url());
  options.request_timeout = 1000ms;
  options.connect_timeout = 500ms;
  return options;
}

// True when the data node on `port` has a client blocked in a command (a waiting pop).
bool has_blocked_client(std::uint16_t port) {
  return SyncClient(std::string("127.0.0.1"), port)
             .command({"INFO", "clients"})
             .text.find("blocked_clients:1") != std::string::npos;
}

// Pushes `value` to the "jobs" queue once a primary takes writes again (up to 15 s).
asio::awaitable<bool> push_when_writable(corocache::Scope<RedisBackend> scope, std::string value) {
  asio::steady_timer pause(co_await asio::this_coro::executor);
  for (int i = 0; i < 150; ++i) {
    try {
      co_await scope.push_to_queue("jobs", value);
      co_return true;
    } catch (const boost::system::system_error&) {
    }
    pause.expires_after(100ms);
    co_await pause.async_wait(asio::use_awaitable);
  }
  co_return false;
}

// Swaps the roles by hand: `primary` is promoted and `replica` follows it. Unlike a Sentinel
// failover, REPLICAOF does not disconnect clients, and the sentinels keep naming the old primary.
void make_primary(corocache::test::RedisServer& primary, corocache::test::RedisServer& replica) {
  SyncClient(std::string("127.0.0.1"), primary.port()).command({"REPLICAOF", "NO", "ONE"});
  SyncClient(std::string("127.0.0.1"), replica.port())
      .command({"REPLICAOF", "127.0.0.1", std::to_string(primary.port())});
}

// The key the facade stores `name` under in the default tenant scope of prefix `p`.
std::string find_key(SyncClient& c, const std::string& prefix) {
  const auto keys = c.command({"KEYS", prefix + ":*"});
  return keys.elements.empty() ? std::string() : keys.elements.front().text;
}

}  // namespace

TEST_CASE(
    "Sentinel: the backend writes to the primary the sentinels name, and a wrong master name fails clearly") {
  RedisSentinelGroup group;
  const auto primary = group.primary_port();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto options = RedisSentinelOptions::from_url(group.url());
    Cache<RedisBackend> cache(RedisBackend(ex, options), CacheOptions{.prefix = "sentinel-basic"});
    auto scope = cache.tenant("t");
    const bool stored = co_await scope.set("answer", std::string("42"), 60s);
    CHECK(stored);
    const auto got = co_await scope.get<std::string>("answer");
    CHECK(got == std::optional<std::string>("42"));
    // The primary has it (the replica may too, by replication: it is not asked).
    SyncClient on_primary("127.0.0.1", primary);
    CHECK_FALSE(find_key(on_primary, "sentinel-basic").empty());
    CHECK(cache.backend().options().sentinel->discoveries() >= 1);

    // RedisSentinelOptions::connection reaches the primary's connection: a reply over its
    // max_reply_bytes fails its call, and the link goes on.
    auto tuned = options;
    tuned.connection.max_reply_bytes = 4096;
    Cache<RedisBackend> bounded(RedisBackend(ex, tuned), CacheOptions{.prefix = "sentinel-tuned"});
    const std::vector<std::string> write_big = {"SET", "sentinel-tuned:{t:default}:v:big",
                                                std::string(8192, 'x')};
    on_primary.command(write_big);  // another client: the backend refuses to write it itself
    bool too_large = false;
    try {
      const auto big = co_await bounded.tenant("t").get_key("big");
      static_cast<void>(big);
    } catch (const boost::system::system_error& e) {
      too_large = e.code() == corocache::errc::reply_too_large;
    }
    CHECK(too_large);
    const bool small_stored = co_await bounded.tenant("t").set_key("small", "s");
    CHECK(small_stored);
    const auto bounded_stats = bounded.backend().stats().connection;
    CHECK(bounded_stats.connects == 1);  // the skipped reply kept the link
    CHECK(bounded_stats.link_drops == 0);

    // The same through AnyBackend from the URL.
    Cache<corocache::AnyBackend> any(corocache::make_backend(ex, group.url()),
                                     CacheOptions{.prefix = "sentinel-any"});
    const bool any_stored = co_await any.tenant("t").set("k", std::string("any"), 60s);
    CHECK(any_stored);
    const auto any_got = co_await any.tenant("t").get<std::string>("k");
    CHECK(any_got == std::optional<std::string>("any"));

    auto wrong = options;
    wrong.master_name = "no-such-master";
    wrong.request_timeout = 20s;  // the failure must come from the sentinels' answers, not this
    Cache<RedisBackend> lost(RedisBackend(ex, wrong), CacheOptions{.prefix = "sentinel-wrong"});
    std::string message;
    bool not_connected = false;
    const auto started = Clock::now();
    try {
      co_await lost.tenant("t").get<std::string>("x");
    } catch (const boost::system::system_error& e) {
      not_connected = e.code() == corocache::errc::not_connected;
      message = e.what();
    }
    const auto took = Clock::now() - started;
    CHECK(not_connected);
    CHECK(message.find("no-such-master") != std::string::npos);
    CHECK(message.find("no sentinel monitors") != std::string::npos);
    CHECK(took < 10s);  // at once (well within the 20 s deadline), not at the deadline
    // A second call fails at once too (the rejection holds until an attempt succeeds).
    bool again = false;
    try {
      co_await lost.tenant("t").get<std::string>("x");
    } catch (const boost::system::system_error& e) {
      again = e.code() == corocache::errc::not_connected;
    }
    CHECK(again);
  });
}

TEST_CASE("Sentinel over TLS: TLS sentinels name the TLS primary, which is reached with verification on") {
  TempDir dir("sentinel-backend-tls");
  const auto certs = TestCertificates::generate(dir.path());
  RedisSentinelGroup::Options group_options;
  group_options.tls = &certs;
  RedisSentinelGroup group(group_options);
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto options = RedisSentinelOptions::from_url(group.tls_url() + "?tls_ca_file=" + certs.ca_cert);
    REQUIRE(options.tls.enabled);
    Cache<RedisBackend> cache(RedisBackend(ex, options), CacheOptions{.prefix = "sentinel-tls"});
    const bool stored = co_await cache.tenant("t").set("k", std::string("over tls"), 60s);
    CHECK(stored);
    const auto got = co_await cache.tenant("t").get<std::string>("k");
    CHECK(got == std::optional<std::string>("over tls"));
    SyncClient on_primary("127.0.0.1", group.primary_port());
    CHECK_FALSE(find_key(on_primary, "sentinel-tls").empty());
  });
}

TEST_CASE(
    "Sentinel: a demoted primary's -READONLY fails the call as not run, and ROLE keeps the link off it") {
  RedisSentinelGroup group;
  auto& node0 = group.data_node(0);
  auto& node1 = group.data_node(1);
  REQUIRE(group.primary_port() == node0.port());
  auto describe = [](auto&& call) -> asio::awaitable<std::pair<bool, std::string>> {
    try {
      co_await call();
    } catch (const boost::system::system_error& e) {
      co_return std::make_pair(e.code() == corocache::errc::not_connected, std::string(e.what()));
    }
    co_return std::make_pair(false, std::string("no error"));
  };
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        Cache<RedisBackend> cache(RedisBackend(ex, quick_options(group)),
                                  CacheOptions{.prefix = "sentinel-readonly"});
        auto scope = cache.tenant("t");
        co_await scope.set("before", std::string("1"), 60s);
        // Swap the roles by hand: unlike a Sentinel failover, REPLICAOF does not disconnect
        // clients, so the backend's link to node 0 stays up and its next write meets READONLY.
        make_primary(node1, node0);
        const auto readonly = co_await describe([&] { return scope.set("during", std::string("2"), 60s); });
        CHECK(readonly.first);
        CHECK_THAT(readonly.second, Catch::Contains("READONLY"));
        // Sentinels still name node 0; its ROLE says slave, so no link is made to it.
        const auto role = co_await describe([&] { return scope.get<std::string>("before"); });
        CHECK(role.first);
        CHECK_THAT(role.second, Catch::Contains("ROLE slave"));
        // Back as it was: the calls succeed again.
        make_primary(node0, node1);
        bool recovered = false;
        const auto until = Clock::now() + 15s;
        asio::steady_timer pause(ex);
        while (!recovered && Clock::now() < until) {
          const auto attempt = co_await describe([&] { return scope.set("after", std::string("3"), 60s); });
          recovered = attempt.second == "no error";
          pause.expires_after(50ms);
          if (!recovered) co_await pause.async_wait(asio::use_awaitable);
        }
        CHECK(recovered);
        const auto during = co_await scope.get<std::string>("during");
        CHECK_FALSE(during);  // the READONLY write did not run anywhere
      },
      1, 60s);
}

// REPLICAOF demotes a primary: Redis answers its blocked commands with -UNBLOCKED (they did
// not run) and closes those links. A waiting pop blocked there waits on for the rest of its
// wait: here the roles are swapped by hand and back (the sentinels keep naming node 0
// throughout), and a push after that reaches the pop.
TEST_CASE(
    "Sentinel: a waiting pop blocked on a primary demoted by REPLICAOF waits on, and gets a later push") {
  RedisSentinelGroup group;
  auto& node0 = group.data_node(0);
  auto& node1 = group.data_node(1);
  REQUIRE(group.primary_port() == node0.port());
  auto outcome = std::make_shared<PopOutcome>();
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        Cache<RedisBackend> cache(RedisBackend(ex, quick_options(group)),
                                  CacheOptions{.prefix = "sentinel-unblocked"});
        auto scope = cache.tenant("t");
        co_await scope.set("ready", std::string("1"), 60s);
        asio::co_spawn(ex, pop_into(scope, 30000ms, outcome), asio::detached);
        const bool blocked = co_await wait_until([&] { return has_blocked_client(node0.port()); }, 5s);
        REQUIRE(blocked);
        make_primary(node1, node0);
        asio::steady_timer pause(ex, 1000ms);
        co_await pause.async_wait(asio::use_awaitable);
        CHECK_FALSE(outcome->done.load());  // the -UNBLOCKED did not end the pop
        make_primary(node0, node1);
        // Push once writes reach node 0 again; the pop, still waiting, takes the element.
        const bool pushed = co_await push_when_writable(scope, "after");
        REQUIRE(pushed);
        co_await wait_until([&] { return outcome->done.load(); }, 10s);
      },
      1, 60s);
  REQUIRE(outcome->done.load());
  INFO(outcome->error);
  CHECK(outcome->value == std::optional<std::string>("after"));
}

// In a Sentinel failover the links to the old primary drop (here it is killed; a graceful
// failover's +switch-master drops them too). A waiting pop blocked there waits on for the
// rest of its wait and gets a push made on the new primary (before 2026-11-28 it failed with
// connection_lost).
TEST_CASE("Sentinel: a waiting pop blocked on a primary that is killed waits through the failover") {
  RedisSentinelGroup group;
  const auto old_port = group.primary_port();
  auto outcome = std::make_shared<PopOutcome>();
  std::chrono::milliseconds failover_took{0};
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        Cache<RedisBackend> cache(RedisBackend(ex, quick_options(group)),
                                  CacheOptions{.prefix = "sentinel-pop-kill"});
        auto scope = cache.tenant("t");
        co_await scope.set("ready", std::string("1"), 60s);
        asio::co_spawn(ex, pop_into(scope, 30000ms, outcome), asio::detached);
        const bool blocked = co_await wait_until([&] { return has_blocked_client(old_port); }, 5s);
        REQUIRE(blocked);
        group.kill_primary();
        auto failover = std::async(std::launch::async, [&] { return group.wait_for_failover(old_port); });
        co_await wait_until([&] { return failover.wait_for(0s) == std::future_status::ready; }, 30s);
        failover_took = failover.get();
        CHECK_FALSE(outcome->done.load());  // the lost link did not end the pop
        const bool pushed = co_await push_when_writable(scope, "after failover");
        REQUIRE(pushed);
        co_await wait_until([&] { return outcome->done.load(); }, 10s);
        const bool settled = co_await wait_until(
            [&] { return cache.backend().stats().settle_pending() == 0; }, std::chrono::seconds(20));
        CHECK(settled);
        CHECK(cache.backend().stats().settle_failed == 0);
      },
      1, 90s);
  INFO("failover took " << failover_took.count() << " ms");
  REQUIRE(outcome->done.load());
  INFO(outcome->error);
  CHECK(outcome->value == std::optional<std::string>("after failover"));
}

namespace {

// One writer/reader of its own key. Values are "w<id>:<n>" with n increasing. What a read
// may return (asynchronous replication may lose writes the old primary acknowledged just
// before it died, so "the last acknowledged value" is too strong across the failover):
// - only a value of this key (never another key's), never one not yet written;
// - a read that completed before the kill: at least the last write acknowledged before it
//   (one primary, one pipelined connection);
// - a read started after a write that began after the kill was acknowledged: at least that
//   write (it can only have run on the new primary, the only primary from then on).
struct Worker {
  int id = 0;
  long next = 1;          // the next value to write
  long acked_before = 0;  // the last write acknowledged before the kill
  long floor_after = 0;   // the last write begun after the kill and acknowledged
  // Read by the test body on the other thread of the io_context.
  std::atomic<int> rounds{0};        // successful write+read rounds
  std::atomic<int> rounds_after{0};  // ... whose write began after the kill
};

struct Shared {
  std::atomic<bool> stop{false};
  std::atomic<int> finished{0};
  std::atomic<Clock::rep> killed_at{0};       // 0: not yet
  std::atomic<Clock::rep> first_recovery{0};  // first write begun after the kill and acknowledged
  std::atomic<long> calls{0}, failures{0}, overruns{0};
  std::mutex mutex;
  std::vector<std::string> wrong;  // descriptions of wrong answers
  void wrong_answer(std::string what) {
    std::lock_guard lock(mutex);
    if (wrong.size() < 20) wrong.push_back(std::move(what));
  }
};

constexpr auto call_timeout = 1500ms;
// Slack over a call's deadline for scheduling on 2 busy cores (and sanitizers).
constexpr auto deadline_slack = 1000ms;

asio::awaitable<void> work(Cache<RedisBackend>& cache, Worker& w, Shared& s) {
  auto scope = cache.tenant("load").with_timeout(call_timeout);
  const std::string name = "key" + std::to_string(w.id);
  const std::string tag = "w" + std::to_string(w.id) + ":";
  asio::steady_timer pause(co_await asio::this_coro::executor);
  while (!s.stop.load()) {
    bool ok = true;
    // --- write ---
    const long n = w.next++;
    const auto began = Clock::now();
    const auto killed = s.killed_at.load();
    const bool after_kill = killed != 0 && began.time_since_epoch().count() > killed;
    try {
      s.calls.fetch_add(1);
      co_await scope.set(name, tag + std::to_string(n), 60s);
      if (killed == 0 && s.killed_at.load() == 0) w.acked_before = n;
      if (after_kill) {
        w.floor_after = n;
        Clock::rep expected = 0;
        s.first_recovery.compare_exchange_strong(expected, Clock::now().time_since_epoch().count());
      }
    } catch (const boost::system::system_error&) {
      ok = false;
      s.failures.fetch_add(1);
    }
    if (Clock::now() - began > call_timeout + deadline_slack) s.overruns.fetch_add(1);
    // --- read ---
    const auto read_began = Clock::now();
    try {
      s.calls.fetch_add(1);
      const auto got = co_await scope.get<std::string>(name);
      const bool before_kill = s.killed_at.load() == 0;
      const long floor = before_kill ? w.acked_before : w.floor_after;
      if (!got) {
        if (floor > 0)
          s.wrong_answer(name + ": a miss after value " + std::to_string(floor) + " was acknowledged");
      } else if (!got->starts_with(tag)) {
        s.wrong_answer(name + ": read another key's value '" + *got + "'");
      } else {
        const long v = std::stol(got->substr(tag.size()));
        if (v >= w.next) s.wrong_answer(name + ": read " + std::to_string(v) + ", never written");
        if (v < floor)
          s.wrong_answer(name + ": read " + std::to_string(v) + " after " + std::to_string(floor) +
                         " was acknowledged" + (before_kill ? "" : " by the new primary"));
      }
    } catch (const boost::system::system_error&) {
      ok = false;
      s.failures.fetch_add(1);
    }
    if (Clock::now() - read_began > call_timeout + deadline_slack) s.overruns.fetch_add(1);
    if (ok) {
      ++w.rounds;
      if (after_kill) ++w.rounds_after;
    } else {
      pause.expires_after(20ms);  // pace a worker whose calls fail fast
      co_await pause.async_wait(asio::use_awaitable);
    }
  }
  s.finished.fetch_add(1);
}

}  // namespace

TEST_CASE("Sentinel: SIGKILL of the primary under load: no wrong answers, calls recover after the failover") {
  RedisSentinelGroup group;
  constexpr int workers = 50;
  std::vector<Worker> w(workers);
  for (int i = 0; i < workers; ++i) w[i].id = i;
  Shared s;
  std::chrono::milliseconds failover_took{0};
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto options = RedisSentinelOptions::from_url(group.url());
        options.connect_timeout = 500ms;
        Cache<RedisBackend> cache(RedisBackend(ex, options), CacheOptions{.prefix = "sentinel-kill"});
        for (auto& worker : w) asio::co_spawn(ex, work(cache, worker, s), asio::detached);
        const bool warmed = co_await wait_until(
            [&] {
              for (const auto& x : w)
                if (x.rounds < 5) return false;
              return true;
            },
            20s);
        REQUIRE(warmed);
        // A waiting pop opens a blocking-pool connection to the old primary; it must follow
        // the failover too (checked below).
        auto queues = cache.tenant("queues");
        const auto none_yet = co_await queues.pop_from_queue("q", 100ms);
        CHECK_FALSE(none_yet);
        CHECK(cache.backend().stats().blocking_open == 1);
        const auto old_port = group.primary_port();
        group.kill_primary();
        const auto killed = Clock::now();
        s.killed_at.store(killed.time_since_epoch().count());
        auto failover = std::async(std::launch::async, [&] { return group.wait_for_failover(old_port); });
        const bool recovered = co_await wait_until(
            [&] {
              for (const auto& x : w)
                if (x.rounds_after < 3) return false;
              return true;
            },
            30s);
        failover_took = failover.get();
        s.stop.store(true);
        const bool stopped = co_await wait_until([&] { return s.finished.load() == workers; }, 10s);
        CHECK(stopped);
        CHECK(recovered);
        // The pooled blocking connection reconnects to the new primary: a waiting pop gets a
        // push made after it started.
        std::atomic<bool> pushed{false};
        asio::co_spawn(
            ex,
            [queues, &pushed]() -> asio::awaitable<void> {
              asio::steady_timer t(co_await asio::this_coro::executor, 200ms);
              co_await t.async_wait(asio::use_awaitable);
              co_await queues.push_to_queue("q", "after failover");
              pushed = true;
            },
            asio::detached);
        const auto popped = co_await queues.with_timeout(3s).pop_from_queue("q", 5s);
        CHECK(popped == std::optional<std::string>("after failover"));
        // Let the push and the pop's background ledger cleanup finish before the io stops.
        const bool settled = co_await wait_until(
            [&] { return pushed.load() && cache.backend().stats().settle_pending() == 0; }, 10s);
        CHECK(settled);
        CHECK(cache.backend().stats().blocking_open == 1);
        CHECK(cache.backend().options().sentinel->discoveries() >= 2);
        const auto first = Clock::time_point(Clock::duration(s.first_recovery.load()));
        REQUIRE(s.first_recovery.load() != 0);
        std::cout << "Sentinel failover under load (" << workers << " coroutines): sentinels agreed after "
                  << failover_took.count() << " ms; first successful write on the new primary "
                  << std::chrono::duration_cast<std::chrono::milliseconds>(first - killed).count()
                  << " ms after SIGKILL; calls " << s.calls.load() << ", failed " << s.failures.load()
                  << ", +switch-master notices " << cache.backend().options().sentinel->switch_notices()
                  << "\n";
      },
      2, 90s);
  for (const auto& e : s.wrong) UNSCOPED_INFO(e);
  CHECK(s.wrong.empty());
  CHECK(s.overruns.load() == 0);
}

}  // namespace sentinel_backend_test
