// RedisBackend against a real server: prefix removal (SCAN + UNLINK with escaped glob
// characters), predicate removal, and batches in one script run.

#include "redis/backend_support.hpp"

#include <catch2/catch.hpp>

#include <map>

namespace backend_bulk_test {

using namespace corocache;
using namespace corocache::test;

TEST_CASE("erase_prefix removes every kind of key under the prefix and nothing else", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  const auto other_scope = unique_scope();
  // Another application's keys in the same database.
  server.run({"SET", "otherapp:config", "keep"});
  server.run({"RPUSH", "otherapp:list", "keep"});
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    const auto got34 = co_await b.set(scope + "v:a", "a", params());
    CHECK(got34);
    const auto got35 = co_await b.set(scope + "v:b", "b", P(60s).index(scope + "i:x").reads(3));
    CHECK(got35);
    co_await b.push(scope + "q:q", "m");
    const auto got37 = co_await b.try_lock(scope + "l:l", "tok", 30s);
    CHECK(got37);
    const auto got38 = co_await b.set(other_scope + "v:a", "other", params());
    CHECK(got38);
    const auto got39 = co_await b.erase_prefix(scope);
    CHECK(got39 == 5);  // a, b, i:x, q:q, l:l
    CHECK(server.run({"EXISTS", scope + "v:a", scope + "v:b", scope + "i:x", scope + "q:q", scope + "l:l"}) ==
          "0");
    const auto got41 = co_await b.get(other_scope + "v:a");
    CHECK(got41 == std::optional<std::string>("other"));
    const auto got42 = co_await b.erase_prefix(scope);
    CHECK(got42 == 0);
  });
  CHECK(server.run({"GET", "otherapp:config"}) == "keep");
  CHECK(server.run({"LLEN", "otherapp:list"}) == "1");
}

TEST_CASE("erase_prefix treats * ? [ ] and backslash in the prefix literally", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  const std::vector<std::string> tricky = {"a*", "b?", "c[x]", "d\\", "[^z]", "e]"};
  // For each tricky prefix, decoys that the unescaped glob would match.
  const std::map<std::string, std::vector<std::string>> decoys = {
      {"a*", {"aX", "a", "ab*"}},         {"b?", {"bX", "b"}},
      {"c[x]", {"cx", "c[x", "c[y]"}},    {"d\\", {"d", "dX", "d\\\\"}},
      {"[^z]", {"a", "^", "[^y]", "[^"}}, {"e]", {"e", "eX"}}};
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    for (const auto& p : tricky) {
      const auto got60 = co_await b.set(scope + "v:" + p, "target", params());
      CHECK(got60);
      const auto got61 = co_await b.set(scope + "v:" + p + "tail", "target", params());
      CHECK(got61);
      for (const auto& d : decoys.at(p)) {
        if (d.starts_with(p)) continue;  // would legitimately match
        const auto got64 = co_await b.set(scope + "v:" + d + "~decoy", "decoy", params());
        CHECK(got64);
      }
    }
    // The escaped pattern alone, as Redis's glob matcher applies it, selects exactly the
    // two keys that really start with the prefix (the backend also filters by starts_with,
    // so this checks the escaping itself).
    for (const auto& p : tricky) {
      INFO("prefix " << p);
      const auto pattern = corocache::detail::redis::prefix_match_pattern(scope + "v:" + p);
      const auto found = lines(server.run({"SCAN", "0", "MATCH", pattern, "COUNT", "100000"}));
      CHECK(found == list("0", scope + "v:" + p, scope + "v:" + p + "tail"));
    }
    for (const auto& p : tricky) {
      INFO("prefix " << p);
      const auto got69 = co_await b.erase_prefix(scope + "v:" + p);
      CHECK(got69 == 2);
      const auto got70 = co_await b.get(scope + "v:" + p);
      CHECK(got70 == std::nullopt);
      for (const auto& d : decoys.at(p)) {
        if (d.starts_with(p)) continue;
        const auto got73 = co_await b.get(scope + "v:" + d + "~decoy");
        CHECK(got73 == std::optional<std::string>("decoy"));
      }
    }
  });
}

