// RedisOptions: URL and environment parsing, validation, printing; the password is never echoed.
#include <corocache/redis_options.hpp>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>

using corocache::RedisOptions;

namespace {

/// The message of the std::invalid_argument `f` throws ("" if it throws nothing).
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return {};
}

/// Sets environment variables for one scope and restores them after.
class EnvGuard {
 public:
  EnvGuard() {
    for (const char* n : names) {
      const char* v = std::getenv(n);
      saved_.push_back(v ? std::optional<std::string>(v) : std::nullopt);
      ::unsetenv(n);
    }
  }
  ~EnvGuard() {
    for (std::size_t i = 0; i < std::size(names); ++i) {
      if (saved_[i])
        ::setenv(names[i], saved_[i]->c_str(), 1);
      else
        ::unsetenv(names[i]);
    }
  }
  static void set(const char* n, const char* v) { ::setenv(n, v, 1); }

 private:
  static constexpr const char* names[] = {"REDIS_URL",  "REDIS_HOST",     "REDIS_PORT", "REDIS_DB",
                                          "REDIS_USER", "REDIS_PASSWORD", "USE_REDIS"};
  std::vector<std::optional<std::string>> saved_;
};

}  // namespace

TEST_CASE("a redis URL gives host, port, db and credentials") {
  auto o = RedisOptions::from_url("redis://alice:p%40ss@cache.example:6380/3");
  CHECK(o.host == "cache.example");
  CHECK(o.port == 6380);
  CHECK(o.db == 3);
  CHECK(o.user == "alice");
  CHECK(o.password == "p@ss");
  CHECK(o.unix_socket.empty());
  o.validate();
}

TEST_CASE("a redis URL without optional parts keeps the defaults") {
  auto o = RedisOptions::from_url("redis://localhost");
  CHECK(o.host == "localhost");
  CHECK(o.port == 6379);
  CHECK(o.db == 0);
  CHECK(o.user.empty());
  CHECK(o.password.empty());
  CHECK(RedisOptions::from_url("redis://h:1/").db == 0);
  CHECK(RedisOptions::from_url("redis://h?db=5").db == 5);
}

TEST_CASE("a password without a user is the default user's password") {
  auto a = RedisOptions::from_url("redis://:secret@h");
  CHECK(a.user.empty());
  CHECK(a.password == "secret");
  auto b = RedisOptions::from_url("redis://secret@h");
  CHECK(b.user.empty());
  CHECK(b.password == "secret");
}

TEST_CASE("an IPv6 host is written in brackets") {
  auto o = RedisOptions::from_url("redis://[::1]:7000/2");
  CHECK(o.host == "::1");
  CHECK(o.port == 7000);
  CHECK(o.db == 2);
}

TEST_CASE("a unix URL gives the socket path and db") {
  auto o = RedisOptions::from_url("unix:///var/run/redis.sock?db=4");
  CHECK(o.unix_socket == "/var/run/redis.sock");
  CHECK(o.db == 4);
  auto p = RedisOptions::from_url("unix://:pw@/tmp/r.sock");
  CHECK(p.unix_socket == "/tmp/r.sock");
  CHECK(p.password == "pw");
}

TEST_CASE("malformed URLs are rejected with a clear message") {
  CHECK_THAT(error_of([] { RedisOptions::from_url("localhost:6379"); }), Catch::Contains("redis://"));
  CHECK_THAT(error_of([] { RedisOptions::from_url("http://h"); }), Catch::Contains("scheme"));
  CHECK_THAT(error_of([] { RedisOptions::from_url("rediss://h"); }), Catch::Contains("TLS"));
  CHECK_THAT(error_of([] { RedisOptions::from_url("redis://h:0"); }), Catch::Contains("port"));
  CHECK_THAT(error_of([] { RedisOptions::from_url("redis://h:70000"); }), Catch::Contains("port"));
  CHECK_THAT(error_of([] { RedisOptions::from_url("redis://h:abc"); }), Catch::Contains("port"));
  CHECK_THAT(error_of([] { RedisOptions::from_url("redis://h:"); }), Catch::Contains("port"));
  CHECK_THAT(error_of([] { RedisOptions::from_url("redis://h/x"); }), Catch::Contains("db"));
  CHECK_THAT(error_of([] { RedisOptions::from_url("redis://h/-1"); }), Catch::Contains("db"));
  CHECK_THAT(error_of([] { RedisOptions::from_url("redis://:6379"); }), Catch::Contains("host"));
  CHECK_THAT(error_of([] { RedisOptions::from_url("redis://h?foo=1"); }), Catch::Contains("query parameter"));
  CHECK_THAT(error_of([] { RedisOptions::from_url("unix://relative.sock"); }), Catch::Contains("absolute"));
  CHECK_THAT(error_of([] { RedisOptions::from_url("redis://[::1"); }), Catch::Contains("["));
  CHECK_THAT(error_of([] { RedisOptions::from_url("redis://h\n"); }), Catch::Contains("control"));
}

