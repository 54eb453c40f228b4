// Every Lua script touches only keys it declares in KEYS (Redis Cluster's contract; a server
// does not check it for keys in the slot it owns). Here each script runs with a prelude that
// wraps redis.call / redis.pcall and fails on any key argument not in KEYS, driven through
// the functions RedisBackend itself calls (value_ops.hpp, run_script) on a real server, in the
// states that make scripts reach other keys: changed indices, last reads, stale members,
// members in several indices, batches over indexed values.

#include "redis/backend_support.hpp"

#include <corocache/redis/detail/script_runner.hpp>
#include <corocache/redis/detail/value_ops.hpp>

#include <catch2/catch.hpp>

#include <deque>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace script_keys_test {

namespace {

using namespace corocache;
using namespace corocache::test;
namespace rd = corocache::detail::redis;
namespace scripts = rd::scripts;

// Key positions of the commands the scripts use: 1 = the first argument, 0 = all of them.
// A command not listed fails the check (a new command must be classified here).
constexpr std::string_view key_check = R"lua(
local checked_real = redis
local checked_declared = {}
for _, k in ipairs(KEYS) do checked_declared[k] = true end
local checked_spec = {
  GET = 1, SET = 1, HGET = 1, HMGET = 1, HSET = 1, HDEL = 1, HINCRBY = 1, PEXPIRE = 1, PTTL = 1,
  SADD = 1, SREM = 1, SMEMBERS = 1, LPOP = 1, RPOP = 1, LPUSH = 1, RPUSH = 1, TYPE = 1,
  DEL = 0, EXISTS = 0, UNLINK = 0 }
local function checked_keys(cmd, ...)
  local spec = checked_spec[string.upper(cmd)]
  if spec == nil then error('key check: unknown command ' .. cmd) end
  local args = {...}
  local last = spec == 0 and #args or 1
  for n = 1, last do
    if not checked_declared[args[n]] then
      error('key check: undeclared key ' .. tostring(args[n]) .. ' in ' .. cmd)
    end
  end
end
local redis = setmetatable({
  call = function(cmd, ...) checked_keys(cmd, ...); return checked_real.call(cmd, ...) end,
  pcall = function(cmd, ...) checked_keys(cmd, ...); return checked_real.pcall(cmd, ...) end,
}, {__index = checked_real})
)lua";

/// Checked copies of scripts (the key check, then the script's text), and which were used.
class Checked {
 public:
  const rd::Script& operator()(const rd::Script& script) {
    used_.insert(&script);
    for (const auto& [original, copy] : copies_)
      if (original == &script) return *copy;
    texts_.push_back(std::string(key_check) + std::string(script.text));
    copies_.emplace_back(&script, std::make_unique<rd::Script>(texts_.back()));
    return *copies_.back().second;
  }
  const rd::Script& text(std::string_view body) {
    texts_.push_back(std::string(key_check) + std::string(body));
    copies_.emplace_back(nullptr, std::make_unique<rd::Script>(texts_.back()));
    return *copies_.back().second;
  }
  bool used(const rd::Script& script) const { return used_.count(&script) > 0; }

 private:
  std::deque<std::string> texts_;
  std::vector<std::pair<const rd::Script*, std::unique_ptr<rd::Script>>> copies_;
  std::set<const rd::Script*> used_;
};

/// Runs `script` once with exactly `keys` and `args`; an error reply throws server_error.
asio::awaitable<Reply> run_raw(rd::Connection& conn, const rd::Script& script, std::vector<std::string> keys,
                               std::vector<std::string> args) {
  const Deadline by_default;
  const std::string numkeys = std::to_string(keys.size());
  co_return co_await rd::run_script(conn, script, by_default,
                                    [&](rd::Request& r, std::string_view verb, std::string_view id) {
                                      std::vector<std::string_view> argv;
                                      argv.push_back(verb);
                                      argv.push_back(id);
                                      argv.push_back(numkeys);
                                      argv.insert(argv.end(), keys.begin(), keys.end());
                                      argv.insert(argv.end(), args.begin(), args.end());
                                      r.add_argv(argv);
                                    });
}

/// The message of the server_error `call` throws ("" if it does not throw one).
asio::awaitable<std::string> error_of(asio::awaitable<Reply> call) {
  try {
    co_await std::move(call);
  } catch (const boost::system::system_error& e) {
    if (e.code() == errc::server_error) co_return std::string(e.what());
    throw;
  }
  co_return std::string();
}

