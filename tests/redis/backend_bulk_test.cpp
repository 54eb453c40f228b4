// RedisBackend against a real server: prefix removal (SCAN + UNLINK with escaped glob
// characters), predicate removal, and batches in one MULTI/EXEC.

#include "redis/backend_support.hpp"

#include <catch2/catch.hpp>

#include <map>

using namespace corocache;
using namespace corocache::test;

namespace {

/// calls of `command` in INFO commandstats (0 if never run).
long long command_calls(const RedisServer& server, const std::string& command) {
  const auto info = server.run({"INFO", "commandstats"});
  const auto at = info.find("cmdstat_" + command + ":calls=");
  if (at == std::string::npos) return 0;
  return std::stoll(info.substr(at + command.size() + 15));
}

}  // namespace

TEST_CASE("erase_prefix removes every kind of key under the prefix and nothing else", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  const auto other_scope = unique_scope();
  // Another application's keys in the same database.
  server.run({"SET", "otherapp:config", "keep"});
  server.run({"RPUSH", "otherapp:list", "keep"});
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    CHECK(co_await b.set(scope + "v:a", "a", params()));
    CHECK(co_await b.set(scope + "v:b", "b", P(60s).index(scope + "i:x").reads(3)));
    co_await b.push(scope + "q:q", "m");
    CHECK(co_await b.try_lock(scope + "l:l", "tok", 30s));
    CHECK(co_await b.set(other_scope + "v:a", "other", params()));
    CHECK(co_await b.erase_prefix(scope) == 5);  // a, b, i:x, q:q, l:l
    CHECK(server.run({"EXISTS", scope + "v:a", scope + "v:b", scope + "i:x", scope + "q:q", scope + "l:l"}) == "0");
    CHECK(co_await b.get(other_scope + "v:a") == std::optional<std::string>("other"));
    CHECK(co_await b.erase_prefix(scope) == 0);
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
      {"a*", {"aX", "a", "ab*"}},          {"b?", {"bX", "b"}},
      {"c[x]", {"cx", "c[x", "c[y]"}},     {"d\\", {"d", "dX", "d\\\\"}},
      {"[^z]", {"a", "^", "[^y]", "[^"}}, {"e]", {"e", "eX"}}};
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    for (const auto& p : tricky) {
      CHECK(co_await b.set(scope + "v:" + p, "target", params()));
      CHECK(co_await b.set(scope + "v:" + p + "tail", "target", params()));
      for (const auto& d : decoys.at(p)) {
        if (d.starts_with(p)) continue;  // would legitimately match
        CHECK(co_await b.set(scope + "v:" + d + "~decoy", "decoy", params()));
      }
    }
    for (const auto& p : tricky) {
      INFO("prefix " << p);
      CHECK(co_await b.erase_prefix(scope + "v:" + p) == 2);
      CHECK(co_await b.get(scope + "v:" + p) == std::nullopt);
      for (const auto& d : decoys.at(p)) {
        if (d.starts_with(p)) continue;
        CHECK(co_await b.get(scope + "v:" + d + "~decoy") == std::optional<std::string>("decoy"));
      }
    }
  });
  (void)server;
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
    CHECK(co_await b.erase_prefix(scope) == 6000);
    CHECK(co_await b.erase_prefix(scope) == 0);
    CHECK(co_await b.erase_prefix(foreign + "v:1") == 1111);  // 1, 10-19, 100-199, 1000-1999
  });
  CHECK(server.run({"EXISTS", foreign + "v:0"}) == "1");
  CHECK(server.run({"EXISTS", foreign + "v:5999"}) == "1");
}

