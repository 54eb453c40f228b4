#pragma once
// Which slot a command goes to in Redis Cluster, I/O-free: finds the command's keys from
// its arguments (the key positions of the commands corocache sends, plus a documented
// default) and checks that they all hash to one slot. A cross-slot command is refused here,
// before any I/O, as the server would refuse it with -CROSSSLOT.

#include <corocache/redis/detail/cluster_slots.hpp>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace corocache::detail::redis::cluster {

enum class RouteKind {
  slot,        ///< every key is in `slot`: send to its owner
  any_node,    ///< no key (PING, SCRIPT LOAD, SCAN, EVALSHA with 0 keys...): the topology layer
               ///< picks a node, or sends to every primary when the command is per node
  cross_slot,  ///< keys in different slots: not sendable as one command
  malformed,   ///< too few arguments for the command's key positions (e.g. bad numkeys)
};

struct Route {
  RouteKind kind = RouteKind::any_node;
  int slot = -1;
  friend bool operator==(const Route&, const Route&) = default;
};

namespace route_detail {

inline bool name_is(std::string_view name, std::string_view upper) {
  return name.size() == upper.size() &&
         std::equal(name.begin(), name.end(), upper.begin(), [](char a, char b) {
           return (a >= 'a' && a <= 'z' ? static_cast<char>(a - 'a' + 'A') : a) == b;
         });
}
inline bool name_in(std::string_view name, std::initializer_list<std::string_view> names) {
  return std::any_of(names.begin(), names.end(), [&](std::string_view n) { return name_is(name, n); });
}

/// Folds one more key into `route`.
inline void add_key(Route& route, std::string_view key) {
  const int s = key_slot(key);
  if (route.kind == RouteKind::any_node) {
    route = Route{RouteKind::slot, s};
  } else if (route.kind == RouteKind::slot && route.slot != s) {
    route = Route{RouteKind::cross_slot, -1};
  }
}

}  // namespace route_detail

/// Routes one command given as its arguments (argv[0] is the name, in any case).
///   - no key: PING ECHO INFO TIME SCRIPT FUNCTION SCAN KEYS DBSIZE RANDOMKEY FLUSHDB
///     FLUSHALL CLUSTER ASKING READONLY READWRITE HELLO AUTH SELECT CLIENT COMMAND CONFIG
///     ROLE WAIT MULTI EXEC DISCARD UNWATCH SUBSCRIBE PUBLISH
///   - EVAL EVALSHA EVAL_RO EVALSHA_RO FCALL FCALL_RO: argv[2] keys from argv[3]
///   - MSET MSETNX: argv[1], argv[3], ...
///   - DEL UNLINK EXISTS MGET TOUCH WATCH SINTER SUNION SDIFF PFCOUNT: every argument
///   - BLPOP BRPOP BZPOPMIN BZPOPMAX: every argument but the last (the timeout)
///   - LMOVE BLMOVE RPOPLPUSH BRPOPLPUSH SMOVE RENAME RENAMENX COPY: argv[1] and argv[2]
///   - any other command: argv[1] is its only key (GET, SET, HSET, LPUSH, EXPIRE, ...).
inline Route route_command(std::span<const std::string_view> argv) {
  using namespace route_detail;
  Route route;
  if (argv.empty()) return Route{RouteKind::malformed, -1};
  const auto name = argv[0];
  const std::size_t n = argv.size();
  if (name_in(name,
              {"PING",   "ECHO",      "INFO",    "TIME",     "SCRIPT",    "FUNCTION", "SCAN",     "KEYS",
               "DBSIZE", "RANDOMKEY", "FLUSHDB", "FLUSHALL", "CLUSTER",   "ASKING",   "READONLY", "READWRITE",
               "HELLO",  "AUTH",      "SELECT",  "CLIENT",   "COMMAND",   "CONFIG",   "ROLE",     "WAIT",
               "MULTI",  "EXEC",      "DISCARD", "UNWATCH",  "SUBSCRIBE", "PUBLISH"}))
    return route;
  if (name_in(name, {"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"})) {
    if (n < 3) return Route{RouteKind::malformed, -1};
    std::size_t numkeys = 0;
    const auto text = argv[2];
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), numkeys);
    if (ec != std::errc{} || end != text.data() + text.size() || numkeys > n - 3)
      return Route{RouteKind::malformed, -1};
    for (std::size_t i = 0; i < numkeys; ++i) add_key(route, argv[3 + i]);
    return route;
  }
  if (name_in(name, {"MSET", "MSETNX"})) {
    if (n < 3 || n % 2 == 0) return Route{RouteKind::malformed, -1};
    for (std::size_t i = 1; i < n; i += 2) add_key(route, argv[i]);
    return route;
  }
  if (name_in(name, {"DEL", "UNLINK", "EXISTS", "MGET", "TOUCH", "WATCH", "SINTER", "SUNION", "SDIFF",
                     "PFCOUNT"})) {
    if (n < 2) return Route{RouteKind::malformed, -1};
    for (std::size_t i = 1; i < n; ++i) add_key(route, argv[i]);
    return route;
  }
  if (name_in(name, {"BLPOP", "BRPOP", "BZPOPMIN", "BZPOPMAX"})) {
    if (n < 3) return Route{RouteKind::malformed, -1};
    for (std::size_t i = 1; i + 1 < n; ++i) add_key(route, argv[i]);
    return route;
  }
  if (name_in(name, {"LMOVE", "BLMOVE", "RPOPLPUSH", "BRPOPLPUSH", "SMOVE", "RENAME", "RENAMENX", "COPY"})) {
    if (n < 3) return Route{RouteKind::malformed, -1};
    add_key(route, argv[1]);
    add_key(route, argv[2]);
    return route;
  }
  if (n < 2) return Route{RouteKind::malformed, -1};
  add_key(route, argv[1]);
  return route;
}

/// `keys` split into groups of one slot each (for per-slot deletes after a SCAN of a node):
/// groups in the order their slot first appears, keys in their original order.
inline std::vector<std::vector<std::string>> group_by_slot(std::vector<std::string>& keys) {
  std::vector<std::vector<std::string>> groups;
  std::vector<int> slots;
  for (auto& k : keys) {
    const int s = key_slot(k);
    const auto index = static_cast<std::size_t>(std::find(slots.begin(), slots.end(), s) - slots.begin());
    if (index == slots.size()) {
      slots.push_back(s);
      groups.emplace_back();
    }
    groups[index].push_back(std::move(k));
  }
  return groups;
}

}  // namespace corocache::detail::redis::cluster
