#include <corocache/redis/detail/scripts.hpp>
#include <corocache/redis/detail/sha1.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

namespace redis_sha1_test {

using corocache::detail::redis::sha1_hex;

namespace {
std::string hex(std::string_view data) {
  const auto h = sha1_hex(data);
  return {h.begin(), h.end()};
}
}  // namespace

// Computed by the compiler: a mistake in constexpr evaluation fails the build.
static_assert(sha1_hex("abc")[0] == 'a' && sha1_hex("abc")[39] == 'd');

TEST_CASE("sha1 matches the FIPS 180 test vectors", "[redis][sha1]") {
  CHECK(hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  CHECK(hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  CHECK(hex(std::string(1'000'000, 'a')) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST_CASE("sha1 pads correctly around the 64-byte block boundaries", "[redis][sha1]") {
  // Lengths where the padding fits, just fails to fit, or fills a block exactly.
  CHECK(hex(std::string(55, 'x')) == "cef734ba81a024479e09eb5a75b6ddae62e6abf1");
  CHECK(hex(std::string(56, 'x')) == "901305367c259952f4e7af8323f480d59f81335b");
  CHECK(hex(std::string(63, 'x')) == "0ddc4e0cccd9a12850deb5abb0853a4425559fec");
  CHECK(hex(std::string(64, 'x')) == "bb2fa3ee7afb9f54c6dfb5d021f14b1ffe40c163");
  CHECK(hex(std::string(65, 'x')) == "78c741ddc482e4cdf8c474a0876347a0905b6233");
  CHECK(hex(std::string(119, 'x')) == "4300320394f7ee239bcdce7d3b8bcee173a0cd5c");
  CHECK(hex(std::string(120, 'x')) == "ceb2821639c4b6dcb10bce0e522ca2e608ce056d");
}

TEST_CASE("sha1 hashes every byte value, including NUL and high bytes", "[redis][sha1]") {
  std::string all;
  for (int round = 0; round < 3; ++round)
    for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  CHECK(hex(all) == "ac2a264c8ec1f4232a40854e8239bc3a697ab1d2");
}

TEST_CASE("a script's compile-time name is the sha1 of its text", "[redis][sha1]") {
  using namespace corocache::detail::redis;
  const auto& s = scripts::unlock;
  CHECK(s.sha_view() == hex(s.text));
  CHECK(scripts::store_hash.sha_view() != scripts::read_hash.sha_view());
}

}  // namespace redis_sha1_test
