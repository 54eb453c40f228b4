// The I/O-free parts of RedisBackend: pending record keys, time budgets, value limits, the
// settling backoff, what a waiting pop does with its BLMOVE's reply and SCAN reply parsing.

#include <corocache/redis/detail/budget.hpp>
#include <corocache/redis/detail/commands.hpp>
#include <corocache/redis/detail/pending_keys.hpp>
#include <corocache/redis/detail/queue_pop.hpp>
#include <corocache/redis/detail/scan.hpp>
#include <corocache/redis/detail/settle.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <catch2/catch.hpp>

#include <set>

namespace redis_backend_parts_test {

using namespace corocache;
using namespace corocache::detail::redis;
using namespace std::chrono_literals;

TEST_CASE("a pending record keeps its queue's hash tag and scope, under a kind of its own", "[unit][redis]") {
  CHECK(pending_key("app:{acme:jobs}:q:emails", "id1") == "app:{acme:jobs}:p:id1:q:emails");
  CHECK(pending_key("app:{acme:jobs}:l:nightly", "id2") == "app:{acme:jobs}:p:id2:l:nightly");
  // Names may hold any bytes, braces included: only the scope's tag counts.
  CHECK(pending_key("a:{t:n}:q:x}{y", "i") == "a:{t:n}:p:i:q:x}{y");
  CHECK(scope_length("a:{t:n}:q:x") == 8);
  CHECK(scope_length("no-tag") == 0);
  CHECK(scope_length("a:{}:q:x") == 0);
  CHECK(scope_length("a:{t:n}") == 0);
  CHECK_THROWS_AS(pending_key("plain-key", "i"), std::invalid_argument);
}

TEST_CASE("pending record ids are unique", "[unit][redis]") {
  PendingIds a, b;
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    seen.insert(a.next());
    seen.insert(b.next());
  }
  CHECK(seen.size() == 2000);
  for (const auto& id : seen) CHECK(id.find(':') == std::string::npos);
}

TEST_CASE("durations saturate at a century and blocking budgets split the call", "[unit][redis]") {
  CHECK(px(5s) == 5000);
  CHECK(px(Duration::max()) == forever.count());
  CHECK(px(forever + 1ms) == forever.count());
  CHECK(round_trip_timeout(Deadline{}) == Duration::zero());
  CHECK(round_trip_timeout(Deadline::never()) == forever);
  CHECK_THROWS_AS(round_trip_timeout(Deadline::after(-1ms)), boost::system::system_error);

  const auto by_default = blocking_budget(1500ms, Deadline{}, 2s);
  CHECK(by_default.server_wait == 1500ms);
  CHECK(by_default.trip == 3500ms);
  CHECK_FALSE(by_default.unbounded);
  const auto endless = blocking_budget(Duration::max(), Deadline{}, 2s);
  CHECK(endless.unbounded);
  CHECK(endless.trip == forever + 2s);
  const auto never = blocking_budget(Duration::max(), Deadline::never(), 2s);
  CHECK(never.unbounded);
  const auto short_deadline = blocking_budget(10s, Deadline::after(200ms), 2s);
  CHECK(short_deadline.server_wait <= 200ms);
  CHECK(short_deadline.trip <= 200ms);
  CHECK(block_seconds(1500) == "1.500");
  CHECK(block_seconds(1) == "0.001");
  CHECK(block_seconds(2000) == "2");
}

TEST_CASE("a value too large to read back is refused with its size and the limit", "[unit][redis]") {
  CHECK(max_readable_value(4096) == 3072);
  CHECK(max_readable_value(512) == 0);
  CHECK_NOTHROW(require_readable(3072, 4096));
  try {
    require_readable(3073, 4096);
    FAIL("accepted");
  } catch (const std::invalid_argument& e) {
    CHECK_THAT(e.what(), Catch::Contains("3073") && Catch::Contains("4096") && Catch::Contains("3072"));
  }
}

