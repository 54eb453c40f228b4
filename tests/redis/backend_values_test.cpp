// RedisBackend against a real server: plain and hashed values, nx, read limits, expiry,
// indices, and scripts surviving SCRIPT FLUSH and a server restart.

#include "redis/backend_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>

namespace backend_values_test {

using namespace corocache;
using namespace corocache::test;

TEST_CASE("a plain value is stored as a Redis string with its ttl and read back", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  const auto key = scope + "v:u1";
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    const auto got20 = co_await b.set(key, "payload", params(60s));
    CHECK(got20);
    CHECK(server.run({"TYPE", key}) == "string");
    const long long pttl = std::stoll(server.run({"PTTL", key}));
    CHECK(pttl > 50'000);
    CHECK(pttl <= 60'000);
    const auto got25 = co_await b.get(key);
    CHECK(got25 == std::optional<std::string>("payload"));
    const auto got26 = co_await b.get(scope + "v:missing");
    CHECK(got26 == std::nullopt);
    // Any bytes, including NUL and newlines, survive.
    const std::string binary("a\0b\r\n\xff", 6);
    const auto odd_key = scope + std::string("v:bin\n\0x", 8);
    const auto got30 = co_await b.set(odd_key, binary, params());
    CHECK(got30);
    const auto got31 = co_await b.get(odd_key);
    CHECK(got31 == std::optional<std::string>(binary));
    const auto got32 = co_await b.get(scope + "v:bin\n");
    CHECK(got32 == std::nullopt);
  });
}

// A server at maxmemory that evicts nothing refuses writes with -OOM: capacity_exceeded, as a
// full memory backend in reject mode throws (a user audit found server_error here). In a
// batch the refused store fails alone and the other operations apply, on both backends
// (the memory side: memory_backend_test.cpp).
TEST_CASE(
    "a Redis at maxmemory refuses a store with capacity_exceeded, and a batch applies its other operations",
    "[redis][backend]") {
  RedisServer server({"--maxmemory", "3mb", "--maxmemory-policy", "noeviction"});
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for(server));
    const std::string big(100 << 10, 'x');
    co_await b.set(scope + "v:k0", "small", params());
    co_await b.set(scope + "v:k1", "small", params());
    std::string refusal;
    for (int i = 2; i < 200 && refusal.empty(); ++i) {
      try {
        co_await b.set(scope + "v:k" + std::to_string(i), big, params());
      } catch (const boost::system::system_error& e) {
        CHECK(e.code() == errc::capacity_exceeded);
        refusal = e.what();
      }
    }
    INFO(refusal);
    REQUIRE_FALSE(refusal.empty());
    CHECK(refusal.find("OOM") != std::string::npos);  // the server's reason is kept

    std::vector<BatchOp> ops;
    ops.emplace_back(batch_op::Store{scope + "v:first", big, params()});
    ops.emplace_back(batch_op::Erase{scope + "v:k0"});
    ops.emplace_back(batch_op::Store{scope + "v:k1", "replaced", params()});
    bool full = false;
    try {
      co_await b.commit(std::move(ops));
    } catch (const boost::system::system_error& e) {
      full = e.code() == errc::capacity_exceeded;
    }
    CHECK(full);
    const auto first = co_await b.get(scope + "v:first");
    const auto k0 = co_await b.get(scope + "v:k0");
    const auto k1 = co_await b.get(scope + "v:k1");
    CHECK_FALSE(first);
    CHECK_FALSE(k0);
    CHECK(k1 == std::optional<std::string>("replaced"));
  });
}

TEST_CASE("a plain set and get are one SET and one GET each, with no script", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto key = unique_scope() + "v:fast";
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    const auto warmed = co_await b.get(key);  // connect first: the handshake is not counted
    CHECK(warmed == std::nullopt);
    const auto sets = command_calls(server, "set");
    const auto gets = command_calls(server, "get");
    const auto evalshas = command_calls(server, "evalsha");
    const auto evals = command_calls(server, "eval");
    const auto stored = co_await b.set(key, "v", params());
    const auto value = co_await b.get(key);
    CHECK(stored);
    CHECK(value == std::optional<std::string>("v"));
    CHECK(command_calls(server, "set") == sets + 1);
    CHECK(command_calls(server, "get") == gets + 1);
    CHECK(command_calls(server, "evalsha") == evalshas);
    CHECK(command_calls(server, "eval") == evals);
  });
}

