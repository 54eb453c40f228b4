#include <corocache/redis/detail/glob.hpp>

#include <catch2/catch.hpp>

#include <string>

namespace redis_glob_escape_test {

using corocache::detail::redis::escape_glob;
using corocache::detail::redis::prefix_match_pattern;

TEST_CASE("glob escaping leaves ordinary bytes alone", "[redis][glob]") {
  CHECK(escape_glob("") == "");
  CHECK(escape_glob("myapp:{acme:users}:v:") == "myapp:{acme:users}:v:");
  const std::string binary("a\0b\n\xff", 5);
  CHECK(escape_glob(binary) == binary);
}

TEST_CASE("glob escaping puts a backslash before each of * ? [ ] and backslash", "[redis][glob]") {
  CHECK(escape_glob("*") == "\\*");
  CHECK(escape_glob("?") == "\\?");
  CHECK(escape_glob("[") == "\\[");
  CHECK(escape_glob("]") == "\\]");
  CHECK(escape_glob("\\") == "\\\\");
  CHECK(escape_glob("a*b?c[d]e\\f") == "a\\*b\\?c\\[d\\]e\\\\f");
  CHECK(escape_glob("**") == "\\*\\*");
  CHECK(escape_glob("[^a-z]") == "\\[^a-z\\]");
}

TEST_CASE("a prefix pattern is the escaped prefix followed by one star", "[redis][glob]") {
  CHECK(prefix_match_pattern("p:{t:n}:v:") == "p:{t:n}:v:*");
  CHECK(prefix_match_pattern("p:{t:n}:v:a*") == "p:{t:n}:v:a\\**");
  CHECK(prefix_match_pattern("") == "*");
}

}  // namespace redis_glob_escape_test
