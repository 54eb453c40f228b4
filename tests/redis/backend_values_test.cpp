// RedisBackend against a real server: plain and hashed values, nx, read limits, expiry,
// indices, and scripts surviving SCRIPT FLUSH and a server restart.

#include "redis/backend_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>

using namespace corocache;
using namespace corocache::test;

TEST_CASE("a plain value is stored as a Redis string with its ttl and read back", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  const auto key = scope + "v:u1";
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    CHECK(co_await b.set(key, "payload", params(60s)));
    CHECK(server.run({"TYPE", key}) == "string");
    const long long pttl = std::stoll(server.run({"PTTL", key}));
    CHECK(pttl > 50'000);
    CHECK(pttl <= 60'000);
    CHECK(co_await b.get(key) == std::optional<std::string>("payload"));
    CHECK(co_await b.get(scope + "v:missing") == std::nullopt);
    // Any bytes, including NUL and newlines, survive.
    const std::string binary("a\0b\r\n\xff", 6);
    const auto odd_key = scope + std::string("v:bin\n\0x", 8);
    CHECK(co_await b.set(odd_key, binary, params()));
    CHECK(co_await b.get(odd_key) == std::optional<std::string>(binary));
    CHECK(co_await b.get(scope + "v:bin\n") == std::nullopt);
  });
}

TEST_CASE("nx stores only when no live value exists", "[redis][backend]") {
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    CHECK(co_await b.set(scope + "v:a", "first", P(60s).nx()));
    CHECK_FALSE(co_await b.set(scope + "v:a", "second", P(60s).nx()));
    CHECK(co_await b.get(scope + "v:a") == std::optional<std::string>("first"));
    // Also against a hashed value, and for a hashed store.
    CHECK(co_await b.set(scope + "v:h", "indexed", P(60s).index(scope + "i:x")));
    CHECK_FALSE(co_await b.set(scope + "v:h", "plain", P(60s).nx()));
    CHECK_FALSE(co_await b.set(scope + "v:h", "again", P(60s).index(scope + "i:y").nx()));
    CHECK(sorted(co_await b.index_members(scope + "i:y")) == list());
    CHECK(co_await b.get(scope + "v:h") == std::optional<std::string>("indexed"));
    // An expired value does not block nx.
    CHECK(co_await b.set(scope + "v:short", "x", params(50ms)));
    co_await sleep_for(120ms);
    CHECK(co_await b.set(scope + "v:short", "y", P(60s).nx()));
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
            if (co_await b.set(scope + (indexed ? "v:ri" : "v:rp"), std::to_string(i), p))
              ++winners;
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
        CHECK(co_await b.set(key, "secret", P(60s).index(scope + "i:lim").reads(5)));
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
        CHECK(sorted(co_await b.index_members(scope + "i:lim")) == list());
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
    CHECK(co_await b.set(scope + "v:two", "x", P(60s).reads(2)));
    CHECK(co_await b.get(scope + "v:two") == std::optional<std::string>("x"));
    CHECK(co_await b.get(scope + "v:two") == std::optional<std::string>("x"));
    CHECK(co_await b.get(scope + "v:two") == std::nullopt);
    CHECK_FALSE(co_await b.erase(scope + "v:two"));
  });
}

TEST_CASE("a value past its ttl is neither returned nor listed", "[redis][backend]") {
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    CHECK(co_await b.set(scope + "v:p", "plain", params(80ms)));
    CHECK(co_await b.set(scope + "v:h", "hashed", P(80ms).index(scope + "i:x")));
    CHECK(co_await b.set(scope + "v:long", "stays", P(60s).index(scope + "i:x")));
    CHECK(sorted(co_await b.index_members(scope + "i:x")) == list(scope + "v:h", scope + "v:long"));
    co_await sleep_for(200ms);
    CHECK(co_await b.get(scope + "v:p") == std::nullopt);
    CHECK(co_await b.get(scope + "v:h") == std::nullopt);
    CHECK(sorted(co_await b.index_members(scope + "i:x")) == list(scope + "v:long"));
    CHECK_FALSE(co_await b.expire(scope + "v:p", 10s));
  });
}

TEST_CASE("erase reports whether the value was live and drops its index memberships", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    CHECK(co_await b.set(scope + "v:p", "plain", params()));
    CHECK(co_await b.set(scope + "v:h", "hashed", P(60s).index(scope + "i:x").index(scope + "i:y")));
    CHECK(co_await b.set(scope + "v:k", "kept", P(60s).index(scope + "i:x")));
    CHECK(co_await b.erase(scope + "v:p"));
    CHECK_FALSE(co_await b.erase(scope + "v:p"));
    CHECK(co_await b.erase(scope + "v:h"));
    CHECK(server.run({"SMEMBERS", scope + "i:x"}) == scope + "v:k");  // removed at once
    CHECK(server.run({"EXISTS", scope + "i:y"}) == "0");
    CHECK(sorted(co_await b.index_members(scope + "i:x")) == list(scope + "v:k"));
    CHECK(co_await b.get(scope + "v:h") == std::nullopt);
  });
}

