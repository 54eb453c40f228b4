// A program built without COROCACHE_TLS (e.g. `g++ app.cpp -lhiredis`, no OpenSSL linked)
// compiles the Redis backend without its TLS code, and refuses TLS options before any I/O
// with an error that says how to turn TLS on. This translation unit is its own executable:
// the rest of the suite is built with TLS (the CMake target defines COROCACHE_TLS=1).
#undef COROCACHE_TLS

#include <corocache/redis_backend.hpp>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <stdexcept>

using namespace corocache;
using Catch::Matchers::Contains;

TEST_CASE("without COROCACHE_TLS, TLS options are refused before any I/O, naming the build switch") {
  CHECK_THROWS_WITH(RedisOptions::from_url("rediss://127.0.0.1:6380").validate(),
                    Contains("COROCACHE_TLS=1"));
  CHECK_THROWS_WITH(RedisClusterOptions::from_url("rediss+cluster://127.0.0.1:7000").validate(),
                    Contains("COROCACHE_TLS=1"));
  CHECK_THROWS_WITH(RedisSentinelOptions::from_url("rediss+sentinel://127.0.0.1:26379/mymaster").validate(),
                    Contains("COROCACHE_TLS=1"));
  RedisOptions tls;
  tls.tls.enabled = true;
  boost::asio::io_context io;
  CHECK_THROWS_AS(RedisBackend(io.get_executor(), tls), std::invalid_argument);
  // Plain connections are unaffected (nothing is connected until the first call).
  RedisOptions plain;
  CHECK_NOTHROW(RedisBackend(io.get_executor(), plain));
}