TEST_CASE("no error message ever contains the password") {
  const std::string pw = "Sup3rS3cretPw";
  for (std::string url :
       {"redis://u:" + pw + "@h:badport", "redis://u:" + pw + "@h/notadb", "redis://u:" + pw + "@:1",
        "redis://u:" + pw + "%zz@h", "redis://u:" + pw + "@h?x=" + pw, "http://u:" + pw + "@h",
        "redis://u:" + pw + "@h:" + pw}) {
    const auto message = error_of([&] { RedisOptions::from_url(url); });
    INFO(message);
    CHECK_FALSE(message.empty());
    CHECK(message.find(pw) == std::string::npos);
  }
}

TEST_CASE("validate names the bad field") {
  auto bad = [](auto mutate) {
    RedisOptions o;
    mutate(o);
    return error_of([&] { o.validate(); });
  };
  CHECK(bad([](RedisOptions&) {}).empty());
  CHECK_THAT(bad([](RedisOptions& o) { o.host.clear(); }), Catch::Contains("host"));
  CHECK_THAT(bad([](RedisOptions& o) { o.port = 0; }), Catch::Contains("port"));
  CHECK_THAT(bad([](RedisOptions& o) { o.db = -1; }), Catch::Contains("db"));
  CHECK_THAT(bad([](RedisOptions& o) { o.connect_timeout = corocache::Duration::zero(); }),
             Catch::Contains("connect_timeout"));
  CHECK_THAT(bad([](RedisOptions& o) { o.request_timeout = corocache::Duration(-1); }),
             Catch::Contains("request_timeout"));
  CHECK_THAT(bad([](RedisOptions& o) { o.reconnect_min = corocache::Duration::zero(); }),
             Catch::Contains("reconnect_min"));
  CHECK_THAT(bad([](RedisOptions& o) { o.reconnect_max = std::chrono::milliseconds(1); }),
             Catch::Contains("reconnect_max"));
  CHECK_THAT(bad([](RedisOptions& o) { o.max_pending = 0; }), Catch::Contains("max_pending"));
  CHECK_THAT(bad([](RedisOptions& o) { o.busy_poll = std::chrono::microseconds(-1); }),
             Catch::Contains("busy_poll"));
  CHECK_THAT(bad([](RedisOptions& o) { o.max_reply_bytes = 10; }), Catch::Contains("max_reply_bytes"));
  CHECK_THAT(bad([](RedisOptions& o) { o.max_reply_elements = 0; }), Catch::Contains("max_reply_elements"));
  CHECK_THAT(bad([](RedisOptions& o) { o.user = "bob"; }), Catch::Contains("password"));
  CHECK(bad([](RedisOptions& o) {
          o.host.clear();
          o.port = 0;
          o.unix_socket = "/tmp/x.sock";
        }).empty());
}