/// A list of strings, built without a braced list (g++ 12 rejects one in a co_await).
template <class... S>
std::vector<std::string> strings(const S&... items) {
  std::vector<std::string> out;
  (out.emplace_back(items), ...);
  return out;
}

}  // namespace

TEST_CASE("the key check fails a script that touches a key it did not declare", "[redis][scripts]") {
  const auto scope = unique_scope();
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    rd::Connection conn(ex, options_for());
    Checked checked;
    const auto& reads_argv = checked.text("return redis.call('GET', ARGV[1])");
    const auto& pcalls_argv = checked.text("return redis.pcall('HGET', ARGV[1], 'v')");
    const auto& deletes_two = checked.text("return redis.call('DEL', KEYS[1], ARGV[1])");
    const auto& unknown = checked.text("return redis.call('INCR', KEYS[1])");
    const auto& declared = checked.text("return redis.call('SET', KEYS[1], ARGV[1])");
    const std::string key = scope + "v:k";
    const auto e1 = co_await error_of(run_raw(conn, reads_argv, strings(), strings(key)));
    CHECK(e1.find("undeclared key " + key) != std::string::npos);
    const auto e2 = co_await error_of(run_raw(conn, pcalls_argv, strings(), strings(key)));
    CHECK(e2.find("undeclared key " + key) != std::string::npos);
    const auto e3 = co_await error_of(run_raw(conn, deletes_two, strings(key), strings(key + "x")));
    CHECK(e3.find("undeclared key " + key + "x") != std::string::npos);
    const auto e4 = co_await error_of(run_raw(conn, unknown, strings(key), strings()));
    CHECK(e4.find("unknown command") != std::string::npos);
    const auto ok = co_await run_raw(conn, declared, strings(key), strings("v"));
    CHECK(ok.is_status("OK"));
  });
}

