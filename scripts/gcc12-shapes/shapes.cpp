// Which call shapes g++ 12 compiles correctly around co_await: one case per process, run by
// scripts/gcc12-shapes/run.sh under AddressSanitizer (results: docs/compilers.md).
// Exit 0: the case ran and its result is right; 1: wrong result; 3: it threw; ASan or a
// signal ends the process otherwise.
#define CATCH_CONFIG_RUNNER
#define CATCH_CONFIG_ENABLE_OPTIONAL_STRINGMAKER
#include <corocache/cache.hpp>
#include <corocache/memory/backend.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Cache = corocache::Cache<corocache::MemoryBackend>;
using S = corocache::Scope<corocache::MemoryBackend>;

namespace {

struct Profile {  // an aggregate owning memory
  std::string name;
  int visits = 0;
};
void to_json(nlohmann::json& j, const Profile& p) { j = {{"name", p.name}, {"visits", p.visits}}; }
void from_json(const nlohmann::json& j, Profile& p) {
  j.at("name").get_to(p.name);
  j.at("visits").get_to(p.visits);
}
struct CProfile {  // the same data, not an aggregate
  CProfile(std::string n, int v) : name(std::move(n)), visits(v) {}
  std::string name;
  int visits = 0;
};
void to_json(nlohmann::json& j, const CProfile& p) { j = {{"name", p.name}, {"visits", p.visits}}; }

// The shape of a Duration overload: a plain function taking the expiry.
asio::awaitable<bool> set_for(const S& s, std::string_view k, std::string v, corocache::Duration d) {
  corocache::SetOptions o{.expire = d};
  return s.set_key(k, std::move(v), o);
}

int evaluations = 0;
asio::awaitable<std::optional<std::string>> counted(S s) {
  ++evaluations;
  co_return co_await s.get_key("a");
}
asio::awaitable<bool> if_co_return(S s) {
  if (co_await s.get_key("a")) co_return true;
  co_return false;
}
asio::awaitable<std::string> if_init_co_return(S s) {
  if (auto c = co_await s.get_key("a")) co_return *c;
  co_return "fresh";
}
asio::awaitable<bool> while_co_await(S s) {
  int n = 0;
  while (co_await s.pop_from_queue("q")) ++n;
  co_return n == 2;
}

// Each case ends with `ok` true when the operation did what it should. "a" holds "b".
asio::awaitable<bool> run_case(Cache& cache, S s, std::string_view c) {
  bool ok = false;
  if (c == "agg_indices") {
    co_await s.set_key("k", "v", {.indices = corocache::indices("i")});
    auto l = co_await s.list_keys_by_index("i");
    ok = l.size() == 1;
  } else if (c == "agg_typed_indices") {
    co_await s.set_key("k", "v", corocache::SetOptions{.expire = 10s, .indices = corocache::indices("i")});
    auto l = co_await s.list_keys_by_index("i");
    ok = l.size() == 1;
  } else if (c == "agg_expire_nx") {
    co_await s.set_key("k", "v", {.expire = 10s, .nx = true});
    auto r = co_await s.get_key("k");
    ok = r.has_value();
  } else if (c == "agg_profile_temp") {
    co_await s.set("p", Profile{"Ada", 3});
    auto r = co_await s.get<Profile>("p");
    ok = r && r->name == "Ada";
  } else if (c == "named_options") {
    corocache::SetOptions o{.expire = 10s, .indices = corocache::indices("i")};
    co_await s.set_key("k", "v", o);
    auto l = co_await s.list_keys_by_index("i");
    ok = l.size() == 1;
  } else if (c == "factory_in_indices") {
    co_await s.set_key("k", "v", corocache::in_indices("i"));
    auto l = co_await s.list_keys_by_index("i");
    ok = l.size() == 1;
  } else if (c == "factory_chain") {
    co_await s.set_key("k", "v", corocache::expire_in(10min).with_indices("i", std::string("j")).with_nx());
    auto l = co_await s.list_keys_by_index("j");
    ok = l.size() == 1;
  } else if (c == "factory_chain_max_reads") {
    co_await s.set_key("k", "v", corocache::expire_in(10min).with_max_reads(1));
    auto r1 = co_await s.get_key("k");
    auto r2 = co_await s.get_key("k");
    ok = r1 && !r2;
  } else if (c == "variable_chain") {
    const corocache::SetOptions base{.expire = 10s};
    co_await s.set_key("k", "v", base.with_indices("i"));
    auto l = co_await s.list_keys_by_index("i");
    ok = l.size() == 1;
  } else if (c == "value_init_chain") {
    co_await s.set_key("k", "v", corocache::SetOptions().with_indices("i"));
    auto l = co_await s.list_keys_by_index("i");
    ok = l.size() == 1;
  } else if (c == "braced_empty_chain") {
    co_await s.set_key("k", "v", corocache::SetOptions{}.with_indices("i"));
    auto l = co_await s.list_keys_by_index("i");
    ok = l.size() == 1;
  } else if (c == "duration_overload") {
    co_await s.set_key("k", "v", 10min);
    auto r = co_await s.get_key("k");
    ok = r.has_value();
  } else if (c == "duration_function_shape") {
    co_await set_for(s, "k", "v", 10min);
    auto r = co_await s.get_key("k");
    ok = r.has_value();
  } else if (c == "string_temporaries") {
    co_await s.set_key(std::string("k"), std::string("v") + "w");
    auto r = co_await s.get_key("k");
    ok = r == "vw";
  } else if (c == "ctor_profile_temp") {
    co_await s.set("p", CProfile("Ada", 3));
    auto r = co_await s.get<Profile>("p");
    ok = r && r->name == "Ada";
  } else if (c == "named_profile") {
    const Profile ada{"Ada", 3};
    co_await s.set("p", ada);
    auto r = co_await s.get<Profile>("p");
    ok = r && r->name == "Ada";
  } else if (c == "compare_optional_temp") {
    ok = (co_await s.get_key("a")) == std::optional<std::string>("b");
  } else if (c == "compare_literal") {
    ok = (co_await s.get_key("a")) == "b";
  } else if (c == "value_or") {
    ok = (co_await s.get_key("a")).value_or("") == "b";
  } else if (c == "if_co_await_no_return") {
    if (co_await s.get_key("a")) ok = true;
  } else if (c == "if_co_await_co_return") {
    ok = co_await if_co_return(s);
  } else if (c == "if_init_co_await_co_return") {
    auto r = co_await if_init_co_return(s);
    ok = r == "b";
  } else if (c == "while_co_await") {
    co_await s.push_to_queue("q", "1");
    co_await s.push_to_queue("q", "2");
    ok = co_await while_co_await(s);
  } else if (c == "scope_temp_with_timeout") {
    auto r = co_await s.with_timeout(500ms).get_key("a");
    ok = r == "b";
  } else if (c == "scope_temp_chain") {
    auto r = co_await cache.tenant("t").ns("n").get_key("a");
    ok = r == "b";
  } else if (c == "batch_temp_chain") {
    co_await s.batch().set_key("x", "y").commit();
    auto r = co_await s.get_key("x");
    ok = r == "y";
  } else if (c == "catch_check_co_await") {
    CHECK(co_await counted(s) == std::optional<std::string>("b"));
    ok = evaluations == 1;
  } else if (c == "catch_check_named") {
    auto v = co_await counted(s);
    CHECK(v == std::optional<std::string>("b"));
    ok = evaluations == 1;
  } else {
    std::fprintf(stderr, "unknown case\n");
  }
  co_return ok;
}

std::string chosen;
int exit_code = 2;

}  // namespace

TEST_CASE("shape") {
  asio::io_context io;
  Cache cache{corocache::MemoryBackend{io.get_executor()}, {.prefix = "p"}};
  std::exception_ptr error;
  bool ok = false;
  auto body = [&]() -> asio::awaitable<void> {
    auto s = cache.tenant("t").ns("n");
    co_await s.set_key("a", "b");
    ok = co_await run_case(cache, s, chosen);
  };
  asio::co_spawn(io, body(), [&](std::exception_ptr e) {
    error = e;
    io.stop();
  });
  io.run();
  exit_code = error ? 3 : ok ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <case>\n", argv[0]);
    return 2;
  }
  chosen = argv[1];
  char* catch_args[] = {argv[0]};
  Catch::Session().run(1, catch_args);
  return exit_code;
}
