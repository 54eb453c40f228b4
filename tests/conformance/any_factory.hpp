#pragma once
// The conformance suite's AnyBackend, built the way applications build it: from a URL.
// COROCACHE_CONFORMANCE_ANY_MEMORY: memory://; COROCACHE_CONFORMANCE_ANY_REDIS: redis:// of
// the test process's shared redis-server (tests/support/redis_server.hpp).
#include "conformance/backend_factory.hpp"

#include <corocache/any_backend.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <string>
#include <utility>

#if defined(COROCACHE_CONFORMANCE_ANY_REDIS)
#include "support/redis_server.hpp"

#include <corocache/any_backend_redis.hpp>
#endif

namespace corocache::test {
template <>
struct BackendFactory<AnyBackend> {
  static AnyBackend make(boost::asio::any_io_executor ex) {
#if defined(COROCACHE_CONFORMANCE_ANY_REDIS)
    return make_backend(std::move(ex), "redis://127.0.0.1:" + std::to_string(shared_redis_server().port()));
#else
    return make_backend(std::move(ex), "memory://");
#endif
  }
};
}  // namespace corocache::test