TEST_CASE("expire gives a new ttl and extends, never shortens, its indices", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    CHECK(co_await b.set(scope + "v:a", "a", P(1s).index(scope + "i:x")));
    CHECK(co_await b.set(scope + "v:b", "b", P(30s).index(scope + "i:x")));
    CHECK(co_await b.expire(scope + "v:a", 100s));
    CHECK(std::stoll(server.run({"PTTL", scope + "v:a"})) > 90'000);
    CHECK(std::stoll(server.run({"PTTL", scope + "i:x"})) > 90'000);
    CHECK(co_await b.expire(scope + "v:b", 2s));  // shorter: the index keeps 100 s
    CHECK(std::stoll(server.run({"PTTL", scope + "v:b"})) <= 2'000);
    CHECK(std::stoll(server.run({"PTTL", scope + "i:x"})) > 90'000);
    CHECK(co_await b.set(scope + "v:p", "plain", params(1s)));
    CHECK(co_await b.expire(scope + "v:p", 50s));
    CHECK(std::stoll(server.run({"PTTL", scope + "v:p"})) > 40'000);
    CHECK_FALSE(co_await b.expire(scope + "v:none", 50s));
    CHECK(co_await b.get(scope + "v:a") == std::optional<std::string>("a"));
  });
}

TEST_CASE("a store replaces the key's index memberships", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  const auto key = scope + "v:k";
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    CHECK(co_await b.set(key, "1", P(60s).index(scope + "i:x").index(scope + "i:y")));
    CHECK(sorted(co_await b.index_members(scope + "i:x")) == list(key));
    // Re-stored with only y: x drops it right away.
    CHECK(co_await b.set(key, "2", P(60s).index(scope + "i:y")));
    CHECK(server.run({"SMEMBERS", scope + "i:x"}).empty());
    CHECK(sorted(co_await b.index_members(scope + "i:x")) == list());
    CHECK(sorted(co_await b.index_members(scope + "i:y")) == list(key));
    // Overwritten by a plain store: no index lists it; listing prunes the stale member.
    CHECK(co_await b.set(key, "3", params()));
    CHECK(server.run({"SMEMBERS", scope + "i:y"}) == key);
    CHECK(sorted(co_await b.index_members(scope + "i:y")) == list());
    CHECK(server.run({"SMEMBERS", scope + "i:y"}).empty());
    CHECK(co_await b.get(key) == std::optional<std::string>("3"));
    // Indexed again: listed again.
    CHECK(co_await b.set(key, "4", P(60s).index(scope + "i:y").index(scope + "i:y")));
    CHECK(sorted(co_await b.index_members(scope + "i:y")) == list(key));
    CHECK(server.run({"HGET", key, "i"}) == scope + "i:y");  // duplicates stored once
  });
}

TEST_CASE("erase_index removes exactly the live members and the index", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    CHECK(co_await b.set(scope + "v:a", "a", P(60s).index(scope + "i:fn").index(scope + "i:other")));
    CHECK(co_await b.set(scope + "v:b", "b", P(60s).index(scope + "i:fn")));
    CHECK(co_await b.set(scope + "v:c", "c", P(60s).index(scope + "i:fn")));
    CHECK(co_await b.set(scope + "v:c", "c-plain", params()));  // stale member: must survive
    CHECK(co_await b.set(scope + "v:d", "d", P(60s).index(scope + "i:other")));
    CHECK(co_await b.erase_index(scope + "i:fn") == 2);
    CHECK(co_await b.get(scope + "v:a") == std::nullopt);
    CHECK(co_await b.get(scope + "v:b") == std::nullopt);
    CHECK(co_await b.get(scope + "v:c") == std::optional<std::string>("c-plain"));
    CHECK(server.run({"EXISTS", scope + "i:fn"}) == "0");
    CHECK(server.run({"SMEMBERS", scope + "i:other"}) == scope + "v:d");
    CHECK(co_await b.erase_index(scope + "i:fn") == 0);
  });
}

TEST_CASE("scripts keep working after SCRIPT FLUSH and use the names Redis gives them", "[redis][backend]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  namespace scripts = corocache::detail::redis::scripts;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for());
    CHECK(co_await b.set(scope + "v:a", "a", P(60s).index(scope + "i:x")));
    // The compile-time SHA-1 is the name Redis gave the script on its EVAL fallback.
    CHECK(server.run({"SCRIPT", "EXISTS", std::string(scripts::store_hash.sha_view())}) == "1");
    server.run({"SCRIPT", "FLUSH"});
    CHECK(co_await b.set(scope + "v:b", "b", P(60s).index(scope + "i:x")));
    CHECK(sorted(co_await b.index_members(scope + "i:x")) == list(scope + "v:a", scope + "v:b"));
    server.run({"SCRIPT", "FLUSH"});
    CHECK(co_await b.get(scope + "v:b") == std::optional<std::string>("b"));
    server.run({"SCRIPT", "FLUSH"});
    CHECK(co_await b.erase(scope + "v:b"));
    server.run({"SCRIPT", "FLUSH"});
    CHECK(co_await b.erase_index(scope + "i:x") == 1);
  });
}

TEST_CASE("a restarted server (empty script cache) serves scripted operations again", "[redis][backend]") {
  RedisServer server;
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    RedisBackend b(ex, options_for(server));
    CHECK(co_await b.set(scope + "v:a", "a", P(60s).index(scope + "i:x")));
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
    CHECK(sorted(co_await b.index_members(scope + "i:x")) == list(scope + "v:b"));
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
