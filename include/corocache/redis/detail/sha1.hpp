#pragma once
// SHA-1, usable at compile time. Redis names a cached Lua script by the SHA-1 of its text
// (EVALSHA <sha1>), so scripts.hpp computes each script's name once, in the compiler.
// SHA-1 is used here only as that name, never for security.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace corocache::detail::redis {

/// 40 lowercase hex digits, as Redis prints them (SCRIPT LOAD's reply).
using Sha1Hex = std::array<char, 40>;

namespace sha1_impl {

constexpr std::uint32_t rotl(std::uint32_t x, int n) noexcept { return (x << n) | (x >> (32 - n)); }

struct State {
  std::uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};

  /// Mixes one 64-byte block into the state.
  constexpr void block(const unsigned char* p) noexcept {
    std::uint32_t w[80]{};
    for (int i = 0; i < 16; ++i)
      w[i] = (std::uint32_t{p[4 * i]} << 24) | (std::uint32_t{p[4 * i + 1]} << 16) |
             (std::uint32_t{p[4 * i + 2]} << 8) | std::uint32_t{p[4 * i + 3]};
    for (int i = 16; i < 80; ++i) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; ++i) {
      std::uint32_t f = 0, k = 0;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5A827999u;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ED9EBA1u;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8F1BBCDCu;
      } else {
        f = b ^ c ^ d;
        k = 0xCA62C1D6u;
      }
      const std::uint32_t t = rotl(a, 5) + f + e + k + w[i];
      e = d;
      d = c;
      c = rotl(b, 30);
      b = a;
      a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
  }
};

}  // namespace sha1_impl

/// The SHA-1 digest of `data` as 40 lowercase hex digits.
constexpr Sha1Hex sha1_hex(std::string_view data) noexcept {
  sha1_impl::State state;
  unsigned char buf[64]{};
  std::size_t used = 0;
  for (char ch : data) {
    buf[used++] = static_cast<unsigned char>(ch);
    if (used == 64) {
      state.block(buf);
      used = 0;
    }
  }
  // Padding: 0x80, zeros up to 56 mod 64, then the message length in bits, big-endian.
  const std::uint64_t bits = static_cast<std::uint64_t>(data.size()) * 8u;
  buf[used++] = 0x80;
  if (used > 56) {
    while (used < 64) buf[used++] = 0;
    state.block(buf);
    used = 0;
  }
  while (used < 56) buf[used++] = 0;
  for (int i = 7; i >= 0; --i) buf[used++] = static_cast<unsigned char>(bits >> (8 * i));
  state.block(buf);

  constexpr char digits[] = "0123456789abcdef";
  Sha1Hex out{};
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 8; ++j)
      out[static_cast<std::size_t>(8 * i + j)] = digits[(state.h[i] >> (28 - 4 * j)) & 0xFu];
  return out;
}

}  // namespace corocache::detail::redis