TEST_CASE("settling backs off from 50 ms to 500 ms, unknown outcomes are told apart", "[unit][redis]") {
  CHECK(settle_delay(0) == 50ms);
  CHECK(settle_delay(1) == 100ms);
  CHECK(settle_delay(3) == 400ms);
  CHECK(settle_delay(4) == 500ms);
  CHECK(settle_delay(1000) == 500ms);
  // About three minutes of outage before a job gives up.
  Duration total{0};
  for (int attempt = 0; attempt < settle_attempts; ++attempt) total += settle_delay(attempt);
  CHECK(total >= 180s);
  CHECK(total <= 240s);
  CHECK(outcome_unknown(make_error_code(errc::timeout)));
  CHECK(outcome_unknown(make_error_code(errc::connection_lost)));
  CHECK(outcome_unknown(boost::asio::error::operation_aborted));
  CHECK_FALSE(outcome_unknown(make_error_code(errc::not_connected)));
  CHECK_FALSE(outcome_unknown(make_error_code(errc::overloaded)));
  CHECK_FALSE(outcome_unknown(make_error_code(errc::shut_down)));
}

/// What queue::after_returns(returns, "q", <now + budget>) did: how long it took, and
/// whether a return of "q" was still pending when it ended.
struct AfterReturns {
  std::chrono::steady_clock::duration waited = std::chrono::steady_clock::duration::max();
  bool pending_at_end = true;
};
boost::asio::awaitable<void> run_after_returns(const PendingReturns& returns,
                                               std::chrono::milliseconds budget, AfterReturns& out) {
  const auto start = std::chrono::steady_clock::now();
  co_await queue::after_returns(returns, "q", start + budget);
  out.waited = std::chrono::steady_clock::now() - start;
  out.pending_at_end = returns.pending("q");
}

TEST_CASE("a pop waits for an element on its way back to its queue, up to its deadline", "[unit][redis]") {
  PendingReturns returns;
  CHECK_FALSE(returns.pending("q"));
  returns.begin("q");
  returns.begin("q");
  CHECK(returns.pending("q"));
  CHECK_FALSE(returns.pending("other"));
  returns.end("q");
  CHECK(returns.pending("q"));  // one of the two still on its way
  returns.end("q");
  CHECK_FALSE(returns.pending("q"));
  returns.end("q");  // unmatched: ignored, nothing goes negative
  CHECK_FALSE(returns.pending("q"));

  boost::asio::io_context io;
  // Nothing pending: no wait at all.
  AfterReturns idle;
  boost::asio::co_spawn(io, run_after_returns(returns, 10s, idle), boost::asio::detached);
  io.run();
  CHECK_FALSE(idle.pending_at_end);
  CHECK(idle.waited < 1s);
  // The return ends after 50 ms: the wait ends with it (not before), long before its deadline.
  returns.begin("q");
  bool ended = false;
  boost::asio::steady_timer end_return(io, 50ms);
  end_return.async_wait([&](boost::system::error_code) {
    ended = true;
    returns.end("q");
  });
  AfterReturns until_back;
  boost::asio::co_spawn(io, run_after_returns(returns, 10s, until_back), boost::asio::detached);
  io.restart();
  io.run();
  CHECK(ended);
  CHECK_FALSE(until_back.pending_at_end);
  CHECK(until_back.waited < 5s);
  // A return that never ends (the server is gone): the wait ends at its deadline.
  returns.begin("q");
  AfterReturns gave_up;
  boost::asio::co_spawn(io, run_after_returns(returns, 100ms, gave_up), boost::asio::detached);
  io.restart();
  io.run();
  CHECK(gave_up.pending_at_end);
  CHECK(gave_up.waited >= 100ms);  // measured from the same start as its deadline
  CHECK(gave_up.waited < 5s);
}

