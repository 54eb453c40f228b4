#pragma once
// Hash maps keyed by std::string that are looked up by (string_view, precomputed hash):
// the store hashes a key once, picks the shard from that hash and probes the shard's map
// with the same hash, without building a std::string for the lookup.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace corocache::detail::memory {

inline std::size_t hash_key(std::string_view key) noexcept { return std::hash<std::string_view>{}(key); }

/// A key to look up, with its hash already computed.
struct KeyRef {
  std::string_view key;
  std::size_t hash;
  explicit KeyRef(std::string_view k) noexcept : key(k), hash(hash_key(k)) {}
};

struct KeyHash {
  using is_transparent = void;
  // Deliberately not noexcept: libstdc++ then stores each node's hash code, so a probe
  // compares hashes before key bytes and a rehash never re-reads the keys.
  std::size_t operator()(const std::string& s) const { return hash_key(s); }
  std::size_t operator()(const KeyRef& k) const { return k.hash; }
};

struct KeyEqual {
  using is_transparent = void;
  bool operator()(const std::string& a, const std::string& b) const noexcept { return a == b; }
  bool operator()(const KeyRef& a, const std::string& b) const noexcept { return a.key == b; }
  bool operator()(const std::string& a, const KeyRef& b) const noexcept { return a == b.key; }
};

template <class V>
using KeyMap = std::unordered_map<std::string, V, KeyHash, KeyEqual>;

}  // namespace corocache::detail::memory
