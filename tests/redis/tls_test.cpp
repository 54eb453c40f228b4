// TLS for a single server, against real TLS-only redis-servers started by the test with
// certificates it generates (tests/support/redis_tls.hpp): requests over TLS (CA file, CA
// directory, IP address, client certificate, AUTH/SELECT), and clear tls_failed errors
// without a reconnect storm for a wrong CA, a wrong host name and a server that is not TLS.
#include "redis/fault_support.hpp"
#include "support/redis_tls.hpp"
#include "support/run.hpp"

#include <corocache/redis/backend.hpp>
#include <corocache/redis/detail/connection.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace tls_test {

using namespace corocache::test;
using corocache::errc;
using corocache::RedisOptions;
using corocache::detail::redis::Connection;

namespace {

/// Quick-reacting options for `server` over TLS, trusting the test CA.
RedisOptions tls_options(const RedisTlsServer& server) {
  auto o = RedisOptions::from_url(server.url());
  o.tls.ca_file = server.ca_file();
  o.request_timeout = 1s;
  o.connect_timeout = 1s;
  o.reconnect_min = 20ms;
  o.reconnect_max = 250ms;
  return o;
}

struct Failure {
  boost::system::error_code ec;
  std::string what;
};

/// Runs `call`; the error it threw (empty if none).
asio::awaitable<Failure> failure_of(asio::awaitable<corocache::detail::redis::Reply> call) {
  Failure f;
  try {
    co_await std::move(call);
  } catch (const boost::system::system_error& e) {
    f.ec = e.code();
    f.what = e.what();
  }
  co_return f;
}

std::uint64_t connections_received(const RedisTlsServer& server, const std::string& ca = {}) {
  const auto r = server.cli({"INFO", "stats"}, std::chrono::seconds(5), /*with_client_cert=*/true, ca);
  REQUIRE(r.ok());
  const std::string field = "total_connections_received:";
  const auto at = r.output.find(field);
  REQUIRE(at != std::string::npos);
  return std::stoull(r.output.substr(at + field.size()));
}

/// Calls for `period`, 20 ms apart; each must fail with tls_failed and a message holding
/// every string of `expect`. Returns the number of calls.
asio::awaitable<int> expect_tls_failures(Connection& c, std::chrono::milliseconds period,
                                         const std::vector<std::string>& expect) {
  const auto until = std::chrono::steady_clock::now() + period;
  int calls = 0;
  while (std::chrono::steady_clock::now() < until) {
    auto f = co_await failure_of(c.exec(cmd("GET", "k")));
    ++calls;
    INFO(f.what);
    CHECK(f.ec == errc::tls_failed);
    for (const auto& e : expect) CHECK_THAT(f.what, Catch::Contains(e));
    co_await sleep_for(20ms);
  }
  co_return calls;
}

asio::awaitable<void> set_and_get(Connection& c, const std::string& key) {
  auto set = co_await outcome_of(c.exec(cmd("SET", key, "over-tls")));
  REQUIRE_FALSE(set.ec);
  CHECK(set.reply.is_status("OK"));
  auto got = co_await outcome_of(c.exec(cmd("GET", key)));
  REQUIRE_FALSE(got.ec);
  CHECK(got.reply.str == "over-tls");
}

}  // namespace

TEST_CASE("requests run over TLS with the CA as a file, as a directory, and to an IP address") {
  RedisTlsServer server;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto by_file = tls_options(server);
    Connection a(ex, by_file);
    co_await set_and_get(a, "tls:file");

    auto by_dir = tls_options(server);
    by_dir.tls.ca_file.clear();
    by_dir.tls.ca_dir = server.ca_dir();
    Connection b(ex, by_dir);
    co_await set_and_get(b, "tls:dir");

    auto by_ip = tls_options(server);
    by_ip.host = "127.0.0.1";  // the certificate's IP SAN
    Connection c(ex, by_ip);
    co_await set_and_get(c, "tls:ip");

    // Many pipelined requests at once: TLS records split and join replies anywhere.
    std::vector<std::string> big(300, std::string(5000, 'x'));
    int ok = 0;
    for (int i = 0; i < 300; ++i) {
      big[static_cast<std::size_t>(i)] += std::to_string(i);
      auto r = co_await outcome_of(
          a.exec(cmd("SET", "tls:big" + std::to_string(i), big[static_cast<std::size_t>(i)])));
      if (!r.ec) ++ok;
    }
    CHECK(ok == 300);
    auto r = co_await outcome_of(b.exec(cmd("GET", "tls:big299")));
    REQUIRE_FALSE(r.ec);
    CHECK(r.reply.str == big[299]);
    CHECK(a.stats().connects == 1);
  });
}