TEST_CASE("nx stores only when no live value exists", "[redis][backend]") {
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    const auto got40 = co_await b.set(scope + "v:a", "first", P(60s).nx());
    CHECK(got40);
    const auto got41 = co_await b.set(scope + "v:a", "second", P(60s).nx());
    CHECK_FALSE(got41);
    const auto got42 = co_await b.get(scope + "v:a");
    CHECK(got42 == std::optional<std::string>("first"));
    // Also against a hashed value, and for a hashed store.
    const auto got44 = co_await b.set(scope + "v:h", "indexed", P(60s).index(scope + "i:x"));
    CHECK(got44);
    const auto got45 = co_await b.set(scope + "v:h", "plain", P(60s).nx());
    CHECK_FALSE(got45);
    const auto got46 = co_await b.set(scope + "v:h", "again", P(60s).index(scope + "i:y").nx());
    CHECK_FALSE(got46);
    const auto got47 = co_await b.index_members(scope + "i:y");
    CHECK(sorted(got47) == list());
    const auto got48 = co_await b.get(scope + "v:h");
    CHECK(got48 == std::optional<std::string>("indexed"));
    // An expired value does not block nx.
    const auto got50 = co_await b.set(scope + "v:short", "x", params(50ms));
    CHECK(got50);
    co_await sleep_for(120ms);
    const auto got52 = co_await b.set(scope + "v:short", "y", P(60s).nx());
    CHECK(got52);
  });
}

TEST_CASE("of many concurrent nx stores exactly one wins, plain or indexed", "[redis][backend]") {
  const auto scope = unique_scope();
  for (bool indexed : {false, true}) {
    std::atomic<int> winners{0};
    run(
        [&](asio::any_io_executor ex) -> asio::awaitable<void> {
          RedisBackend b(ex, options_for());
          co_await run_all(ex, 48, [&](std::size_t i) -> asio::awaitable<void> {
            P p = P(60s).nx();
            if (indexed) p.index(scope + "i:race");
            const bool won = co_await b.set(scope + (indexed ? "v:ri" : "v:rp"), std::to_string(i), p);
            if (won) ++winners;
          });
        },
        2);
    CHECK(winners == 1);
  }
}

TEST_CASE("a read-limited key gives exactly max_reads values to 64 concurrent readers", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  const auto key = scope + "v:once";
  std::atomic<int> hits{0};
  std::atomic<int> misses{0};
  run(
      [&](asio::any_io_executor ex) -> asio::awaitable<void> {
        RedisBackend b(ex, options_for());
        const auto got84 = co_await b.set(key, "secret", P(60s).index(scope + "i:lim").reads(5));
        CHECK(got84);
        CHECK(server.run({"TYPE", key}) == "hash");
        co_await run_all(ex, 64, [&](std::size_t) -> asio::awaitable<void> {
          auto v = co_await b.get(key);
          if (v) {
            CHECK(*v == "secret");
            ++hits;
          } else {
            ++misses;
          }
        });
        const auto got95 = co_await b.index_members(scope + "i:lim");
        CHECK(sorted(got95) == list());
      },
      2);
  CHECK(hits == 5);
  CHECK(misses == 59);
  CHECK(server.run({"EXISTS", key}) == "0");
  // The last read also removed it from its index set, without waiting for a listing.
  CHECK(server.run({"EXISTS", scope + "i:lim"}) == "0");
}

