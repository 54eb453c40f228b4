#pragma once
// The conformance suite's AnyBackend, built the way applications build it: from a URL, on
// the deployment named by `--deployment` (support/deployment.hpp): `memory` (memory://) or
// `redis` (redis:// of the test process's shared redis-server,
// tests/support/redis_server.hpp).
#include "conformance/backend_factory.hpp"
#include "support/deployment.hpp"
#include "support/redis_server.hpp"

#include <corocache/any_backend.hpp>
#include <corocache/any_backend_redis.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <string>
#include <utility>

namespace corocache::test {
template <>
struct BackendFactory<AnyBackend> {
  static AnyBackend make(boost::asio::any_io_executor ex) {
    if (deployment({"memory", "redis"}) == "redis")
      return make_backend(std::move(ex), "redis://127.0.0.1:" + std::to_string(shared_redis_server().port()));
    return make_backend(std::move(ex), "memory://");
  }
};
}  // namespace corocache::test