TEST_CASE("a waiting pop's BLMOVE reply: delivered, waited again, or a reconnect", "[unit][redis]") {
  using queue::BlockedReply;
  using queue::classify_blocked_reply;
  const auto unblocked = Reply::make_error(
      "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)");
  for (const bool clustered : {false, true}) {
    INFO("clustered: " << clustered);
    // A demoted node: the command did not run, on every deployment, and the link closes.
    CHECK(classify_blocked_reply(unblocked, clustered) == BlockedReply::reconnect);
    CHECK(classify_blocked_reply(Reply::make_string("e1"), clustered) == BlockedReply::deliver);
    CHECK(classify_blocked_reply(Reply::make_nil(), clustered) == BlockedReply::deliver);
    CHECK(classify_blocked_reply(Reply::make_error("WRONGTYPE Operation against a key"), clustered) ==
          BlockedReply::deliver);
    CHECK(classify_blocked_reply(Reply::make_error("UNBLOCKEDX"), clustered) == BlockedReply::deliver);
    CHECK(classify_blocked_reply(Reply::make_error("READONLY You can't write against a read only replica."),
                                 clustered) == BlockedReply::deliver);
  }
  // CLIENT UNBLOCK <id> ERROR: an operator's error on a link that stays up, for the caller.
  CHECK(classify_blocked_reply(Reply::make_error("UNBLOCKED client unblocked via CLIENT UNBLOCK"), false) ==
        BlockedReply::deliver);
  CHECK(classify_blocked_reply(Reply::make_error("UNBLOCKED client unblocked via CLIENT UNBLOCK"), true) ==
        BlockedReply::deliver);
  // Cluster redirects, only on a cluster: a move waits again on the new owner.
  CHECK(classify_blocked_reply(Reply::make_error("MOVED 42 127.0.0.1:7001"), true) ==
        BlockedReply::wait_again);
  // A migrating slot: a command on the queue and a new ledger runs on neither node until it
  // ends (ASK from the old owner, TRYAGAIN from either): wait through it.
  CHECK(classify_blocked_reply(Reply::make_error("ASK 42 127.0.0.1:7001"), true) == BlockedReply::wait_again);
  CHECK(classify_blocked_reply(Reply::make_error("TRYAGAIN Multiple keys request during rehashing of slot"),
                               true) == BlockedReply::wait_again);
  // A shard elsewhere failing over takes the whole cluster down for a while (with
  // cluster-require-full-coverage): the pop waits again, it does not end with nil.
  CHECK(classify_blocked_reply(Reply::make_error("CLUSTERDOWN The cluster is down"), true) ==
        BlockedReply::wait_again);
  CHECK(classify_blocked_reply(Reply::make_error("CLUSTERDOWN The cluster is down"), false) ==
        BlockedReply::deliver);
  CHECK(classify_blocked_reply(Reply::make_error("MOVED 42 127.0.0.1:7001"), false) == BlockedReply::deliver);
  CHECK(classify_blocked_reply(Reply::make_error("MOVED garbage"), true) == BlockedReply::deliver);
}

TEST_CASE("a SCAN reply keeps only true prefix matches", "[unit][redis]") {
  std::vector<Reply> keys;
  keys.push_back(Reply::make_string("p:a"));
  keys.push_back(Reply::make_string("other"));
  keys.push_back(Reply::make_string("p:b"));
  std::vector<Reply> parts;
  parts.push_back(Reply::make_string("17"));
  parts.push_back(Reply::make_array(std::move(keys)));
  Reply reply = Reply::make_array(std::move(parts));
  const auto batch = parse_scan_reply(reply, "p:");
  CHECK(batch.cursor == "17");
  CHECK(batch.keys == std::vector<std::string>{"p:a", "p:b"});
  Reply odd = Reply::make_integer(3);
  CHECK_THROWS_AS(parse_scan_reply(odd, "p:"), boost::system::system_error);
}

TEST_CASE("a batch's index invalidation and function clear are operations of the batch script",
          "[unit][redis][batch]") {
  std::vector<BatchOp> ops;
  ops.emplace_back(batch_op::Push{"a:{t:n}:q:x", "1"});
  ops.emplace_back(batch_op::EraseIndex{"a:{t:n}:i:grp\\n"});
  ops.emplace_back(batch_op::ErasePrefix{"a:{t:n}:f:price:"});
  // The keys SCAN found under the prefix are declared, so the script touches no other key.
  const std::vector<std::vector<std::string>> scanned = {{"a:{t:n}:f:price:=1", "a:{t:n}:q:x"}};
  Request batch;
  add_batch_script(batch, "EVALSHA", "sha", ops, {}, scanned);
  Request expected;
  expected.add_argv(std::vector<std::string_view>{
      "EVALSHA", "sha", "4", "a:{t:n}:q:x", "a:{t:n}:i:grp\\n", "a:{t:n}:f:price:=1",  // KEYS
      "a:{t:n}:~migration-probe",                                                      // (probe)
      "3", "Q", "1", "1", "I", "2", "P", "0", "2", "3", "1", "4"});                    // ARGV
  CHECK(batch.bytes == expected.bytes);

  Request unscanned;
  CHECK_THROWS_AS(add_batch_script(unscanned, "EVALSHA", "sha", ops), std::logic_error);
  CHECK_NOTHROW(check_batch(ops, 1 << 20));
}

