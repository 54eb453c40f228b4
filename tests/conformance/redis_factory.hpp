#pragma once
// The conformance suite's RedisBackend: connected to the test process's shared
// redis-server (tests/support/redis_server.hpp). Each World uses a unique key prefix, so
// backends made here never see another test's keys.
#include "conformance/backend_factory.hpp"
#include "support/redis_server.hpp"

#include <corocache/redis/backend.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <utility>

namespace corocache::test {
template <>
struct BackendFactory<RedisBackend> {
  static RedisBackend make(boost::asio::any_io_executor ex) {
    RedisOptions options;
    options.port = shared_redis_server().port();
    return RedisBackend(std::move(ex), std::move(options));
  }
};
}  // namespace corocache::test
