#include <corocache/detail/keys.hpp>

#include <catch2/catch.hpp>

using namespace corocache::detail;

TEST_CASE("a scope key has the documented readable layout", "[keys]") {
  const auto scope = scope_base("myapp", "acme", "users");
  CHECK(scope == "myapp:{acme:users}:");
  CHECK(make_key(scope, Kind::value, "u1") == "myapp:{acme:users}:v:u1");
  CHECK(make_key(scope, Kind::index, "active") == "myapp:{acme:users}:i:active");
  CHECK(kind_base(scope, Kind::lock) == "myapp:{acme:users}:l:");
}

TEST_CASE("every key of a scope starts with its tenant and cache bases", "[keys]") {
  const auto key = make_key(scope_base("p", "t", "n"), Kind::queue, "x");
  CHECK(key.starts_with(tenant_base("p", "t")));
  CHECK(key.starts_with(cache_base("p")));
  CHECK_FALSE(key.starts_with(tenant_base("p", "t2")));
}

TEST_CASE("a user key can never alias another kind of key", "[keys]") {
  const auto scope = scope_base("p", "t", "n");
  // A value named like the tail of an index key still lands in the value key space.
  CHECK(make_key(scope, Kind::value, "i:active") != make_key(scope, Kind::index, "active"));
  CHECK(make_key(scope, Kind::value, "x") != make_key(scope, Kind::memo, "x"));
}

TEST_CASE("names with ':' or binary bytes stay inside their scope", "[keys]") {
  const std::string binary("a\0b:}{*", 7);
  const auto key = make_key(scope_base("p", "t", "n"), Kind::value, binary);
  CHECK(key.size() == std::string("p:{t:n}:v:").size() + binary.size());
  CHECK(key.ends_with(binary));
}

TEST_CASE("a segment rejects what would break key isolation", "[keys]") {
  for (const char* bad : {"", "a:b", "a{b", "a}b", "a*", "a?", "a[b", "a]b", "a\\b", "a b", "~global"}) {
    INFO("segment: '" << bad << "'");
    CHECK_THROWS_AS(validate_segment("tenant", bad), corocache::invalid_name);
  }
  CHECK_THROWS_AS(validate_segment("tenant", std::string("a\nb")), std::invalid_argument);
  CHECK_THROWS_AS(validate_segment("tenant", std::string(129, 'a')), std::invalid_argument);
  CHECK_NOTHROW(validate_segment("tenant", "acme-corp_1.eu@x"));
  CHECK_NOTHROW(validate_segment("tenant", "caf\xc3\xa9"));
}

TEST_CASE("an invalid-name error says which name and why", "[keys]") {
  try {
    validate_segment("namespace", "a:b");
    FAIL("no exception");
  } catch (const corocache::invalid_name& e) {
    CHECK_THAT(e.what(), Catch::Contains("namespace") && Catch::Contains("a:b") && Catch::Contains("':'"));
  }
}