TEST_CASE("every script touches only keys it declares", "[redis][scripts]") {
  auto& server = shared_redis_server();
  const auto scope = unique_scope();
  auto v = [&](const std::string& name) { return scope + "v:" + name; };
  auto ix = [&](const std::string& name) { return scope + "i:" + name; };
  auto members = [&](const std::string& index) { return lines(server.run({"SMEMBERS", index})); };
  Checked checked;
  run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    rd::Connection conn(ex, options_for());
    const Deadline none;

    // Stores: a new value, then a change of indices (the old one must be learned), then nx.
    const StoreParams xy = P(60s).index(ix("x")).index(ix("y"));
    const StoreParams yz = P(60s).index(ix("y")).index(ix("z"));
    const bool s1 = co_await rd::store_hashed(conn, checked(scripts::store_hash), v("a"), "1", xy, none);
    CHECK(s1);
    const bool s2 = co_await rd::store_hashed(conn, checked(scripts::store_hash), v("a"), "2", yz, none);
    CHECK(s2);
    CHECK(members(ix("x")).empty());
    CHECK(members(ix("z")) == list(v("a")));
    const StoreParams nx = P(60s).index(ix("x")).nx();
    const bool s3 = co_await rd::store_hashed(conn, checked(scripts::store_hash), v("a"), "3", nx, none);
    CHECK_FALSE(s3);
    // A plain value turned into a hash, as on a cluster: the script asks for the migration
    // probe (a retry marker), then reads it declared.
    server.run({"SET", v("was-plain"), "p"});
    const bool on_cluster = true;
    const bool s3b = co_await rd::store_hashed(conn, checked(scripts::store_hash), v("was-plain"), "h", xy,
                                               none, on_cluster);
    CHECK(s3b);
    CHECK(server.run({"HGET", v("was-plain"), "v"}) == "h");
    CHECK(server.run({"EXISTS", rd::migration_probe_key(v("was-plain"))}) == "0");

    // Reads: the last read of an indexed, read-limited value deletes it from its index.
    const StoreParams twice = P(60s).index(ix("r")).reads(2);
    const bool s4 = co_await rd::store_hashed(conn, checked(scripts::store_hash), v("r"), "r", twice, none);
    CHECK(s4);
    const auto r1 = co_await rd::read_hashed(conn, checked(scripts::read_hash), v("r"), none);
    CHECK(r1 == std::optional<std::string>("r"));
    CHECK(members(ix("r")) == list(v("r")));
    const auto r2 = co_await rd::read_hashed(conn, checked(scripts::read_hash), v("r"), none);
    CHECK(r2 == std::optional<std::string>("r"));
    CHECK(members(ix("r")).empty());
    const auto r3 = co_await rd::read_hashed(conn, checked(scripts::read_hash), v("r"), none);
    CHECK(r3 == std::nullopt);
    server.run({"SET", v("plain"), "p"});
    const auto r4 = co_await rd::read_hashed(conn, checked(scripts::read_hash), v("plain"), none);
    CHECK(r4 == std::optional<std::string>("p"));

    // Expire extends the value's indices; erase leaves them.
    const StoreParams short_lived = P(1s).index(ix("e"));
    const bool s5 =
        co_await rd::store_hashed(conn, checked(scripts::store_hash), v("e"), "e", short_lived, none);
    CHECK(s5);
    const bool x1 = co_await rd::expire_value(conn, checked(scripts::expire), v("e"), 100s, none);
    CHECK(x1);
    CHECK(std::stoll(server.run({"PTTL", ix("e")})) > 90'000);
    const bool x2 = co_await rd::expire_value(conn, checked(scripts::expire), v("none"), 100s, none);
    CHECK_FALSE(x2);
    const bool e1 = co_await rd::erase_value(conn, checked(scripts::erase), v("e"), none);
    CHECK(e1);
    CHECK(server.run({"EXISTS", ix("e")}) == "0");

    // Listing reads each member (a stale one is pruned).
    const StoreParams in_l = P(60s).index(ix("l"));
    const bool s6 = co_await rd::store_hashed(conn, checked(scripts::store_hash), v("l1"), "1", in_l, none);
    const bool s7 = co_await rd::store_hashed(conn, checked(scripts::store_hash), v("l2"), "2", in_l, none);
    CHECK((s6 && s7));
    server.run({"SET", v("l2"), "plain now"});
    const auto listed = co_await rd::list_index(conn, checked(scripts::index_members), ix("l"), none);
    CHECK(listed == list(v("l1")));
    CHECK(members(ix("l")) == list(v("l1")));

    // Erasing an index reaches its members and their other indices.
    const StoreParams no = P(60s).index(ix("n")).index(ix("o"));
    const StoreParams n_only = P(60s).index(ix("n"));
    const bool s8 = co_await rd::store_hashed(conn, checked(scripts::store_hash), v("m1"), "1", no, none);
    const bool s9 = co_await rd::store_hashed(conn, checked(scripts::store_hash), v("m2"), "2", n_only, none);
    CHECK((s8 && s9));
    const auto gone = co_await rd::erase_index_values(conn, checked(scripts::erase_index), ix("n"), none);
    CHECK(gone == 2);
    CHECK(members(ix("o")).empty());
    CHECK(server.run({"EXISTS", v("m1")}) == "0");

    // erase_if: peek, then delete what is unchanged (an indexed value leaves its index).
    const StoreParams in_f = P(60s).index(ix("f"));
    const bool s10 = co_await rd::store_hashed(conn, checked(scripts::store_hash), v("f1"), "f1", in_f, none);
    CHECK(s10);
    server.run({"SET", v("f2"), "f2"});
    const auto peeked =
        co_await run_raw(conn, checked(scripts::peek), strings(v("f1"), v("f2")), strings("100000", "256"));
    REQUIRE(peeked.is_array());
    REQUIRE(peeked.elements.size() == 2);
    CHECK(peeked.elements[0].str == "f1");
    CHECK(peeked.elements[1].str == "f2");
    const std::string f1 = v("f1"), f2 = v("f2");
    const std::vector<std::string_view> victims{f1, f2};
    const std::vector<std::string_view> expected{"f1", "f2"};
    const auto erased =
        co_await rd::erase_if_unchanged(conn, checked(scripts::erase_if_same), victims, expected, none);
    CHECK(erased == 2);
    CHECK(server.run({"EXISTS", ix("f")}) == "0");

    // A batch changing indexed values it does not name the indices of.
    const StoreParams in_b = P(60s).index(ix("b"));
    const StoreParams in_c = P(1s).index(ix("c"));
    const bool s11 = co_await rd::store_hashed(conn, checked(scripts::store_hash), v("b1"), "1", in_b, none);
    const bool s12 = co_await rd::store_hashed(conn, checked(scripts::store_hash), v("b2"), "2", in_c, none);
    CHECK((s11 && s12));
    std::vector<BatchOp> ops;
    ops.emplace_back(batch_op::Store{v("b3"), "3", P(60s).index(ix("d"))});
    ops.emplace_back(batch_op::Store{v("b4"), "4", params()});
    ops.emplace_back(batch_op::Erase{v("b1")});
    ops.emplace_back(batch_op::Expire{v("b2"), 100s});
    ops.emplace_back(batch_op::Push{scope + "q:b", "m"});
    const std::vector<std::vector<std::string>> no_scan;
    co_await rd::commit_batch(conn, checked(scripts::batch), ops, no_scan, none);
    CHECK(server.run({"EXISTS", ix("b")}) == "0");
    CHECK(std::stoll(server.run({"PTTL", ix("c")})) > 90'000);
    CHECK(members(ix("d")) == list(v("b3")));
    CHECK(server.run({"GET", v("b4")}) == "4");
    CHECK(server.run({"LRANGE", scope + "q:b", "0", "-1"}) == "m");

    // A batch invalidating an index whose members are in other indices (learned by two
    // retries: the members, then their indices) and clearing keys found under a prefix.
    const StoreParams in_gh = P(60s).index(ix("g")).index(ix("h"));
    const StoreParams in_g = P(60s).index(ix("g"));
    const StoreParams in_p = P(60s).index(ix("p"));
    const bool s21 = co_await rd::store_hashed(conn, checked(scripts::store_hash), v("g1"), "1", in_gh, none);
    const bool s22 = co_await rd::store_hashed(conn, checked(scripts::store_hash), v("g2"), "2", in_g, none);
    const bool s23 =
        co_await rd::store_hashed(conn, checked(scripts::store_hash), v("f:x:1"), "x", in_p, none);
    CHECK((s21 && s22 && s23));
    server.run({"SET", v("f:x:2"), "y"});
    std::vector<BatchOp> clearing;
    clearing.emplace_back(batch_op::EraseIndex{ix("g")});
    clearing.emplace_back(batch_op::ErasePrefix{v("f:x:")});
    const std::vector<std::vector<std::string>> scanned = {{v("f:x:1"), v("f:x:2")}};
    co_await rd::commit_batch(conn, checked(scripts::batch), clearing, scanned, none);
    CHECK(server.run({"EXISTS", v("g1"), v("g2"), ix("g"), v("f:x:1"), v("f:x:2")}) == "0");
    CHECK(members(ix("h")).empty());
    CHECK(members(ix("p")).empty());

    // Queues and locks: each script with the keys RedisBackend gives it.
    const std::string queue = scope + "q:q", ledger = scope + "p:1:q:q";
    const std::string lock = scope + "l:l", record = scope + "p:2:l:l", record2 = scope + "p:3:l:l";
    server.run({"RPUSH", queue, "m1"});
    const auto popped =
        co_await run_raw(conn, checked(scripts::pop_to_ledger), strings(queue, ledger), strings());
    CHECK(popped.str == "m1");
    const auto returned =
        co_await run_raw(conn, checked(scripts::return_ledger), strings(queue, ledger), strings("60000"));
    CHECK(returned.integer == 1);
    CHECK(server.run({"LRANGE", queue, "0", "-1"}) == "m1");
    const auto taken = co_await run_raw(conn, checked(scripts::lock_attempt), strings(lock, record),
                                        strings("tok", "60000"));
    CHECK(taken.is_status("OK"));
    const auto unlocked = co_await run_raw(conn, checked(scripts::unlock), strings(lock), strings("tok"));
    CHECK(unlocked.integer == 1);
    const auto again = co_await run_raw(conn, checked(scripts::lock_attempt), strings(lock, record2),
                                        strings("tok", "60000"));
    CHECK(again.is_status("OK"));
    const auto released = co_await run_raw(conn, checked(scripts::release_attempt), strings(lock, record2),
                                           strings("tok", "60000"));
    CHECK(released.integer == 1);
    CHECK(server.run({"EXISTS", lock}) == "0");
  });
  for (const rd::Script* script : scripts::all) CHECK(checked.used(*script));
}

}  // namespace script_keys_test
