// Smoke test of the test harness itself (tests/support/redis_server.hpp).
#include "support/redis_server.hpp"

#include <catch2/catch.hpp>

#include <stdexcept>

namespace redis_server_test {

using corocache::test::RedisServer;

TEST_CASE("a test redis server answers commands and survives kill and restart on its port") {
  RedisServer server;
  REQUIRE(server.port() != 0);
  CHECK(server.url() == "redis://127.0.0.1:" + std::to_string(server.port()));
  CHECK(server.run({"PING"}) == "PONG");
  CHECK(server.run({"SET", "k", "v"}) == "OK");
  CHECK(server.run({"GET", "k"}) == "v");
  CHECK(server.run({"GET", "missing"}) == "(nil)");
  CHECK(server.run({"INCR", "n"}) == "1");
  CHECK_THROWS_AS(server.run({"NO-SUCH-COMMAND"}), std::runtime_error);

  const auto port = server.port();
  server.kill();
  CHECK_THROWS_AS(server.run({"PING"}), std::runtime_error);
  server.start();
  CHECK(server.port() == port);
  CHECK(server.run({"GET", "k"}) == "(nil)");  // no persistence
}

TEST_CASE("a paused test redis server does not answer until resumed") {
  RedisServer server;
  server.pause();
  // run() would block for its 5 s I/O timeout; a raw socket connect still succeeds (backlog)
  // but nothing answers, which run() reports as an error.
  CHECK_THROWS_AS(server.run({"PING"}), std::runtime_error);
  server.resume();
  CHECK(server.run({"PING"}) == "PONG");
}

TEST_CASE("a test redis server with a password authenticates its own commands") {
  RedisServer server({"--requirepass", "s3cret"});
  CHECK(server.run({"PING"}) == "PONG");
}

TEST_CASE("the shared test redis server is one server per process") {
  auto& a = corocache::test::shared_redis_server();
  auto& b = corocache::test::shared_redis_server();
  CHECK(&a == &b);
  CHECK(a.run({"PING"}) == "PONG");
}

}  // namespace redis_server_test
