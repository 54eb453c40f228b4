#pragma once
// A per-call deadline on any awaitable: Scope::with_timeout uses it to override a backend's
// default request timeout for one scope's calls.

#include <corocache/backend.hpp>
#include <corocache/errors.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <type_traits>
#include <utility>

namespace corocache::detail {

/// Awaits `op`, or throws system_error(errc::timeout) once `limit` passes; the operation is
/// then cancelled (terminal cancellation), so a backend discards its late reply.
/// Exceptions from `op` propagate as soon as they happen (not after the deadline).
template <class T>
asio::awaitable<T> with_deadline(asio::awaitable<T> op, Duration limit) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, limit);
  auto results =
      co_await asio::experimental::make_parallel_group(
          asio::co_spawn(executor, std::move(op), asio::deferred), timer.async_wait(asio::deferred))
          .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
  const auto& order = std::get<0>(results);
  if (order[0] != 0) throw_error(errc::timeout, "corocache: the call's deadline passed");
  if (auto& error = std::get<1>(results)) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<T>) co_return std::move(std::get<2>(results));
}

}  // namespace corocache::detail
