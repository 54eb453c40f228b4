#include <corocache/detail/json_codec.hpp>
#include <corocache/detail/sha256.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

using namespace corocache::detail;

TEST_CASE("sha256 matches the FIPS 180-4 test vectors", "[sha256]") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000, 'a')) ==
        "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

TEST_CASE("sha256 gives the same digest however the input is split", "[sha256]") {
  const std::string text(200, 'z');
  for (std::size_t cut : {0u, 1u, 55u, 56u, 63u, 64u, 65u, 199u}) {
    Sha256 h;
    h.update(std::string_view(text).substr(0, cut));
    h.update(std::string_view(text).substr(cut));
    Sha256 whole;
    whole.update(text);
    CHECK(h.finish() == whole.finish());
  }
}

TEST_CASE("canonical arguments are compact JSON with object keys in byte order", "[codec]") {
  CHECK(canonical_arguments(std::string("sku-1"), 3) == R"(["sku-1",3])");
  CHECK(canonical_arguments("sku-1", 3) == R"(["sku-1",3])");  // a literal encodes like a string
  std::map<std::string, int> m{{"b", 2}, {"a", 1}};
  CHECK(canonical_arguments(m, std::vector<double>{0.1, 2.0}, true, nullptr) ==
        R"([{"a":1,"b":2},[0.1,2.0],true,null])");
  CHECK(canonical_arguments() == "[]");
  CHECK(canonical_arguments(std::string("caf\xc3\xa9")) == "[\"caf\xc3\xa9\"]");
}

TEST_CASE("different arguments never share an encoding", "[codec]") {
  CHECK(canonical_arguments("a,b") != canonical_arguments("a", "b"));
  CHECK(canonical_arguments(1) != canonical_arguments("1"));
  CHECK(canonical_arguments(1.0) != canonical_arguments(1));
}

TEST_CASE("arguments that are not valid UTF-8 are rejected, not replaced", "[codec]") {
  CHECK_THROWS_AS(canonical_arguments(std::string("\xff")), std::invalid_argument);
  CHECK_THROWS_AS(encode_json(std::string("\xc3")), std::invalid_argument);
}

TEST_CASE("decoding reports the requested type's mismatch as decode_error", "[codec]") {
  CHECK(decode_json<std::vector<int>>("[1,2]") == std::vector<int>{1, 2});
  CHECK_THROWS_AS(decode_json<int>("\"x\""), corocache::decode_error);
  CHECK_THROWS_AS(decode_json<int>("{"), corocache::decode_error);
}