TEST_CASE("printed options show every field but mask the password") {
  RedisOptions o;
  o.password = "hunter2";
  o.user = "alice";
  std::ostringstream os;
  os << o;
  const auto text = os.str();
  CHECK(text.find("hunter2") == std::string::npos);
  CHECK_THAT(text, Catch::Contains("password=***"));
  CHECK_THAT(text, Catch::Contains("host=127.0.0.1"));
  CHECK_THAT(text, Catch::Contains("port=6379"));
  CHECK_THAT(text, Catch::Contains("user=alice"));
  CHECK_THAT(text, Catch::Contains("request_timeout=2000ms"));
  CHECK_THAT(text, Catch::Contains("busy_poll=0us"));
  std::ostringstream none;
  none << RedisOptions{};
  CHECK_THAT(none.str(), Catch::Contains("password=(none)"));
}

TEST_CASE("options come from REDIS_URL, else from the REDIS_* variables") {
  EnvGuard guard;
  auto d = RedisOptions::from_env();
  CHECK(d.host == "127.0.0.1");
  CHECK(d.port == 6379);
  CHECK_FALSE(RedisOptions::enabled_in_env());

  EnvGuard::set("REDIS_HOST", "db.internal");
  EnvGuard::set("REDIS_PORT", "6390");
  EnvGuard::set("REDIS_DB", "7");
  EnvGuard::set("REDIS_USER", "svc");
  EnvGuard::set("REDIS_PASSWORD", "pw");
  auto e = RedisOptions::from_env();
  CHECK(e.host == "db.internal");
  CHECK(e.port == 6390);
  CHECK(e.db == 7);
  CHECK(e.user == "svc");
  CHECK(e.password == "pw");

  EnvGuard::set("REDIS_URL", "redis://other:1234/1");
  auto u = RedisOptions::from_env();
  CHECK(u.host == "other");
  CHECK(u.port == 1234);
  CHECK(u.db == 1);
  CHECK(RedisOptions::enabled_in_env());
}

TEST_CASE("a bad REDIS_PORT names the variable") {
  EnvGuard guard;
  EnvGuard::set("REDIS_PORT", "sixty");
  CHECK_THAT(error_of([] { RedisOptions::from_env(); }), Catch::Contains("REDIS_PORT"));
}

TEST_CASE("USE_REDIS switches Redis on with 1, true, yes or on") {
  EnvGuard guard;
  for (const char* v : {"1", "true", "TRUE", "yes", "On"}) {
    EnvGuard::set("USE_REDIS", v);
    CHECK(RedisOptions::enabled_in_env());
  }
  for (const char* v : {"0", "false", "no", "off", ""}) {
    EnvGuard::set("USE_REDIS", v);
    CHECK_FALSE(RedisOptions::enabled_in_env());
  }
}

TEST_CASE("stall detection and the health check have defaults, URL parameters and validation") {
  using namespace std::chrono_literals;
  RedisOptions d;
  CHECK(d.stall_timeout == 3s);
  CHECK(d.health_check_interval == 2s);
  const auto o = RedisOptions::from_url("redis://h:1/2?stall_timeout_ms=750&health_check_interval_ms=0");
  CHECK(o.db == 2);
  CHECK(o.stall_timeout == 750ms);
  CHECK(o.health_check_interval == 0ms);
  CHECK_THAT(error_of([] { RedisOptions::from_url("redis://h?stall_timeout_ms=-1"); }),
             Catch::Contains("stall_timeout_ms"));
  CHECK_THAT(error_of([] { RedisOptions::from_url("redis://h?health_check_interval_ms=x"); }),
             Catch::Contains("health_check_interval_ms"));
  RedisOptions bad = d;
  bad.stall_timeout = corocache::Duration(-1);
  CHECK_THAT(error_of([&] { bad.validate(); }), Catch::Contains("stall_timeout"));
  bad = d;
  bad.health_check_interval = corocache::Duration(-1);
  CHECK_THAT(error_of([&] { bad.validate(); }), Catch::Contains("health_check_interval"));
  RedisOptions off = d;
  off.stall_timeout = off.health_check_interval = corocache::Duration::zero();
  CHECK(error_of([&] { off.validate(); }).empty());
  std::ostringstream printed;
  printed << o;
  CHECK_THAT(printed.str(), Catch::Contains("stall_timeout=750ms"));
  CHECK_THAT(printed.str(), Catch::Contains("health_check_interval=0ms"));
}