TEST_CASE("AUTH and SELECT run inside the TLS link (rediss URL with password and db)") {
  RedisTlsServer server;
  // Set after startup: the fixture's readiness probe sends no password.
  const auto set = server.cli({"CONFIG", "SET", "requirepass", "tls-pw-9"}, std::chrono::seconds(5), true);
  REQUIRE(set.ok());
  REQUIRE_THAT(set.output, Catch::Contains("OK"));
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto o = RedisOptions::from_url("rediss://:tls-pw-9@localhost:" + std::to_string(server.port()) +
                                    "/3?tls_ca_file=" + server.ca_file());
    Connection c(ex, o);
    co_await set_and_get(c, "tls:auth");
    auto db = co_await outcome_of(c.exec(cmd("CLIENT", "INFO")));
    REQUIRE_FALSE(db.ec);
    CHECK_THAT(db.reply.str, Catch::Contains("db=3"));
  });
}

TEST_CASE("a server certificate from an unknown CA fails with tls_failed naming the host, without a storm") {
  RedisTlsServer server;
  auto o = tls_options(server);
  o.tls.ca_file = server.other_ca_file();
  const auto before = connections_received(server);
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    Connection c(ex, o);
    const std::vector<std::string> expected = {"localhost:" + std::to_string(server.port()), "certificate",
                                               "does not verify"};
    const int calls = co_await expect_tls_failures(c, 1000ms, expected);
    CHECK(calls > 20);
    // Every call failed at once, yet the link was retried only every reconnect_max.
    INFO("connect attempts " << c.stats().connect_attempts);
    CHECK(c.stats().connect_attempts >= 2);
    CHECK(c.stats().connect_attempts <= 1000 / 250 + 2);
    CHECK(c.stats().connects == 0);
  });
  const auto seen = connections_received(server) - before - 1;  // minus our INFO
  INFO("server saw " << seen << " connections");
  CHECK(seen <= 1000 / 250 + 2);
}

TEST_CASE("a host name the certificate does not name fails with tls_failed") {
  RedisTlsServer server;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto o = tls_options(server);
    o.host = "127.0.0.1";
    o.tls.server_name = "wrong.example";
    Connection c(ex, o);
    const std::vector<std::string> expected = {"127.0.0.1", "wrong.example", "does not verify"};
    co_await expect_tls_failures(c, 300ms, expected);
  });
}

TEST_CASE("a client certificate is presented to a server that requires one") {
  RedisTlsServer::Options so;
  so.auth_clients = "yes";
  RedisTlsServer server(so);
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto with_cert = tls_options(server);
    with_cert.tls.cert_file = server.client_cert();
    with_cert.tls.key_file = server.client_key();
    Connection a(ex, with_cert);
    co_await set_and_get(a, "tls:client-cert");

    // Without one the server refuses the link (under TLS 1.3 only after the client's side of
    // the handshake finished, so the refusal may surface on the first read): no reply.
    Connection b(ex, tls_options(server));
    auto f = co_await failure_of(b.exec(cmd("GET", "tls:client-cert")));
    INFO(f.what);
    CHECK(f.ec);
    CHECK(b.stats().connects <= 1);
  });
}

TEST_CASE("verification off connects to a server whose CA is unknown, on, it fails") {
  RedisTlsServer server;
  // Switch the server to the certificate signed by the unrelated CA.
  const auto& certs = server.certs();
  auto set = server.cli(
      {"CONFIG", "SET", "tls-cert-file", certs.other_server_cert, "tls-key-file", certs.other_server_key},
      std::chrono::seconds(5), true);
  REQUIRE(set.ok());
  REQUIRE_THAT(set.output, Catch::Contains("OK"));
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto verified = tls_options(server);
    Connection a(ex, verified);
    const std::vector<std::string> expected = {"localhost", "does not verify"};
    co_await expect_tls_failures(a, 100ms, expected);

    auto unverified = tls_options(server);
    unverified.tls.verify_peer = false;
    Connection b(ex, unverified);
    co_await set_and_get(b, "tls:unverified");
  });
}

TEST_CASE("TLS to a plain-TCP server fails naming the TLS handshake, without a storm") {
  RedisServer plain;
  RedisOptions o = fault_options(plain);
  o.host = "localhost";
  o.tls.enabled = true;
  o.tls.verify_peer = false;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    Connection c(ex, o);
    // The server waits for the end of an inline command that never comes: the handshake
    // times out (an ordinary connect failure) or the server answers with plain text.
    auto f = co_await failure_of(c.exec(cmd("GET", "k")));
    INFO(f.what);
    CHECK((f.ec == errc::not_connected || f.ec == errc::tls_failed));
    CHECK_THAT(f.what, Catch::Contains("localhost:" + std::to_string(plain.port())));
    CHECK_THAT(f.what, Catch::Contains("TLS handshake"));
    co_await sleep_for(500ms);
    CHECK(c.stats().connects == 0);
    CHECK(c.stats().connect_attempts <= 4);
  });
}

TEST_CASE("a PEM file OpenSSL cannot load is an invalid_argument before any connection") {
  RedisTlsServer server;
  auto o = tls_options(server);
  o.tls.cert_file = server.ca_file();
  o.tls.key_file = server.certs().other_ca_key;  // not the certificate's key
  asio::io_context io;
  CHECK_THROWS_AS(Connection(io.get_executor(), o), std::invalid_argument);
  CHECK_THROWS_WITH(corocache::RedisBackend(io.get_executor(), o), Catch::Contains("key_file"));
}

}  // namespace tls_test
