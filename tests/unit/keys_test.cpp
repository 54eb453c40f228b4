#include <corocache/detail/keys.hpp>
#include <corocache/detail/memo_clears.hpp>
#include <corocache/redis/detail/cluster_slots.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace keys_test {

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

namespace {
/// Every string of up to `max_len` bytes over `alphabet`.
std::vector<std::string> all_strings(std::string_view alphabet, std::size_t max_len) {
  std::vector<std::string> out{""};
  for (std::size_t begin = 0, len = 1; len <= max_len; ++len) {
    const std::size_t end = out.size();
    for (std::size_t i = begin; i < end; ++i)
      for (char c : alphabet) out.push_back(out[i] + c);
    begin = end;
  }
  return out;
}
}  // namespace

TEST_CASE("an index name of any bytes has a key of its own", "[keys][index]") {
  // Every name of up to 3 bytes over the bytes that matter to the key layout (the escape
  // byte, the byte it escapes and its letter, the separators, braces, a NUL), plus longer
  // cases: distinct names give distinct keys, no key holds a '\n' (Redis joins a value's
  // index keys with it), and the hash tag stays the scope's.
  auto names = all_strings(std::string_view("\\n\n:{}a\0", 8), 3);
  for (const char* extra : {"a\\nb", "\\\\nb", "}:v:x", "{other:ns}", "i:active", "~reserved", "a b*?[]"})
    names.emplace_back(extra);
  names.push_back(std::string(300, '\\'));
  names.push_back(std::string(300, '\n'));
  const auto scope = scope_base("p", "t", "n");
  std::set<std::string> keys;
  for (const auto& name : names) {
    const std::string key = make_index_key(scope, name);
    INFO("index name of " << name.size() << " bytes");
    CHECK(key.starts_with(kind_base(scope, Kind::index)));
    CHECK(key.find('\n') == std::string::npos);
    CHECK(corocache::detail::redis::cluster::hashed_part(key) == "t:n");
    keys.insert(key);
  }
  const std::set<std::string> distinct_names(names.begin(), names.end());
  CHECK(keys.size() == distinct_names.size());  // injective over all of them

  // No index key is any other kind's key of any of these names, nor another scope's.
  for (const auto& name : names) {
    for (Kind kind : {Kind::value, Kind::queue, Kind::lock, Kind::memo, Kind::memo_epoch, Kind::pending})
      CHECK(keys.count(make_key(scope, kind, name)) == 0);
    CHECK(keys.count(make_index_key(scope_base("p", "t", "n2"), name)) == 0);
    CHECK(keys.count(make_index_key(scope_base("p", "t2", "n"), name)) == 0);
  }
}

TEST_CASE("an index name that is a valid segment keeps its readable key", "[keys][index]") {
  const auto scope = scope_base("myapp", "acme", "users");
  CHECK(make_index_key(scope, "active") == "myapp:{acme:users}:i:active");
  CHECK(make_index_key(scope, "a:b{c}") == "myapp:{acme:users}:i:a:b{c}");
  CHECK(make_index_key(scope, "") == "myapp:{acme:users}:i:");
  CHECK(make_index_key(scope, "a\nb") == "myapp:{acme:users}:i:a\\nb");
  CHECK(make_index_key(scope, "a\\nb") == "myapp:{acme:users}:i:a\\\\nb");
}

TEST_CASE("a function's memoized results share a prefix no other function's have", "[keys][func_cache]") {
  const auto scope = scope_base("p", "t", "n");
  CHECK(memo_prefix(scope, "price") == "p:{t:n}:f:price:");
  CHECK_FALSE(make_key(scope, Kind::memo, "price2:=[1]").starts_with(memo_prefix(scope, "price")));
  CHECK(make_key(scope, Kind::memo, "price:=[1]").starts_with(memo_prefix(scope, "price")));
  // A clear's token is not one of the results it erases, nor under any function's prefix.
  CHECK(corocache::detail::memo_epoch_key(scope, "price") == "p:{t:n}:fe:price");
  CHECK_FALSE(corocache::detail::memo_epoch_key(scope, "price").starts_with(memo_prefix(scope, "price")));
  CHECK_FALSE(corocache::detail::memo_epoch_key(scope, "price").starts_with(make_key(scope, Kind::memo, "")));
}

}  // namespace keys_test
