#pragma once
// Option aggregates of the facade. Every field has a documented default, so
// `corocache::SetOptions o{.expire = 10s, .nx = true};` names only what differs.

#include <corocache/backend.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corocache {

/// Expiry used when a caller gives none: seven days, as in the library corocache replaces.
inline constexpr Duration default_expire = std::chrono::hours(24 * 7);

/// Options of a Cache.
struct CacheOptions {
  /// First segment of every key; isolates applications sharing one Redis database.
  /// Validated like a tenant name (non-empty, no ':', braces, glob or control characters).
  std::string prefix = "corocache";
};

/// Options of Scope::set_key and Scope::set.
struct SetOptions {
  /// Time to live; must be > 0. Default: 7 days.
  Duration expire = default_expire;
  /// Store only if the key has no live value; atomic across concurrent callers.
  bool nx = false;
  /// Indices (names like a namespace) that list this key in list_keys_by_index. A store
  /// replaces the key's memberships: after it, exactly these indices list the key.
  std::vector<std::string> indices = {};
  /// 0: unlimited. N > 0: the N-th successful get_key returns the value and removes the key.
  std::uint32_t max_reads = 0;
};

/// Builds an index list without a braced initializer_list, for g++ 12, which rejects
/// `co_await s.set_key("k", "v", {.indices = {"a"}})`: write
/// `co_await s.set_key("k", "v", {.indices = corocache::indices("a")})` instead.
template <class... Names>
std::vector<std::string> indices(Names&&... names) {
  std::vector<std::string> out;
  out.reserve(sizeof...(Names));
  (out.emplace_back(std::forward<Names>(names)), ...);
  return out;
}

}  // namespace corocache