TEST_CASE("a read-limited key disappears after its last read", "[redis][backend]") {
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    const auto got109 = co_await b.set(scope + "v:two", "x", P(60s).reads(2));
    CHECK(got109);
    const auto got110 = co_await b.get(scope + "v:two");
    CHECK(got110 == std::optional<std::string>("x"));
    const auto got111 = co_await b.get(scope + "v:two");
    CHECK(got111 == std::optional<std::string>("x"));
    const auto got112 = co_await b.get(scope + "v:two");
    CHECK(got112 == std::nullopt);
    const auto got113 = co_await b.erase(scope + "v:two");
    CHECK_FALSE(got113);
  });
}

TEST_CASE("a value past its ttl is neither returned nor listed", "[redis][backend]") {
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    const auto got121 = co_await b.set(scope + "v:p", "plain", params(80ms));
    CHECK(got121);
    const auto got122 = co_await b.set(scope + "v:h", "hashed", P(80ms).index(scope + "i:x"));
    CHECK(got122);
    const auto got123 = co_await b.set(scope + "v:long", "stays", P(60s).index(scope + "i:x"));
    CHECK(got123);
    const auto got124 = co_await b.index_members(scope + "i:x");
    CHECK(sorted(got124) == list(scope + "v:h", scope + "v:long"));
    co_await sleep_for(200ms);
    const auto got126 = co_await b.get(scope + "v:p");
    CHECK(got126 == std::nullopt);
    const auto got127 = co_await b.get(scope + "v:h");
    CHECK(got127 == std::nullopt);
    const auto got128 = co_await b.index_members(scope + "i:x");
    CHECK(sorted(got128) == list(scope + "v:long"));
    const auto got129 = co_await b.expire(scope + "v:p", 10s);
    CHECK_FALSE(got129);
  });
}

TEST_CASE("erase reports whether the value was live and drops its index memberships", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    const auto got138 = co_await b.set(scope + "v:p", "plain", params());
    CHECK(got138);
    const auto got139 =
        co_await b.set(scope + "v:h", "hashed", P(60s).index(scope + "i:x").index(scope + "i:y"));
    CHECK(got139);
    const auto got140 = co_await b.set(scope + "v:k", "kept", P(60s).index(scope + "i:x"));
    CHECK(got140);
    const auto got141 = co_await b.erase(scope + "v:p");
    CHECK(got141);
    const auto got142 = co_await b.erase(scope + "v:p");
    CHECK_FALSE(got142);
    const auto got143 = co_await b.erase(scope + "v:h");
    CHECK(got143);
    CHECK(server.run({"SMEMBERS", scope + "i:x"}) == scope + "v:k");  // removed at once
    CHECK(server.run({"EXISTS", scope + "i:y"}) == "0");
    const auto got146 = co_await b.index_members(scope + "i:x");
    CHECK(sorted(got146) == list(scope + "v:k"));
    const auto got147 = co_await b.get(scope + "v:h");
    CHECK(got147 == std::nullopt);
  });
}

