#pragma once
// Prefix and conditional removal (erase_prefix, erase_if) over a Topology: a SCAN walk
// (scan.hpp) on every primary, the keys found deleted per slot (a cluster never gets a
// cross-slot command), conditional removal through the peek and erase_if_same scripts.

#include <corocache/backend.hpp>
#include <corocache/redis/detail/budget.hpp>
#include <corocache/redis/detail/commands.hpp>
#include <corocache/redis/detail/peek.hpp>
#include <corocache/redis/detail/reply.hpp>
#include <corocache/redis/detail/request.hpp>
#include <corocache/redis/detail/scan.hpp>
#include <corocache/redis/detail/script_runner.hpp>
#include <corocache/redis/detail/scripts.hpp>
#include <corocache/redis/detail/topology.hpp>
#include <corocache/redis/detail/value_ops.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corocache::detail::redis {

/// One SCAN step (or other per-node request) on one node; an error reply throws.
inline asio::awaitable<Reply> node_exec(NodeTarget node, Request request, Deadline deadline) {
  Reply reply = co_await node.exec(std::move(request), round_trip_timeout(deadline));
  throw_if_error(reply);
  co_return reply;
}

/// RedisBackend::erase_prefix: SCANs every primary of `topo` (one server: the server) and UNLINKs per
/// slot, never across slots. The arguments were checked by the caller (backend_contract.hpp).
inline asio::awaitable<std::size_t> bulk_erase_prefix(Topology& topo, std::string prefix, Deadline deadline) {
  std::size_t removed = 0;
  auto unlink = [&](std::vector<std::string>& found) -> asio::awaitable<bool> {
    // A named vector, not a temporary in the range-for: g++ 12 (see README, Compilers).
    auto groups = topo.by_slot(found);
    for (auto& keys : groups) {
      std::vector<std::string_view> argv;
      argv.reserve(keys.size() + 1);
      argv.emplace_back("UNLINK");
      argv.insert(argv.end(), keys.begin(), keys.end());
      Request request;
      request.add_argv(argv);
      const Reply reply = co_await topo.exec(keys.front(), std::move(request), round_trip_timeout(deadline));
      throw_if_error(reply);
      if (!reply.is_integer() || reply.integer < 0) throw_unexpected("UNLINK");
      removed += static_cast<std::size_t>(reply.integer);
    }
    co_return true;
  };
  const auto nodes = co_await topo.primaries(round_trip_timeout(deadline));
  for (const auto& node : nodes) {
    auto send = [&](Request r) { return node_exec(node, std::move(r), deadline); };
    co_await walk_prefix(send, prefix, unlink);
  }
  co_return removed;
}

/// RedisBackend::erase_if: SCANs as erase_prefix; values are read without consuming reads (peek script,
/// in replies within `max_reply_bytes`) and the accepted ones deleted only if still
/// unchanged (erase_if_same script), per slot.
inline asio::awaitable<std::size_t> bulk_erase_if(Topology& topo, std::string prefix,
                                                  EntryPredicate predicate, std::int64_t limit,
                                                  std::size_t max_reply_bytes, Deadline deadline) {
  if (limit == 0) co_return 0;
  std::size_t removed = 0;
  // `keys`: all in one slot.
  auto remove_accepted = [&](std::vector<std::string>& keys) -> asio::awaitable<bool> {
    Routed target{topo, keys.front()};
    const std::vector<Reply> values = co_await peek_values(target, keys, max_reply_bytes, deadline);
    // Choose victims, at most as many as the limit still allows.
    std::vector<std::size_t> chosen;
    const std::size_t room = limit < 0 ? keys.size() : static_cast<std::size_t>(limit) - removed;
    for (std::size_t i = 0; i < keys.size() && chosen.size() < room; ++i) {
      if (!values[i].is_string()) continue;
      if (predicate(keys[i], values[i].str)) chosen.push_back(i);
    }
    if (chosen.empty()) co_return true;
    std::vector<std::string_view> victims, expected;
    victims.reserve(chosen.size());
    expected.reserve(chosen.size());
    for (std::size_t i : chosen) {
      victims.emplace_back(keys[i]);
      expected.emplace_back(values[i].str);
    }
    const std::size_t erased =
        co_await erase_if_unchanged(target, scripts::erase_if_same, victims, expected, deadline);
    removed += erased;
    co_return limit < 0 || removed < static_cast<std::size_t>(limit);
  };
  auto per_slot = [&](std::vector<std::string>& found) -> asio::awaitable<bool> {
    auto groups = topo.by_slot(found);
    for (auto& keys : groups) {
      const bool more = co_await remove_accepted(keys);
      if (!more) co_return false;
    }
    co_return true;
  };
  const auto nodes = co_await topo.primaries(round_trip_timeout(deadline));
  for (const auto& node : nodes) {
    auto send = [&](Request r) { return node_exec(node, std::move(r), deadline); };
    co_await walk_prefix(send, prefix, per_slot);
    if (limit >= 0 && removed >= static_cast<std::size_t>(limit)) break;
  }
  co_return removed;
}

}  // namespace corocache::detail::redis
