#include <corocache/detail/json_codec.hpp>
#include <corocache/detail/memo_key.hpp>
#include <corocache/detail/sha256.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace codec_test {

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
  for (std::size_t cut : {0u, 1u, 55u, 56u, 63u, 64u, 65u, 127u, 128u, 199u}) {
    Sha256 h;
    h.update(std::string_view(text).substr(0, cut));
    h.update(std::string_view(text).substr(cut));
    Sha256 whole;
    whole.update(text);
    CHECK(h.finish() == whole.finish());
  }
}

TEST_CASE("the CPU's SHA instructions (when present) and the portable code agree", "[sha256]") {
  std::mt19937_64 rng(12);
  for (std::size_t size = 0; size < 300; ++size) {
    std::string data(size, '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    Sha256 chosen;
    Sha256 portable(true);
    chosen.update(data);
    portable.update(data);
    CHECK(chosen.finish() == portable.finish());
  }
  Sha256 portable(true);
  portable.update("abc");
  std::string hex;
  append_hex(hex, portable.finish());
  CHECK(hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("canonical arguments are compact JSON with object keys in byte order", "[codec]") {
  CHECK(canonical_arguments(std::string("sku-1"), 3) == R"(["sku-1",3])");
  CHECK(canonical_arguments("sku-1", 3) == R"(["sku-1",3])");  // a literal encodes like a string
  std::map<std::string, int> m{{"b", 2}, {"a", 1}};
  CHECK(canonical_arguments(m, std::vector<double>{0.1, 2.0}, true, nullptr) ==
        R"([{"a":1,"b":2},[0.1,2.0],true,null])");
  CHECK(canonical_arguments() == "[]");
  CHECK(canonical_arguments(std::string("caf\xc3\xa9")) == "[\"caf\xc3\xa9\"]");
  CHECK(canonical_arguments(std::string("a\"b\\c\n\x01\x7f")) == "[\"a\\\"b\\\\c\\n\\u0001\x7f\"]");
  CHECK(canonical_arguments(-0.0, 1e16, 1e-5, 2.5f) == "[-0.0,1e+16,1e-05,2.5]");
}

TEST_CASE("different arguments never share an encoding", "[codec]") {
  CHECK(canonical_arguments("a,b") != canonical_arguments("a", "b"));
  CHECK(canonical_arguments(1) != canonical_arguments("1"));
  CHECK(canonical_arguments(1.0) != canonical_arguments(1));
}

namespace {

/// The fast path's text, or nullopt when it threw std::invalid_argument.
template <class... Args>
std::optional<std::string> fast(const Args&... args) {
  try {
    return canonical_arguments(args...);
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
}

template <class... Args>
std::optional<std::string> via_json(const Args&... args) {
  try {
    return canonical_arguments_via_json(args...);
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
}

double random_double(std::mt19937_64& rng) {
  const std::uint64_t bits = rng();
  double d = 0;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

}  // namespace

TEST_CASE("the direct encoding equals the json encoding for numbers and bools", "[codec]") {
  std::mt19937_64 rng(7);
  const std::vector<double> special{0.0,
                                    -0.0,
                                    1.0,
                                    -1.0,
                                    0.1,
                                    1e15,
                                    1e16,
                                    123456789012345678.0,
                                    1e-4,
                                    1e-5,
                                    5e-324,
                                    std::numeric_limits<double>::max(),
                                    std::numeric_limits<double>::min(),
                                    -std::numeric_limits<double>::max(),
                                    2.5,
                                    1.0 / 3};
  for (const double d : special) CHECK(fast(d) == via_json(d));
  for (int i = 0; i < 20000; ++i) {
    const double d = random_double(rng);
    if (!std::isfinite(d)) continue;
    CHECK(fast(d) == via_json(d));
    const auto f = static_cast<float>(d);
    if (std::isfinite(f)) CHECK(fast(f) == via_json(f));
    const double scaled = std::ldexp(static_cast<double>(rng() % 1000000), static_cast<int>(rng() % 80) - 40);
    CHECK(fast(scaled, -scaled) == via_json(scaled, -scaled));
  }
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t u = rng() >> (rng() % 64);
    const auto s = static_cast<std::int64_t>(u);
    CHECK(fast(u, s, static_cast<int>(s), static_cast<short>(s), static_cast<unsigned>(u)) ==
          via_json(u, s, static_cast<int>(s), static_cast<short>(s), static_cast<unsigned>(u)));
  }
  CHECK(fast(std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::uint64_t>::max()) ==
        via_json(std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::uint64_t>::max()));
  CHECK(fast(true, false, nullptr) == via_json(true, false, nullptr));
  // Character types go through the json path: whatever it prints, it stays the same.
  CHECK(fast('a', static_cast<unsigned char>(200)) == via_json('a', static_cast<unsigned char>(200)));
}

TEST_CASE("the direct encoding equals the json encoding for strings, valid or not", "[codec]") {
  for (int c = 0; c < 256; ++c) {
    const std::string one(1, static_cast<char>(c));
    CHECK(fast(one) == via_json(one));
  }
  const std::vector<std::string> cases{"",
                                       "plain",
                                       "caf\xc3\xa9",
                                       "\xe2\x82\xac",
                                       "\xf0\x9f\x98\x80",
                                       "\xc0\x80",          // overlong
                                       "\xe0\x80\x80",      // overlong
                                       "\xed\xa0\x80",      // surrogate
                                       "\xf4\x90\x80\x80",  // above U+10FFFF
                                       "\xc3",              // truncated
                                       "\x80",              // lone continuation
                                       "\xef\xbf\xbf",
                                       "\xf4\x8f\xbf\xbf",
                                       std::string("nul\0inside", 10),
                                       "tab\tquote\"back\\slash\b\f\r\n\x1f"};
  for (const auto& s : cases) {
    CHECK(fast(s) == via_json(s));
    CHECK(fast(std::string_view(s)) == via_json(s));
    CHECK(fast(s, 1) == via_json(s, 1));
  }
  std::mt19937_64 rng(11);
  const std::vector<std::string> pieces{
      "a",    "\"",   "\\",           "\n",   "\x01", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
      "\xc3", "\x80", "\xed\xa0\x80", "\x7f", " ",    "\xf5"};
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    const auto n = rng() % 12;
    for (std::uint64_t k = 0; k < n; ++k) s += pieces[rng() % pieces.size()];
    CHECK(fast(s) == via_json(s));
  }
  const char* c_string = "c string";
  CHECK(fast(c_string) == via_json(c_string));
  CHECK(fast("literal", std::vector<std::string>{"x", "\xc3\xa9"}) ==
        via_json("literal", std::vector<std::string>{"x", "\xc3\xa9"}));
}

TEST_CASE("arguments that are not valid UTF-8 are rejected, not replaced", "[codec]") {
  CHECK_THROWS_AS(canonical_arguments(std::string("\xff")), std::invalid_argument);
  CHECK_THROWS_AS(canonical_arguments(std::vector<std::string>{"\xff"}), std::invalid_argument);
  CHECK_THROWS_AS(encode_json(std::string("\xc3")), std::invalid_argument);
}

TEST_CASE("NaN and infinite arguments are rejected, anywhere in an argument", "[codec][nan]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  CHECK_THROWS_AS(canonical_arguments(nan), std::invalid_argument);
  CHECK_THROWS_AS(canonical_arguments(inf), std::invalid_argument);
  CHECK_THROWS_AS(canonical_arguments(-inf), std::invalid_argument);
  CHECK_THROWS_AS(canonical_arguments(std::numeric_limits<float>::infinity()), std::invalid_argument);
  CHECK_THROWS_AS(canonical_arguments("ok", std::vector<double>{1.0, nan}), std::invalid_argument);
  CHECK_THROWS_AS(canonical_arguments(std::map<std::string, double>{{"x", -inf}}), std::invalid_argument);
  CHECK_THROWS_AS(memo_name("f", inf), std::invalid_argument);
  CHECK(canonical_arguments(std::numeric_limits<double>::max()) == "[1.7976931348623157e+308]");
}

TEST_CASE("values with NaN or infinities are rejected, not stored as null", "[codec][nan]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(encode_json(nan), Catch::Contains("cannot encode value as JSON"));
  CHECK_THROWS_AS(encode_json(-inf), std::invalid_argument);
  CHECK_THROWS_AS(encode_json(std::numeric_limits<float>::quiet_NaN()), std::invalid_argument);
  CHECK_THROWS_AS(encode_json(std::vector<std::vector<double>>{{1.0}, {2.0, inf}}), std::invalid_argument);
  CHECK_THROWS_AS(encode_json(std::map<std::string, double>{{"x", nan}}), std::invalid_argument);
  CHECK(encode_json(std::numeric_limits<double>::max()) == "1.7976931348623157e+308");
  CHECK(encode_json(std::vector<double>{-0.5, 1e-300}) == "[-0.5,1e-300]");
}

TEST_CASE("memo names keep short arguments verbatim and hash long ones", "[codec][keys]") {
  // Literals: a change of the key format must fail here (docs/func_cache_keys.md).
  CHECK(memo_name("price", "sku-1", 3) == R"(price:=["sku-1",3])");
  CHECK(memo_name("price", std::string("sku-000123"), 3) == R"(price:=["sku-000123",3])");
  CHECK(memo_name("f") == "f:=[]");
  CHECK(memo_name("f", 0.5, true, nullptr) == "f:=[0.5,true,null]");
  // The boundary: 64 bytes of canonical text stay verbatim, 65 are hashed.
  const std::string at_limit(58, 'y');
  const std::string past_limit(59, 'y');
  CHECK(canonical_arguments(at_limit, 1).size() == memo_verbatim_max);
  CHECK(memo_name("g", at_limit, 1) == "g:=[\"" + at_limit + "\",1]");
  CHECK(memo_name("g", past_limit, 1) ==
        "g:#96ca7c1d8efea71bd6eaba676c29027cf85313c1895540ce46fab57a1b5790dd");
  CHECK(memo_name("report", std::string(70, 'x')) ==
        "report:#cce1e1eaed9843931308442788ac8af6a38f3d2662e28ee37962268d45b1d815");
  CHECK(memo_name("g", past_limit, 1) == "g:#" + sha256_hex(canonical_arguments(past_limit, 1)));
  CHECK(memo_name("g", std::string(60, 'a')).view().substr(0, 3) == "g:=");
  CHECK(memo_name("g", std::string(61, 'a')).view().substr(0, 3) == "g:#");
  // Longer function names than keys allow still work (the name then lives on the heap).
  CHECK(memo_name(std::string(300, 'n'), 1).str() == std::string(300, 'n') + ":=[1]");
  // Argument text starting like the hashed form stays verbatim, behind its own marker.
  CHECK(memo_name("g", "#") == R"(g:=["#"])");
}

TEST_CASE("decoding reports the requested type's mismatch as decode_error", "[codec]") {
  CHECK(decode_json<std::vector<int>>("[1,2]") == std::vector<int>{1, 2});
  CHECK_THROWS_AS(decode_json<int>("\"x\""), corocache::decode_error);
  CHECK_THROWS_AS(decode_json<int>("{"), corocache::decode_error);
  CHECK_THROWS_AS(decode_json<double>("null"), corocache::decode_error);
  CHECK_THROWS_AS(decode_json<double>("1e400"), corocache::decode_error);
  CHECK_THROWS_AS(decode_json<std::string>("\"\xff\""), corocache::decode_error);
  CHECK_THROWS_AS(decode_json<bool>("1"), corocache::decode_error);
}

TEST_CASE("a number the requested type does not hold is a decode_error, never another value",
          "[codec][strict]") {
  using corocache::decode_error;
  // The user audit's cases: nlohmann's lax conversion gave 44, 4294967295, 705032704, INT_MIN
  // (undefined behaviour), 1, 1 and inf.
  CHECK_THROWS_AS(decode_json<std::uint8_t>("300"), decode_error);
  CHECK_THROWS_AS(decode_json<std::uint32_t>("-1"), decode_error);
  CHECK_THROWS_AS(decode_json<int>("5000000000"), decode_error);
  CHECK_THROWS_AS(decode_json<int>("3e10"), decode_error);
  CHECK_THROWS_AS(decode_json<int>("1.5"), decode_error);
  CHECK_THROWS_AS(decode_json<int>("true"), decode_error);
  CHECK_THROWS_AS(decode_json<float>("1234567890123456789012345678901234567890"), decode_error);
  CHECK_THROWS_AS(decode_json<std::vector<float>>("[1e39]"), decode_error);
  // A result type changed from double to int, or from int to unsigned.
  CHECK_THROWS_AS(decode_json<int>("2.75"), decode_error);
  CHECK_THROWS_AS(decode_json<unsigned long long>("-5"), decode_error);
  // Integers: never from a float, even a whole one, nor a bool; just past each limit.
  CHECK_THROWS_AS(decode_json<int>("2.0"), decode_error);
  CHECK_THROWS_AS(decode_json<int>("1e2"), decode_error);
  CHECK_THROWS_AS(decode_json<std::int64_t>("false"), decode_error);
  CHECK_THROWS_AS(decode_json<std::uint8_t>("256"), decode_error);
  CHECK_THROWS_AS(decode_json<std::int8_t>("-129"), decode_error);
  CHECK_THROWS_AS(decode_json<std::int8_t>("128"), decode_error);
  CHECK_THROWS_AS(decode_json<std::int16_t>("32768"), decode_error);
  CHECK_THROWS_AS(decode_json<int>("2147483648"), decode_error);
  CHECK_THROWS_AS(decode_json<int>("-2147483649"), decode_error);
  CHECK_THROWS_AS(decode_json<std::int64_t>("9223372036854775808"), decode_error);
  CHECK_THROWS_AS(decode_json<std::int64_t>("-9223372036854775809"), decode_error);
  CHECK_THROWS_AS(decode_json<std::uint64_t>("18446744073709551616"), decode_error);
  CHECK_THROWS_AS(decode_json<unsigned>("-0.0"), decode_error);
  // bool only from true/false; floating types only from finite numbers in range.
  CHECK_THROWS_AS(decode_json<bool>("0"), decode_error);
  CHECK_THROWS_AS(decode_json<bool>("1.0"), decode_error);
  CHECK_THROWS_AS(decode_json<double>("true"), decode_error);
  CHECK_THROWS_AS(decode_json<double>("\"1\""), decode_error);
  CHECK_THROWS_AS(decode_json<float>("3.4028236e38"), decode_error);
  CHECK_THROWS_AS(decode_json<float>("-1e39"), decode_error);
  CHECK_THROWS_AS(decode_json<double>("-1e309"), decode_error);
  // The same inside containers.
  CHECK_THROWS_AS((decode_json<std::vector<std::uint8_t>>("[1,300]")), decode_error);
  CHECK_THROWS_AS((decode_json<std::vector<std::vector<int>>>("[[1],[2.5]]")), decode_error);
  CHECK_THROWS_AS(decode_json<std::optional<int>>("1.5"), decode_error);
  CHECK_THROWS_AS((decode_json<std::map<std::string, int>>(R"({"a":1,"b":1e10})")), decode_error);
  CHECK_THROWS_AS((decode_json<std::unordered_map<std::string, std::uint16_t>>(R"({"x":70000})")),
                  decode_error);
  CHECK_THROWS_AS((decode_json<std::map<int, int>>("[[1,2.5]]")), decode_error);
  CHECK_THROWS_AS((decode_json<std::map<int, int>>("[[1,2,3]]")), decode_error);
  CHECK_THROWS_AS((decode_json<std::array<int, 2>>("[1]")), decode_error);
  CHECK_THROWS_AS((decode_json<std::array<int, 2>>("[1,2,3]")), decode_error);
  CHECK_THROWS_AS((decode_json<std::pair<int, bool>>("[1,1]")), decode_error);
  CHECK_THROWS_AS((decode_json<std::tuple<int, double, bool>>("[1,-1e39,true,4]")), decode_error);
  CHECK_THROWS_AS(decode_json<std::set<unsigned>>("[-1]"), decode_error);
  CHECK_THROWS_AS(decode_json<std::unordered_set<int>>("{}"), decode_error);
  // The message names the type and the reason.
  CHECK_THROWS_WITH(decode_json<std::uint8_t>("300"), Catch::Contains("std::uint8_t") &&
                                                          Catch::Contains("300") &&
                                                          Catch::Contains("out of range"));
  CHECK_THROWS_WITH(decode_json<int>("1.5"),
                    Catch::Contains("std::int32_t") && Catch::Contains("not an integer"));
  CHECK_THROWS_WITH(decode_json<bool>("1"),
                    Catch::Contains("bool") && Catch::Contains("expected true or false"));
  CHECK_THROWS_WITH(decode_json<std::vector<float>>("[1e39]"),
                    Catch::Contains("float") && Catch::Contains("out of range"));
}

namespace {
/// A user-defined type: its own from_json decides (here nlohmann's lax get<int>).
struct Lenient {
  int n = 0;
};
void from_json(const nlohmann::json& j, Lenient& v) { v.n = j.at("n").get<int>(); }
}  // namespace

TEST_CASE("values each type holds decode exactly, to the limits", "[codec][strict]") {
  CHECK(decode_json<std::uint8_t>("255") == 255);
  CHECK(decode_json<std::uint8_t>("0") == 0);
  CHECK(decode_json<std::int8_t>("-128") == -128);
  CHECK(decode_json<std::int8_t>("127") == 127);
  CHECK(decode_json<std::int16_t>("-32768") == -32768);
  CHECK(decode_json<int>("2147483647") == std::numeric_limits<int>::max());
  CHECK(decode_json<int>("-2147483648") == std::numeric_limits<int>::min());
  CHECK(decode_json<std::uint32_t>("4294967295") == std::numeric_limits<std::uint32_t>::max());
  CHECK(decode_json<std::int64_t>("-9223372036854775808") == std::numeric_limits<std::int64_t>::min());
  CHECK(decode_json<std::int64_t>("9223372036854775807") == std::numeric_limits<std::int64_t>::max());
  CHECK(decode_json<std::uint64_t>("18446744073709551615") == std::numeric_limits<std::uint64_t>::max());
  CHECK(decode_json<int>("0") == 0);
  CHECK(decode_json<int>("-0") == 0);
  CHECK(decode_json<unsigned>("-0") == 0);
  CHECK(decode_json<bool>("true"));
  CHECK_FALSE(decode_json<bool>("false"));
  // Floating types: integers too, and anything finite within range (rounded).
  CHECK(decode_json<float>("1e38") == 1e38f);
  CHECK(decode_json<float>("-1e38") == -1e38f);
  CHECK(decode_json<float>("3.4028234663852886e+38") == std::numeric_limits<float>::max());
  CHECK(decode_json<float>("1e-50") == 0.0f);
  CHECK(decode_json<float>("0.1") == 0.1f);
  CHECK(decode_json<double>("3") == 3.0);
  CHECK(decode_json<double>("-7") == -7.0);
  CHECK(decode_json<double>("18446744073709551615") == 18446744073709551615.0);
  CHECK(decode_json<double>("-9223372036854775808") == -9223372036854775808.0);
  CHECK(decode_json<double>("1234567890123456789012345678901234567890") ==
        1234567890123456789012345678901234567890.0);
  CHECK(decode_json<double>("1.7976931348623157e308") == std::numeric_limits<double>::max());
  CHECK(decode_json<double>("0") == 0.0);
  CHECK(std::signbit(decode_json<double>("-0.0")));
  CHECK(decode_json<float>("0") == 0.0f);
  CHECK(std::signbit(decode_json<float>("-0.0")));
  CHECK(decode_json<double>("2.75") == 2.75);
  // Containers, nested.
  CHECK(decode_json<std::vector<int>>("[1,-2,3]") == std::vector<int>{1, -2, 3});
  CHECK(decode_json<std::vector<std::vector<int>>>("[[1],[],[2,3]]") ==
        std::vector<std::vector<int>>{{1}, {}, {2, 3}});
  CHECK(decode_json<std::vector<bool>>("[true,false]") == std::vector<bool>{true, false});
  CHECK(decode_json<std::optional<int>>("null") == std::nullopt);
  CHECK(decode_json<std::optional<int>>("5") == std::optional<int>(5));
  CHECK(decode_json<std::vector<std::optional<int>>>("[null,7]") ==
        std::vector<std::optional<int>>{std::nullopt, 7});
  CHECK(decode_json<std::map<std::string, double>>(R"({"a":1,"b":2.5})") ==
        std::map<std::string, double>{{"a", 1.0}, {"b", 2.5}});
  CHECK(decode_json<std::unordered_map<std::string, std::vector<std::uint8_t>>>(R"({"k":[0,255]})") ==
        std::unordered_map<std::string, std::vector<std::uint8_t>>{{"k", {0, 255}}});
  CHECK(decode_json<std::set<unsigned>>("[3,1,3]") == std::set<unsigned>{1, 3});
  CHECK(decode_json<std::unordered_set<int>>("[-1]") == std::unordered_set<int>{-1});
  CHECK((decode_json<std::array<int, 3>>("[1,2,3]") == std::array<int, 3>{1, 2, 3}));
  CHECK((decode_json<std::pair<std::string, float>>(R"(["x",1e38])") ==
         std::pair<std::string, float>{"x", 1e38f}));
  CHECK((decode_json<std::tuple<int, double, bool>>("[1,2,true]") ==
         std::tuple<int, double, bool>{1, 2.0, true}));
  // What encode_json writes reads back the same.
  const std::map<int, std::vector<double>> by_int{{-1, {0.5}}, {2, {}}};
  CHECK(decode_json<std::map<int, std::vector<double>>>(encode_json(by_int)) == by_int);
  const std::tuple<std::uint8_t, std::int64_t, std::string> t{255, std::numeric_limits<std::int64_t>::min(),
                                                              "s"};
  CHECK(decode_json<std::tuple<std::uint8_t, std::int64_t, std::string>>(encode_json(t)) == t);
  // User-defined types go through their own from_json, also inside a container.
  CHECK(decode_json<Lenient>(R"({"n":4})").n == 4);
  CHECK(decode_json<std::vector<Lenient>>(R"([{"n":1},{"n":2}])").at(1).n == 2);
  CHECK_THROWS_AS(decode_json<Lenient>(R"({"m":4})"), corocache::decode_error);
}

namespace {
/// The json path on its own: a parse, then the strict conversion.
template <class T>
std::optional<T> json_path(const std::string& text) {
  try {
    return from_json_strict<T>(nlohmann::json::parse(text));
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  } catch (const corocache::decode_error&) {
    return std::nullopt;
  }
}
template <class T>
std::optional<T> decoded(const std::string& text) {
  try {
    return decode_json<T>(text);
  } catch (const corocache::decode_error&) {
    return std::nullopt;
  }
}
template <class T>
void check_same_bits(const std::string& text) {
  const auto a = decoded<T>(text);
  const auto b = json_path<T>(text);
  INFO(text);
  REQUIRE(a.has_value() == b.has_value());
  if (a) CHECK(std::memcmp(&*a, &*b, sizeof(T)) == 0);
}
}  // namespace

TEST_CASE("the direct decoding gives what the json decoding gives", "[codec]") {
  const std::vector<std::string> numbers{"0",
                                         "-0",
                                         "12",
                                         "-12",
                                         "12.5",
                                         "-0.0",
                                         "01",
                                         "1.",
                                         ".5",
                                         "+1",
                                         " 1",
                                         "1 ",
                                         "0x10",
                                         "1e",
                                         "1E+2",
                                         "true",
                                         "\"1\"",
                                         "null",
                                         "",
                                         "3000000000",
                                         "18446744073709551615",
                                         "-9223372036854775808",
                                         "1e16",
                                         "1e400",
                                         "1e-400",
                                         "3e10",
                                         "1e39",
                                         "-1e39",
                                         "2.0",
                                         "-1",
                                         "255",
                                         "256",
                                         "-128",
                                         "-129",
                                         "5000000000",
                                         "18446744073709551616",
                                         "-9223372036854775809",
                                         "1234567890123456789012345678901234567890"};
  for (const auto& t : numbers) {
    check_same_bits<double>(t);
    check_same_bits<float>(t);
    check_same_bits<int>(t);
    check_same_bits<std::int64_t>(t);
    check_same_bits<std::uint64_t>(t);
    check_same_bits<unsigned>(t);
    check_same_bits<std::uint8_t>(t);
    check_same_bits<std::int8_t>(t);
    check_same_bits<bool>(t);
  }
  CHECK_THROWS_AS(decode_json<float>("1e300"), corocache::decode_error);
  std::mt19937_64 rng(5);
  for (int i = 0; i < 20000; ++i) {
    const double d = random_double(rng);
    if (!std::isfinite(d)) continue;
    const std::string text = encode_json(d);
    check_same_bits<double>(text);
    check_same_bits<float>(text);
    check_same_bits<int>(text);
    const std::string integer = encode_json(static_cast<std::int64_t>(rng()) >> (rng() % 64));
    check_same_bits<std::int64_t>(integer);
    check_same_bits<int>(integer);
    check_same_bits<std::uint32_t>(integer);
    check_same_bits<std::int16_t>(integer);
    check_same_bits<float>(integer);
  }
  const std::vector<std::string> strings{"\"\"",        "\"plain\"", "\"caf\xc3\xa9\"", "\"a\\nb\"",
                                         "\"\\u0041\"", "\"\xff\"",  "\"tab\there\"",   "\"unterminated",
                                         "\"a\"b\"",    "x",         "\"\xed\xa0\x80\""};
  for (const auto& t : strings) {
    INFO(t);
    CHECK(decoded<std::string>(t) == json_path<std::string>(t));
  }
}

}  // namespace codec_test