TEST_CASE("erase_prefix walks many SCAN batches among many foreign keys", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  const auto foreign = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    // 6000 of ours and 6000 foreign keys, written in pipelined batches.
    for (int round = 0; round < 12; ++round) {
      co_await run_all(ex, 1000, [&](std::size_t i) -> asio::awaitable<void> {
        const auto name = std::to_string(round * 1000 + static_cast<int>(i));
        co_await b.set((round % 2 ? scope : foreign) + "v:" + name, "x", params());
      });
    }
    const auto got93 = co_await b.erase_prefix(scope);
    CHECK(got93 == 6000);
    const auto got94 = co_await b.erase_prefix(scope);
    CHECK(got94 == 0);
    const auto got95 = co_await b.erase_prefix(foreign + "v:1");
    CHECK(got95 == 1111);  // 1, 10-19, 100-199, 10000-10999
  });
  CHECK(server.run({"EXISTS", foreign + "v:0"}) == "1");
  CHECK(server.run({"EXISTS", foreign + "v:4999"}) == "1");
}

TEST_CASE("erase_if removes the accepted live values up to the limit without consuming reads",
          "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    for (int i = 0; i < 10; ++i) {
      const auto n = std::to_string(i);
      const auto got108 = co_await b.set(scope + "v:plain" + n, i % 2 ? "odd" : "even", params());
      CHECK(got108);
    }
    const auto got110 = co_await b.set(scope + "v:hashed", "odd", P(60s).index(scope + "i:x").reads(2));
    CHECK(got110);
    const auto got111 = co_await b.set(scope + "v:limited", "even", P(60s).reads(1));
    CHECK(got111);
    const auto got112 = co_await b.set(scope + "w:outside", "odd", params());
    CHECK(got112);
    co_await b.push(scope + "v:queue-not-a-value", "odd");

    std::vector<std::string> seen;
    auto is_odd = [&](std::string_view key, std::string_view value) {
      seen.emplace_back(key);
      return value == "odd";
    };
    const auto got120 = co_await b.erase_if(scope + "v:", is_odd, 3);
    CHECK(got120 == 3);
    for (const auto& k : seen) CHECK(std::string_view(k).starts_with(scope + "v:"));
    const auto got122 = co_await b.erase_if(scope + "v:", is_odd, -1);
    CHECK(got122 == 3);  // 6 odd values in all
    const auto got123 = co_await b.erase_if(scope + "v:", is_odd, -1);
    CHECK(got123 == 0);
    const auto got124 = co_await b.get(scope + "v:hashed");
    CHECK(got124 == std::nullopt);
    const auto got125 = co_await b.index_members(scope + "i:x");
    CHECK(sorted(got125) == list());
    CHECK(server.run({"EXISTS", scope + "i:x"}) == "0");  // left its index at once
    const auto got127 = co_await b.get(scope + "w:outside");
    CHECK(got127 == std::optional<std::string>("odd"));
    CHECK(server.run({"LLEN", scope + "v:queue-not-a-value"}) == "1");
    // The predicate's reads did not consume the read-limited value's only read.
    const auto got130 = co_await b.get(scope + "v:limited");
    CHECK(got130 == std::optional<std::string>("even"));
    const auto got131 = co_await b.get(scope + "v:plain0");
    CHECK(got131 == std::optional<std::string>("even"));
    const auto got132 = co_await b.erase_if(
        scope + "v:", [](auto, auto) { return true; }, 0);
    CHECK(got132 == 0);
    const auto got133 = co_await b.get(scope + "v:plain0");
    CHECK(got133 == std::optional<std::string>("even"));
  });
}