TEST_CASE("erase_if removes the accepted live values up to the limit without consuming reads", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    for (int i = 0; i < 10; ++i) {
      const auto n = std::to_string(i);
      CHECK(co_await b.set(scope + "v:plain" + n, i % 2 ? "odd" : "even", params()));
    }
    CHECK(co_await b.set(scope + "v:hashed", "odd", P(60s).index(scope + "i:x").reads(2)));
    CHECK(co_await b.set(scope + "v:limited", "even", P(60s).reads(1)));
    CHECK(co_await b.set(scope + "w:outside", "odd", params()));
    co_await b.push(scope + "v:queue-not-a-value", "odd");

    std::vector<std::string> seen;
    auto is_odd = [&](std::string_view key, std::string_view value) {
      seen.emplace_back(key);
      return value == "odd";
    };
    CHECK(co_await b.erase_if(scope + "v:", is_odd, 3) == 3);
    for (const auto& k : seen) CHECK(std::string_view(k).starts_with(scope + "v:"));
    CHECK(co_await b.erase_if(scope + "v:", is_odd, -1) == 3);  // 6 odd values in all
    CHECK(co_await b.erase_if(scope + "v:", is_odd, -1) == 0);
    CHECK(co_await b.get(scope + "v:hashed") == std::nullopt);
    CHECK(sorted(co_await b.index_members(scope + "i:x")) == list());
    CHECK(server.run({"EXISTS", scope + "i:x"}) == "0");  // left its index at once
    CHECK(co_await b.get(scope + "w:outside") == std::optional<std::string>("odd"));
    CHECK(server.run({"LLEN", scope + "v:queue-not-a-value"}) == "1");
    // The predicate's reads did not consume the read-limited value's only read.
    CHECK(co_await b.get(scope + "v:limited") == std::optional<std::string>("even"));
    CHECK(co_await b.get(scope + "v:plain0") == std::optional<std::string>("even"));
    CHECK(co_await b.erase_if(scope + "v:", [](auto, auto) { return true; }, 0) == 0);
    CHECK(co_await b.get(scope + "v:plain0") == std::optional<std::string>("even"));
  });
}

TEST_CASE("commit applies all its operations in one MULTI/EXEC", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    CHECK(co_await b.set(scope + "v:old", "old", P(60s).index(scope + "i:x")));
    CHECK(co_await b.set(scope + "v:short", "s", params(1s)));
    std::vector<BatchOp> ops;
    ops.emplace_back(batch_op::Store{scope + "v:plain", "p", params()});
    ops.emplace_back(batch_op::Store{scope + "v:indexed", "i", P(60s).index(scope + "i:x")});
    ops.emplace_back(batch_op::Store{scope + "v:plain", "p2", P(60s).nx()});  // nx: not stored
    ops.emplace_back(batch_op::Erase{scope + "v:old"});
    ops.emplace_back(batch_op::Expire{scope + "v:short", 100s});
    ops.emplace_back(batch_op::Push{scope + "q:q", "m1"});
    ops.emplace_back(batch_op::Push{scope + "q:q", "m2"});
    const auto multi_before = command_calls(server, "multi");
    const auto exec_before = command_calls(server, "exec");
    const auto eval_before = command_calls(server, "eval");
    co_await b.commit(std::move(ops));
    CHECK(command_calls(server, "multi") == multi_before + 1);
    CHECK(command_calls(server, "exec") == exec_before + 1);
    CHECK(command_calls(server, "eval") == eval_before + 3);  // inside the transaction
    CHECK(co_await b.get(scope + "v:plain") == std::optional<std::string>("p"));
    CHECK(sorted(co_await b.index_members(scope + "i:x")) == list(scope + "v:indexed"));
    CHECK(co_await b.get(scope + "v:old") == std::nullopt);
    CHECK(std::stoll(server.run({"PTTL", scope + "v:short"})) > 90'000);
    CHECK(co_await b.pop(scope + "q:q", 0ms) == std::optional<std::string>("m1"));
    CHECK(co_await b.pop(scope + "q:q", 0ms) == std::optional<std::string>("m2"));
    std::vector<BatchOp> nothing;
    co_await b.commit(std::move(nothing));  // nothing to do, no I/O
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
    CHECK(co_await b.get(scope + "v:after") == std::optional<std::string>("a"));
  });
}
