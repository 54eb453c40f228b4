#pragma once
// The conformance suite's RedisBackend over TLS: connected with rediss:// (peer
// verification on, trusting the test CA) to one TLS-only redis-server per test process
// (tests/support/redis_tls.hpp), started on first use.
#include "conformance/backend_factory.hpp"
#include "support/redis_tls.hpp"

#include <corocache/redis/backend.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <utility>

namespace corocache::test {

inline RedisTlsServer& shared_redis_tls_server() {
  static RedisTlsServer server;
  return server;
}

template <>
struct BackendFactory<RedisBackend> {
  static RedisBackend make(boost::asio::any_io_executor ex) {
    const auto& server = shared_redis_tls_server();
    auto options = RedisOptions::from_url(server.url() + "?tls_ca_file=" + server.ca_file());
    return RedisBackend(std::move(ex), std::move(options));
  }
};
}  // namespace corocache::test