TEST_CASE("expire gives a new ttl and extends, never shortens, its indices", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    const auto got156 = co_await b.set(scope + "v:a", "a", P(1s).index(scope + "i:x"));
    CHECK(got156);
    const auto got157 = co_await b.set(scope + "v:b", "b", P(30s).index(scope + "i:x"));
    CHECK(got157);
    const auto got158 = co_await b.expire(scope + "v:a", 100s);
    CHECK(got158);
    CHECK(std::stoll(server.run({"PTTL", scope + "v:a"})) > 90'000);
    CHECK(std::stoll(server.run({"PTTL", scope + "i:x"})) > 90'000);
    const auto got161 = co_await b.expire(scope + "v:b", 2s);
    CHECK(got161);  // shorter: the index keeps 100 s
    CHECK(std::stoll(server.run({"PTTL", scope + "v:b"})) <= 2'000);
    CHECK(std::stoll(server.run({"PTTL", scope + "i:x"})) > 90'000);
    const auto got164 = co_await b.set(scope + "v:p", "plain", params(1s));
    CHECK(got164);
    const auto got165 = co_await b.expire(scope + "v:p", 50s);
    CHECK(got165);
    CHECK(std::stoll(server.run({"PTTL", scope + "v:p"})) > 40'000);
    const auto got167 = co_await b.expire(scope + "v:none", 50s);
    CHECK_FALSE(got167);
    const auto got168 = co_await b.get(scope + "v:a");
    CHECK(got168 == std::optional<std::string>("a"));
  });
}

TEST_CASE("a store replaces the key's index memberships", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  const auto key = scope + "v:k";
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    const auto got178 = co_await b.set(key, "1", P(60s).index(scope + "i:x").index(scope + "i:y"));
    CHECK(got178);
    const auto got179 = co_await b.index_members(scope + "i:x");
    CHECK(sorted(got179) == list(key));
    // Re-stored with only y: x drops it right away.
    const auto got181 = co_await b.set(key, "2", P(60s).index(scope + "i:y"));
    CHECK(got181);
    CHECK(server.run({"SMEMBERS", scope + "i:x"}).empty());
    const auto got183 = co_await b.index_members(scope + "i:x");
    CHECK(sorted(got183) == list());
    const auto got184 = co_await b.index_members(scope + "i:y");
    CHECK(sorted(got184) == list(key));
    // Overwritten by a plain store: no index lists it; listing prunes the stale member.
    const auto got186 = co_await b.set(key, "3", params());
    CHECK(got186);
    CHECK(server.run({"SMEMBERS", scope + "i:y"}) == key);
    const auto got188 = co_await b.index_members(scope + "i:y");
    CHECK(sorted(got188) == list());
    CHECK(server.run({"SMEMBERS", scope + "i:y"}).empty());
    const auto got190 = co_await b.get(key);
    CHECK(got190 == std::optional<std::string>("3"));
    // Indexed again: listed again.
    const auto got192 = co_await b.set(key, "4", P(60s).index(scope + "i:y").index(scope + "i:y"));
    CHECK(got192);
    const auto got193 = co_await b.index_members(scope + "i:y");
    CHECK(sorted(got193) == list(key));
    CHECK(server.run({"HGET", key, "i"}) == scope + "i:y");  // duplicates stored once
  });
}

TEST_CASE("erase_index removes exactly the live members and the index", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    const auto got203 =
        co_await b.set(scope + "v:a", "a", P(60s).index(scope + "i:fn").index(scope + "i:other"));
    CHECK(got203);
    const auto got204 = co_await b.set(scope + "v:b", "b", P(60s).index(scope + "i:fn"));
    CHECK(got204);
    const auto got205 = co_await b.set(scope + "v:c", "c", P(60s).index(scope + "i:fn"));
    CHECK(got205);
    const auto got206 = co_await b.set(scope + "v:c", "c-plain", params());
    CHECK(got206);  // stale member: must survive
    const auto got207 = co_await b.set(scope + "v:d", "d", P(60s).index(scope + "i:other"));
    CHECK(got207);
    const auto got208 = co_await b.erase_index(scope + "i:fn");
    CHECK(got208 == 2);
    const auto got209 = co_await b.get(scope + "v:a");
    CHECK(got209 == std::nullopt);
    const auto got210 = co_await b.get(scope + "v:b");
    CHECK(got210 == std::nullopt);
    const auto got211 = co_await b.get(scope + "v:c");
    CHECK(got211 == std::optional<std::string>("c-plain"));
    CHECK(server.run({"EXISTS", scope + "i:fn"}) == "0");
    CHECK(server.run({"SMEMBERS", scope + "i:other"}) == scope + "v:d");
    const auto got214 = co_await b.erase_index(scope + "i:fn");
    CHECK(got214 == 0);
  });
}

