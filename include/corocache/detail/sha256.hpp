#pragma once
// SHA-256 (FIPS 180-4), used to name memoized results whose arguments are too long to keep
// verbatim: the digest is the same on every process, compiler and machine, so replicas
// share results. On x86-64 CPUs with the SHA extensions (Intel since Ice Lake / Goldmont,
// AMD since Zen) blocks go through the SHA-NI instructions, chosen at run time; elsewhere
// through the portable code. Both are checked against the FIPS test vectors.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define COROCACHE_SHA256_X86 1
#endif

namespace corocache::detail {

namespace sha256_impl {

inline constexpr std::uint32_t k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

constexpr std::uint32_t rotr(std::uint32_t x, int n) noexcept { return (x >> n) | (x << (32 - n)); }

/// Compresses `blocks` 64-byte blocks at `data` into `state`, portably.
inline void compress_portable(std::uint32_t* state, const unsigned char* data, std::size_t blocks) noexcept {
  for (; blocks > 0; --blocks, data += 64) {
    std::uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = (std::uint32_t{data[i * 4]} << 24) | (std::uint32_t{data[i * 4 + 1]} << 16) |
             (std::uint32_t{data[i * 4 + 2]} << 8) | std::uint32_t{data[i * 4 + 3]};
    for (int i = 16; i < 64; ++i) {
      const std::uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const std::uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    std::uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    std::uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int i = 0; i < 64; ++i) {
      const std::uint32_t t1 =
          h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      const std::uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
  }
}

#ifdef COROCACHE_SHA256_X86
/// The same with the SHA-NI instructions. The state travels as two registers, ABEF and
/// CDGH (the layout SHA256RNDS2 works on); each SHA256RNDS2 does two rounds.
__attribute__((target("sha,sse4.1,ssse3"))) inline void compress_shani(std::uint32_t* state,
                                                                       const unsigned char* data,
                                                                       std::size_t blocks) noexcept {
  const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i abcd = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state));
  __m128i efgh = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4));
  abcd = _mm_shuffle_epi32(abcd, 0xB1);              // B A D C
  efgh = _mm_shuffle_epi32(efgh, 0x1B);              // H G F E
  __m128i abef = _mm_alignr_epi8(abcd, efgh, 8);     // lanes F E B A
  __m128i cdgh = _mm_blend_epi16(efgh, abcd, 0xF0);  // lanes H G D C
  for (; blocks > 0; --blocks, data += 64) {
    const __m128i saved_abef = abef, saved_cdgh = cdgh;
    __m128i w[16];
    for (int i = 0; i < 4; ++i)
      w[i] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(data + 16 * i)), byte_swap);
    for (int i = 4; i < 16; ++i) {
      const __m128i partial =
          _mm_add_epi32(_mm_sha256msg1_epu32(w[i - 4], w[i - 3]), _mm_alignr_epi8(w[i - 1], w[i - 2], 4));
      w[i] = _mm_sha256msg2_epu32(partial, w[i - 1]);
    }
    for (int i = 0; i < 16; ++i) {
      __m128i wk = _mm_add_epi32(w[i], _mm_loadu_si128(reinterpret_cast<const __m128i*>(k + 4 * i)));
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);  // now the new ABEF; the old ABEF is CDGH
      wk = _mm_shuffle_epi32(wk, 0x0E);
      abef = _mm_sha256rnds2_epu32(abef, cdgh, wk);
    }
    abef = _mm_add_epi32(abef, saved_abef);
    cdgh = _mm_add_epi32(cdgh, saved_cdgh);
  }
  const __m128i feba = _mm_shuffle_epi32(abef, 0x1B);  // A B E F
  const __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);  // G H C D
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state), _mm_blend_epi16(feba, dchg, 0xF0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), _mm_alignr_epi8(dchg, feba, 8));
}

inline bool cpu_has_sha() noexcept {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool ssse3_sse41 = (c & (1u << 9)) != 0 && (c & (1u << 19)) != 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return ssse3_sse41 && (b & (1u << 29)) != 0;
}
#endif

using CompressFn = void (*)(std::uint32_t*, const unsigned char*, std::size_t) noexcept;

/// The compression function for this CPU (decided once).
inline CompressFn compress() noexcept {
#ifdef COROCACHE_SHA256_X86
  static const CompressFn chosen = cpu_has_sha() ? &compress_shani : &compress_portable;
  return chosen;
#else
  return &compress_portable;
#endif
}

}  // namespace sha256_impl

class Sha256 {
 public:
  using Digest = std::array<std::uint8_t, 32>;

  /// `portable`: never use the CPU's SHA instructions (for tests comparing both paths).
  explicit Sha256(bool portable = false) noexcept
      : compress_(portable ? &sha256_impl::compress_portable : sha256_impl::compress()) {}

  void update(std::string_view text) noexcept {
    const auto* data = reinterpret_cast<const unsigned char*>(text.data());
    std::size_t size = text.size();
    length_ += size;
    if (buffered_ > 0) {
      const std::size_t take = std::min(size, std::size_t{64} - buffered_);
      std::memcpy(buffer_ + buffered_, data, take);
      buffered_ += take;
      data += take;
      size -= take;
      if (buffered_ < 64) return;
      compress_(state_, buffer_, 1);
      buffered_ = 0;
    }
    if (size >= 64) {
      compress_(state_, data, size / 64);
      data += size / 64 * 64;
      size %= 64;
    }
    if (size > 0) std::memcpy(buffer_, data, size);
    buffered_ = size;
  }

  Digest finish() noexcept {
    const std::uint64_t bit_length = length_ * 8;
    buffer_[buffered_++] = 0x80;
    if (buffered_ > 56) {
      std::memset(buffer_ + buffered_, 0, 64 - buffered_);
      compress_(state_, buffer_, 1);
      buffered_ = 0;
    }
    std::memset(buffer_ + buffered_, 0, 56 - buffered_);
    for (int i = 0; i < 8; ++i) buffer_[56 + i] = static_cast<std::uint8_t>(bit_length >> (56 - 8 * i));
    compress_(state_, buffer_, 1);
    Digest out{};
    for (std::size_t i = 0; i < 8; ++i)
      for (std::size_t b = 0; b < 4; ++b)
        out[i * 4 + b] = static_cast<std::uint8_t>(state_[i] >> (24 - 8 * b));
    return out;
  }

 private:
  sha256_impl::CompressFn compress_;
  std::uint32_t state_[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                             0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  unsigned char buffer_[64] = {};
  std::size_t buffered_ = 0;
  std::uint64_t length_ = 0;
};

/// Appends `digest` to `out` as lower-case hex.
inline void append_hex(std::string& out, const Sha256::Digest& digest) {
  static constexpr char hex[] = "0123456789abcdef";
  for (const std::uint8_t byte : digest) {
    out.push_back(hex[byte >> 4]);
    out.push_back(hex[byte & 0xf]);
  }
}

/// Lower-case hex SHA-256 of `data`.
inline std::string sha256_hex(std::string_view data) {
  Sha256 hasher;
  hasher.update(data);
  std::string out;
  out.reserve(64);
  append_hex(out, hasher.finish());
  return out;
}

}  // namespace corocache::detail
