#pragma once
// Helpers shared by the fault tests (tests/redis/fault_*_test.cpp).

#include <corocache/redis/detail/connection.hpp>

#include "support/redis_server.hpp"
#include "support/run.hpp"  // wait_until, sleep_for

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <string>

namespace corocache::test {

namespace asio = boost::asio;
using namespace std::chrono_literals;

template <class... A>
detail::redis::Request cmd(const A&... args) {
  detail::redis::Request r;
  r.add(args...);
  return r;
}

/// Fast-reacting options for tests against `server`.
inline RedisOptions fault_options(const RedisServer& server) {
  RedisOptions o;
  o.port = server.port();
  o.request_timeout = 1s;
  o.connect_timeout = 500ms;
  o.reconnect_min = 20ms;
  o.reconnect_max = 250ms;
  return o;
}

/// What a call ended with: its reply, or the error code it threw.
struct Outcome {
  detail::redis::Reply reply;
  boost::system::error_code ec;
  std::chrono::steady_clock::duration took{};
};

/// Awaits `call`, capturing its outcome instead of throwing (never co_await inside a Catch
/// macro: g++ 12 evaluates such an expression twice).
inline asio::awaitable<Outcome> outcome_of(asio::awaitable<detail::redis::Reply> call) {
  Outcome o;
  const auto start = std::chrono::steady_clock::now();
  try {
    o.reply = co_await std::move(call);
  } catch (const boost::system::system_error& e) {
    o.ec = e.code();
  }
  o.took = std::chrono::steady_clock::now() - start;
  co_return o;
}

}  // namespace corocache::test
