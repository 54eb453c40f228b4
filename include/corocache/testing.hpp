#pragma once
// Test helpers for code written against corocache (installed with the library; needs no test
// framework). testing::run runs one coroutine to completion on a fresh io_context with a
// deadline, returns its value and rethrows what it threw:
//
//   std::string r = corocache::testing::run([](asio::any_io_executor ex) -> asio::awaitable<std::string> {
//     corocache::Cache<corocache::MemoryBackend> cache{corocache::MemoryBackend{ex}, {.prefix = "test"}};
//     co_return co_await greeting(cache, "ada");
//   });

#include <corocache/backend.hpp>
#include <corocache/errors.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace corocache::testing {

/// Calls `body(executor)` (which returns an asio::awaitable<T>) on a fresh single-threaded
/// io_context and runs it until the coroutine finishes or `limit` passes. Returns its value
/// (T may be void), rethrows the exception it ended with, and throws
/// system_error(errc::timeout) if it did not finish in time. Background work left on the
/// io_context when the coroutine finishes (a MemoryBackend's sweep, a RedisBackend's
/// reconnect loop) does not delay the return: the io_context is stopped and destroyed with
/// it, so create the objects under test inside `body` (or make them outlive nothing of it).
template <class Body>
auto run(Body&& body, Duration limit = std::chrono::seconds(10)) {
  using Awaitable = std::invoke_result_t<Body&, asio::any_io_executor>;
  using T = typename Awaitable::value_type;
  std::conditional_t<std::is_void_v<T>, bool, std::optional<T>> result{};
  std::exception_ptr error;
  bool done = false;
  asio::io_context io;  // destroyed first: an unfinished coroutine goes before what it refers to
  auto wrapper = [](Awaitable op, decltype(result)& out) -> asio::awaitable<void> {
    // The value goes into a named variable before anything else touches it (g++ 12 and
    // temporaries in a co_await full-expression: README, Compilers).
    if constexpr (std::is_void_v<T>) {
      co_await std::move(op);
      out = true;
    } else {
      T value = co_await std::move(op);
      out.emplace(std::move(value));
    }
  };
  asio::co_spawn(io, wrapper(body(io.get_executor()), result), [&](std::exception_ptr e) {
    error = e;
    done = true;
    io.stop();
  });
  io.run_for(limit);
  if (!done) {
    throw boost::system::system_error(make_error_code(errc::timeout),
                                      "corocache::testing::run: the coroutine did not finish within " +
                                          std::to_string(limit.count()) + " ms");
  }
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<T>) return std::move(*result);
}

}  // namespace corocache::testing