TEST_CASE("the migration probe shares its key's slot and is no key the facade writes", "[unit][redis]") {
  using corocache::detail::redis::cluster::key_slot;
  for (std::string_view key : {"a:{t:n}:v:x", "{t:n}", "x{y}z{w}", "plain-key", "a{b"}) {
    const std::string probe = migration_probe_key(key);
    INFO(key << " -> " << probe);
    CHECK(probe.ends_with(":~migration-probe"));
    CHECK(key_slot(probe) == key_slot(key));
  }
  CHECK(migration_probe_key("a:{t:n}:v:x") == "a:{t:n}:~migration-probe");
  CHECK(migration_probe_key("plain-key") == "{plain-key}:~migration-probe");
  // A '}' without a hash tag: no key name is sure to hash to the same slot.
  CHECK(migration_probe_key("a}b").empty());
  CHECK(migration_probe_key("a{}b").empty());
  CHECK(migration_probe_key("").empty());
}

TEST_CASE("a hashed store names the migration probe, and a batch declares it only when it deletes keys",
          "[unit][redis]") {
  StoreParams params;
  params.ttl = std::chrono::milliseconds(5);
  params.index_keys = {"a:{t:n}:i:x"};
  const std::vector<std::string> learned = {"a:{t:n}:i:old"};
  Request store;
  add_store_script(store, "EVALSHA", "sha", "a:{t:n}:v:k", "val", params, learned,
                   migration_probe_key("a:{t:n}:v:k"));
  Request expected_store;
  expected_store.add_argv(std::vector<std::string_view>{"EVALSHA", "sha", "3", "a:{t:n}:v:k", "a:{t:n}:i:x",
                                                        "a:{t:n}:i:old", "val", "5", "0", "0", "1",
                                                        "a:{t:n}:~migration-probe"});
  CHECK(store.bytes == expected_store.bytes);
  Request single_server;  // no migrations: no probe, no extra round trip for a conversion
  add_store_script(single_server, "EVALSHA", "sha", "a:{t:n}:v:k", "val", params);
  Request expected_single;
  expected_single.add_argv(std::vector<std::string_view>{"EVALSHA", "sha", "2", "a:{t:n}:v:k", "a:{t:n}:i:x",
                                                         "val", "5", "0", "0", "1", ""});
  CHECK(single_server.bytes == expected_single.bytes);

  StoreParams plain;
  plain.ttl = std::chrono::milliseconds(7);
  std::vector<BatchOp> ops;
  ops.emplace_back(batch_op::Store{"a:{t:n}:v:k", "1", plain});
  ops.emplace_back(batch_op::Expire{"a:{t:n}:v:k", std::chrono::milliseconds(9)});
  ops.emplace_back(batch_op::Push{"a:{t:n}:q:x", "2"});
  Request no_deletes;
  add_batch_script(no_deletes, "EVALSHA", "sha", ops);
  Request expected_batch;
  expected_batch.add_argv(std::vector<std::string_view>{
      "EVALSHA", "sha", "2", "a:{t:n}:v:k", "a:{t:n}:q:x",                // KEYS
      "3", "S", "1", "1", "7", "0", "X", "1", "9", "Q", "2", "2", "0"});  // ARGV
  CHECK(no_deletes.bytes == expected_batch.bytes);
  const std::vector<BatchOp> deleting = {
      batch_op::Erase{"a:{t:n}:v:j"}, batch_op::Store{"a:{t:n}:v:j", "3", params},
      batch_op::EraseIndex{"a:{t:n}:i:x"}, batch_op::ErasePrefix{"a:{t:n}:f:price:"}};
  for (const auto& op : deleting) {
    auto with = ops;
    with.push_back(op);
    const std::vector<std::vector<std::string>> scanned(
        std::holds_alternative<batch_op::ErasePrefix>(op) ? 1 : 0);
    Request r;
    add_batch_script(r, "EVALSHA", "sha", with, {}, scanned);
    CHECK(r.bytes.find("a:{t:n}:~migration-probe") != std::string::npos);
  }
}

}  // namespace redis_backend_parts_test