TEST_CASE("commit applies all its operations in one script run", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    const auto got142 = co_await b.set(scope + "v:old", "old", P(60s).index(scope + "i:x"));
    CHECK(got142);
    const auto got143 = co_await b.set(scope + "v:short", "s", params(1s));
    CHECK(got143);
    std::vector<BatchOp> ops;
    ops.emplace_back(batch_op::Store{scope + "v:plain", "p", params()});
    ops.emplace_back(batch_op::Store{scope + "v:indexed", "i", P(60s).index(scope + "i:x")});
    ops.emplace_back(batch_op::Store{scope + "v:plain", "p2", P(60s).nx()});  // nx: not stored
    ops.emplace_back(batch_op::Erase{scope + "v:old"});
    ops.emplace_back(batch_op::Expire{scope + "v:short", 100s});
    ops.emplace_back(batch_op::Push{scope + "q:q", "m1"});
    ops.emplace_back(batch_op::Push{scope + "q:q", "m2"});
    const auto multi_before = command_calls(server, "multi");
    const auto evalsha_before = command_calls(server, "evalsha");
    co_await b.commit(std::move(ops));
    CHECK(command_calls(server, "multi") == multi_before);
    // One script run: the batch names i:x, the only index of the values it changes.
    CHECK(command_calls(server, "evalsha") == evalsha_before + 1);
    const auto got159 = co_await b.get(scope + "v:plain");
    CHECK(got159 == std::optional<std::string>("p"));
    const auto got160 = co_await b.index_members(scope + "i:x");
    CHECK(sorted(got160) == list(scope + "v:indexed"));
    const auto got161 = co_await b.get(scope + "v:old");
    CHECK(got161 == std::nullopt);
    CHECK(std::stoll(server.run({"PTTL", scope + "v:short"})) > 90'000);
    const auto got163 = co_await b.pop(scope + "q:q", 0ms);
    CHECK(got163 == std::optional<std::string>("m1"));
    const auto got164 = co_await b.pop(scope + "q:q", 0ms);
    CHECK(got164 == std::optional<std::string>("m2"));
    std::vector<BatchOp> nothing;
    co_await b.commit(std::move(nothing));  // nothing to do, no I/O
    co_await settled(b);
  });
}

TEST_CASE("commit learns the indices of values it erases or expires in a second run", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    const auto stored_a = co_await b.set(scope + "v:a", "a", P(60s).index(scope + "i:a"));
    const auto stored_b = co_await b.set(scope + "v:b", "b", P(1s).index(scope + "i:b").index(scope + "i:c"));
    CHECK((stored_a && stored_b));
    std::vector<BatchOp> ops;
    ops.emplace_back(batch_op::Erase{scope + "v:a"});
    ops.emplace_back(batch_op::Expire{scope + "v:b", 100s});
    const auto evalsha_before = command_calls(server, "evalsha");
    co_await b.commit(std::move(ops));
    CHECK(command_calls(server, "evalsha") == evalsha_before + 2);  // the first run named i:a, i:b, i:c
    CHECK(server.run({"EXISTS", scope + "i:a"}) == "0");
    CHECK(std::stoll(server.run({"PTTL", scope + "i:b"})) > 90'000);
    CHECK(std::stoll(server.run({"PTTL", scope + "i:c"})) > 90'000);
    const auto got = co_await b.get(scope + "v:a");
    CHECK(got == std::nullopt);
  });
}

TEST_CASE("a failing operation inside commit is reported as server_error", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  server.run({"SET", scope + "q:string", "x"});
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    std::vector<BatchOp> ops;
    ops.emplace_back(batch_op::Push{scope + "q:string", "m"});
    ops.emplace_back(batch_op::Store{scope + "v:after", "a", params()});
    try {
      co_await b.commit(std::move(ops));
      FAIL("commit did not report the failed push");
    } catch (const boost::system::system_error& e) {
      CHECK(e.code() == errc::server_error);
      CHECK(std::string(e.what()).find("WRONGTYPE") != std::string::npos);
    }
    // Redis does not roll back: the other operation applied.
    const auto got187 = co_await b.get(scope + "v:after");
    CHECK(got187 == std::optional<std::string>("a"));
  });
}

}  // namespace backend_bulk_test
