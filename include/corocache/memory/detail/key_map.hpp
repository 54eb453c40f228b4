#pragma once
// Hash maps keyed by std::string that are looked up by (string_view, precomputed hash):
// the store hashes a key once, picks the shard from that hash and probes the shard's map
// with the same hash, without building a std::string for the lookup.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>

namespace corocache::detail::memory {

namespace hashing {

/// The 128-bit product of a and b, its halves xor-ed: every input bit reaches many output
/// bits in one multiplication.
inline std::uint64_t fold_multiply(std::uint64_t a, std::uint64_t b) noexcept {
  __extension__ using wide = unsigned __int128;  // __extension__: no -Wpedantic warning
  const wide product = static_cast<wide>(a) * b;
  return static_cast<std::uint64_t>(product) ^ static_cast<std::uint64_t>(product >> 64);
}

inline std::uint64_t load64(const char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline std::uint64_t load32(const char* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Odd constants with well-mixed bits (fractional digits of pi and e).
inline constexpr std::uint64_t k0 = 0x243f6a8885a308d3ull;
inline constexpr std::uint64_t k1 = 0x13198a2e03707345ull;
inline constexpr std::uint64_t k2 = 0xa4093822299f31d1ull;
inline constexpr std::uint64_t k3 = 0xb7e151628aed2a6bull;

}  // namespace hashing

/// The store's key hash. Keys are mostly 30-60 bytes (`<prefix>:{<tenant>:<ns>}:v:<name>`)
/// and every operation hashes one, so this reads 16 bytes per step and mixes them with one
/// wide multiplication: about a third of the instructions of std::hash (_Hash_bytes) on
/// such keys. Unseeded, like std::hash: it is no defence against chosen-key flooding.
/// Used for both the shard (top bits of a multiplicative mix, see Store::shard_index) and
/// the bucket (hash % prime), and for the eviction fingerprint.
inline std::size_t hash_key(std::string_view key) noexcept {
  using namespace hashing;
  const char* p = key.data();
  std::size_t n = key.size();
  std::uint64_t h = k0 ^ static_cast<std::uint64_t>(n);
  while (n > 16) {
    h = fold_multiply(load64(p) ^ k1, load64(p + 8) ^ h);
    p += 16;
    n -= 16;
  }
  // The last 0..16 bytes, read as two (possibly overlapping) words.
  std::uint64_t a = 0, b = 0;
  if (n > 8) {
    a = load64(p);
    b = load64(p + n - 8);
  } else if (n >= 4) {
    a = load32(p);
    b = load32(p + n - 4);
  } else if (n > 0) {
    const auto byte = [p](std::size_t i) {
      return static_cast<std::uint64_t>(static_cast<unsigned char>(p[i]));
    };
    a = byte(0) << 16 | byte(n / 2) << 8 | byte(n - 1);
  }
  h = fold_multiply(a ^ k2, b ^ h);
  return static_cast<std::size_t>(fold_multiply(h ^ k3, static_cast<std::uint64_t>(key.size()) ^ k1));
}

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