TEST_CASE("scripts keep working after SCRIPT FLUSH and use the names Redis gives them", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  namespace scripts = corocache::detail::redis::scripts;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    const auto got224 = co_await b.set(scope + "v:a", "a", P(60s).index(scope + "i:x"));
    CHECK(got224);
    // The compile-time SHA-1 is the name Redis gave the script on its EVAL fallback.
    CHECK(server.run({"SCRIPT", "EXISTS", std::string(scripts::store_hash.sha_view())}) == "1");
    server.run({"SCRIPT", "FLUSH"});
    const auto got228 = co_await b.set(scope + "v:b", "b", P(60s).index(scope + "i:x"));
    CHECK(got228);
    const auto got229 = co_await b.index_members(scope + "i:x");
    CHECK(sorted(got229) == list(scope + "v:a", scope + "v:b"));
    server.run({"SCRIPT", "FLUSH"});
    const auto got231 = co_await b.get(scope + "v:b");
    CHECK(got231 == std::optional<std::string>("b"));
    server.run({"SCRIPT", "FLUSH"});
    const auto got233 = co_await b.erase(scope + "v:b");
    CHECK(got233);
    server.run({"SCRIPT", "FLUSH"});
    const auto got235 = co_await b.erase_index(scope + "i:x");
    CHECK(got235 == 1);
  });
}

TEST_CASE("a restarted server (empty script cache) serves scripted operations again", "[redis][backend]") {
  RedisServer server;
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for(server));
    const auto got244 = co_await b.set(scope + "v:a", "a", P(60s).index(scope + "i:x"));
    CHECK(got244);
    server.kill();
    server.start();
    // The first request may see the old link drop (it may have run); after that, it works.
    bool stored = false;
    for (int attempt = 0; attempt < 20 && !stored; ++attempt) {
      try {
        stored = co_await b.set(scope + "v:b", "b", P(60s).index(scope + "i:x"));
      } catch (const boost::system::system_error& e) {
        CHECK((e.code() == errc::connection_lost || e.code() == errc::not_connected));
      }
      if (!stored) co_await sleep_for(100ms);
    }
    CHECK(stored);
    const auto got258 = co_await b.index_members(scope + "i:x");
    CHECK(sorted(got258) == list(scope + "v:b"));
  });
}

TEST_CASE("a server error reply becomes server_error carrying the server's message", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    server.run({"SET", scope + "q:notalist", "x"});
    try {
      co_await b.push(scope + "q:notalist", "m");
      FAIL("push onto a string did not throw");
    } catch (const boost::system::system_error& e) {
      CHECK(e.code() == errc::server_error);
      CHECK(std::string(e.what()).find("WRONGTYPE") != std::string::npos);
    }
  });
}

TEST_CASE("backend-specific bad input is rejected before any I/O", "[redis][backend]") {
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisOptions unreachable;
    unreachable.port = 1;  // nothing listens: any I/O would fail with not_connected instead
    unreachable.request_timeout = 200ms;
    RedisBackend b(ex, unreachable);
    CHECK_THROWS_AS(co_await b.set("p:{t:n}:v:a", "x", params(0ms)), std::invalid_argument);
    CHECK_THROWS_AS(co_await b.set("p:{t:n}:v:a", "x", P(-5ms).index("p:{t:n}:i:x")), std::invalid_argument);
    CHECK_THROWS_AS(co_await b.expire("p:{t:n}:v:a", 0ms), std::invalid_argument);
    CHECK_THROWS_AS(co_await b.try_lock("p:{t:n}:l:a", "tok", 0ms), std::invalid_argument);
    CHECK_THROWS_AS(co_await b.pop("p:{t:n}:q:a", -1ms), std::invalid_argument);
    CHECK_THROWS_AS(co_await b.erase_prefix(""), std::invalid_argument);
    std::vector<BatchOp> ops;
    ops.emplace_back(batch_op::Expire{"p:{t:n}:v:a", 0ms});
    CHECK_THROWS_AS(co_await b.commit(std::move(ops)), std::invalid_argument);
    // And the same backend does reach for the network otherwise.
    try {
      co_await b.get("p:{t:n}:v:a");
      FAIL("a get against a closed port succeeded");
    } catch (const boost::system::system_error& e) {
      CHECK(e.code() == errc::not_connected);
    }
  });
}

}  // namespace backend_values_test
