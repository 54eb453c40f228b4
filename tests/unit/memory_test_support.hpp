#pragma once
// Helpers shared by the memory backend tests.

#include <corocache/memory/backend.hpp>

#include "support/run.hpp"  // sleep_for

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <string>

// g++ 12 evaluates a co_await inside a Catch2 macro more than once (the macro repeats its
// argument in an unevaluated-looking branch that g++ evaluates anyway). These evaluate
// the expression once, into a plain bool, and then report it.
#define CO_CHECK(...)                                        \
  do {                                                       \
    const bool co_check_ok = static_cast<bool>(__VA_ARGS__); \
    if (co_check_ok) {                                       \
      SUCCEED(#__VA_ARGS__);                                 \
    } else {                                                 \
      FAIL_CHECK("CO_CHECK(" #__VA_ARGS__ ") failed");       \
    }                                                        \
  } while (false)
#define CO_REQUIRE(...)                                              \
  do {                                                               \
    const bool co_require_ok = static_cast<bool>(__VA_ARGS__);       \
    if (!co_require_ok) FAIL("CO_REQUIRE(" #__VA_ARGS__ ") failed"); \
  } while (false)

namespace corocache::test {

inline StoreParams ttl(std::chrono::milliseconds d) {
  StoreParams p;
  p.ttl = d;
  return p;
}

inline StoreParams long_ttl() { return ttl(std::chrono::hours(1)); }

}  // namespace corocache::test
