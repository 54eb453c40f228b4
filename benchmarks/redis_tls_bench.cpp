// TLS overhead: GET and SET of 16-byte values with N = 1, 16 and 256 requests in flight on
// one corocache connection, over TLS (rediss://, peer verification on) and over plain TCP
// to the SAME redis-server (listening on both ports), measured in the same run, alternating,
// best of R. One summary line per (op, N): "corocache" is TLS, "baseline" plain TCP.
//
//   redis_tls_bench [--ops COUNT] [--repeats R]
//
// Starts its own redis-server with certificates it generates (tests/support/redis_tls.hpp).

#include "redis_ab_harness.hpp"
#include "support/redis_process.hpp"
#include "support/redis_tls.hpp"

#include <cstdio>
#include <exception>
#include <string>

int main(int argc, char** argv) try {
  namespace ab = corocache::bench::redis_ab;
  std::size_t total = corocache::bench::quick() ? 5'000 : 200'000;
  int repeats = corocache::bench::quick() ? 1 : 3;
  ab::parse_args(argc, argv, total, repeats);
  const auto plain_port = corocache::test::free_loopback_port();
  corocache::test::RedisTlsServer::Options so;
  so.extra_args = {"--port", std::to_string(plain_port)};  // plain TCP too: the same server
  corocache::test::RedisTlsServer server(so);

  corocache::RedisOptions plain;
  plain.port = plain_port;
  plain.request_timeout = std::chrono::seconds(10);
  auto tls = corocache::RedisOptions::from_url(server.url() + "?tls_ca_file=" + server.ca_file());
  tls.request_timeout = plain.request_timeout;
  ab::Bench plain_bench(plain, "tlsb", 1), tls_bench(tls, "tlsb", 1);

  std::printf("redis_tls_bench: redis-server with TCP port %u and TLS port %u, %zu ops per run, best of %d\n",
              plain_port, server.port(), total, repeats);
  ab::compare(tls_bench, plain_bench, "redis TLS", "plain TCP", total, repeats, "redis_tls_bench");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "redis_tls_bench: %s\n", e.what());
  return 1;
}
