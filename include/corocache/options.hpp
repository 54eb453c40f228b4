#pragma once
// Option aggregates of the facade. Every field has a documented default, so
// `corocache::SetOptions o{.expire = 10s, .nx = true};` names only what differs.
//
// g++ 12 miscompiles aggregate temporaries and braced lists inside a co_await expression
// (README "Compilers: g++ 12"; docs/compilers.md). Inside co_await, build options with the
// factories and chainable setters below (each is an ordinary function returning a prvalue,
// which g++ 12 handles), or pass a named variable:
//   co_await s.set_key("k", "v", corocache::expire_in(10min).with_indices("a"));

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
  /// Indices (names of any bytes) that list this key in list_keys_by_index. A store
  /// replaces the key's memberships: after it, exactly these indices list the key.
  std::vector<std::string> indices = {};
  /// 0: unlimited. N > 0: the N-th successful get_key returns the value and removes the key.
  std::uint32_t max_reads = 0;

  // Chainable setters: each returns the options with one field changed (by value, so the
  // result never refers to a temporary). Start from a factory below, or from a variable.
  SetOptions with_expire(Duration d) const& { return SetOptions(*this).with_expire(d); }
  SetOptions with_expire(Duration d) && {
    expire = d;
    return std::move(*this);
  }
  SetOptions with_nx(bool on = true) const& { return SetOptions(*this).with_nx(on); }
  SetOptions with_nx(bool on = true) && {
    nx = on;
    return std::move(*this);
  }
  SetOptions with_max_reads(std::uint32_t n) const& { return SetOptions(*this).with_max_reads(n); }
  SetOptions with_max_reads(std::uint32_t n) && {
    max_reads = n;
    return std::move(*this);
  }
  /// Sets the index list (replacing any earlier one) from names convertible to std::string.
  template <class... Names>
  SetOptions with_indices(Names&&... names) const& {
    return SetOptions(*this).with_indices(std::forward<Names>(names)...);
  }
  template <class... Names>
  SetOptions with_indices(Names&&... names) && {
    indices.clear();
    indices.reserve(sizeof...(Names));
    (indices.emplace_back(std::forward<Names>(names)), ...);
    return std::move(*this);
  }
};

/// Default options with `expire` = d: `co_await s.set_key("k", "v", corocache::expire_in(10min))`.
inline SetOptions expire_in(Duration d) { return SetOptions().with_expire(d); }
/// Default options with nx set: store only if absent.
inline SetOptions only_if_absent() { return SetOptions().with_nx(); }
/// Default options listing the key in these indices.
template <class... Names>
SetOptions in_indices(Names&&... names) {
  return SetOptions().with_indices(std::forward<Names>(names)...);
}
/// Default options with max_reads = n: the n-th read returns the value and removes the key.
inline SetOptions read_limit(std::uint32_t n) { return SetOptions().with_max_reads(n); }

/// Builds an index list without a braced list, for a named SetOptions:
/// `corocache::SetOptions o{.indices = corocache::indices("a")};`. Inside a co_await write
/// `corocache::in_indices("a")` instead: g++ 12 frees the vector of an aggregate temporary
/// twice there.
template <class... Names>
std::vector<std::string> indices(Names&&... names) {
  std::vector<std::string> out;
  out.reserve(sizeof...(Names));
  (out.emplace_back(std::forward<Names>(names)), ...);
  return out;
}

}  // namespace corocache
