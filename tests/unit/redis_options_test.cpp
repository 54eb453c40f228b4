// RedisOptions: URL and environment parsing, validation, printing; the password is never echoed.
#include <corocache/redis/detail/tls.hpp>
#include <corocache/redis/options.hpp>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace redis_options_test {

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
  static constexpr const char* names[] = {"REDIS_URL",
                                          "REDIS_HOST",
                                          "REDIS_PORT",
                                          "REDIS_DB",
                                          "REDIS_USER",
                                          "REDIS_PASSWORD",
                                          "USE_REDIS",
                                          "REDIS_TLS",
                                          "REDIS_TLS_CA",
                                          "REDIS_TLS_CA_DIR",
                                          "REDIS_TLS_CERT",
                                          "REDIS_TLS_KEY",
                                          "REDIS_TLS_SERVER_NAME",
                                          "REDIS_TLS_VERIFY"};
  std::vector<std::optional<std::string>> saved_;
};

/// Placeholder files where validate() wants existing paths (their content is never read).
struct TlsFiles {
  std::filesystem::path dir;
  std::string ca, cert, key;
  TlsFiles() {
    char pattern[] = "/tmp/corocache-options-tls-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir = pattern;
    ca = (dir / "ca.pem").string();
    cert = (dir / "client.pem").string();
    key = (dir / "client.key").string();
    for (const auto& f : {ca, cert, key}) std::ofstream(f) << "-----BEGIN TEST-----\n";
  }
  ~TlsFiles() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
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
  CHECK_THAT(error_of([] { RedisOptions::from_url("redis://h?tls_ca=/x"); }), Catch::Contains("rediss"));
  CHECK_THAT(error_of([] { RedisOptions::from_url("rediss://h?tls_verify=maybe"); }),
             Catch::Contains("tls_verify"));
  CHECK_THAT(error_of([] { RedisOptions::from_url("rediss://h?tls_nope=1"); }), Catch::Contains("tls_nope"));
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
  CHECK_THAT(text, Catch::Contains("busy_poll=50us"));
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

TEST_CASE("reply polling: on by default with a 50 us cap, a URL parameter, validated") {
  using namespace std::chrono_literals;
  CHECK(RedisOptions{}.busy_poll == 50us);
  CHECK(RedisOptions::from_url("redis://h?busy_poll_us=0").busy_poll == 0us);
  CHECK(RedisOptions::from_url("redis://h:1/3?busy_poll_us=120&db=4").busy_poll == 120us);
  CHECK_THAT(error_of([] { RedisOptions::from_url("redis://h?busy_poll_us=-5"); }),
             Catch::Contains("busy_poll_us"));
  CHECK_THAT(error_of([] { RedisOptions::from_url("redis://h?busy_poll_us=2000000"); }),
             Catch::Contains("busy_poll_us"));
  RedisOptions bad;
  bad.busy_poll = -1us;
  CHECK_THAT(error_of([&] { bad.validate(); }), Catch::Contains("busy_poll"));
  bad.busy_poll = 2s;
  CHECK_THAT(error_of([&] { bad.validate(); }), Catch::Contains("busy_poll"));
  bad.busy_poll = 1s;
  CHECK(error_of([&] { bad.validate(); }).empty());
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

// --- TLS ---------------------------------------------------------------------------------

TEST_CASE("rediss URLs turn TLS on and carry the TLS fields", "[tls]") {
  TlsFiles f;
  auto o = RedisOptions::from_url("rediss://u:pw@cache.internal:6380/2?tls_ca_file=" + f.ca +
                                  "&tls_cert=" + f.cert + "&tls_key_file=" + f.key +
                                  "&tls_server_name=redis.example&tls_verify=1");
  CHECK(o.tls.enabled);
  CHECK(o.host == "cache.internal");
  CHECK(o.port == 6380);
  CHECK(o.db == 2);
  CHECK(o.tls.ca_file == f.ca);
  CHECK(o.tls.cert_file == f.cert);
  CHECK(o.tls.key_file == f.key);
  CHECK(o.tls.server_name == "redis.example");
  CHECK(o.tls.verify_peer);
  o.validate();

  auto d = RedisOptions::from_url("rediss://h?tls_ca=%2Fetc%2Fca.pem&tls_ca_dir=/etc/certs&tls_verify=0");
  CHECK(d.tls.ca_file == "/etc/ca.pem");
  CHECK(d.tls.ca_dir == "/etc/certs");
  CHECK_FALSE(d.tls.verify_peer);
  CHECK(d.port == 6379);

  CHECK_FALSE(RedisOptions::from_url("redis://h").tls.enabled);
  CHECK(RedisOptions::from_url("rediss://h").tls.verify_peer);  // verification is on by default
  CHECK_FALSE(RedisOptions{}.tls.enabled);
}

TEST_CASE("TLS options are validated before any I/O", "[tls]") {
  TlsFiles f;
  RedisOptions o;
  o.tls.ca_file = f.ca;
  CHECK_THAT(error_of([&] { o.validate(); }), Catch::Contains("TLS is off"));
  o.tls.enabled = true;
  o.validate();
  o.tls.ca_file = (f.dir / "missing-ca.pem").string();
  CHECK_THAT(error_of([&] { o.validate(); }), Catch::Contains("missing-ca.pem"));
  o.tls.ca_file = f.ca;
  o.tls.cert_file = f.cert;
  CHECK_THAT(error_of([&] { o.validate(); }), Catch::Contains("cert_file and key_file"));
  o.tls.key_file = f.key;
  o.validate();
  o.tls.ca_dir = f.ca;  // a file, not a directory
  CHECK_THAT(error_of([&] { o.validate(); }), Catch::Contains("ca_dir"));
  o.tls.ca_dir.clear();
  o.tls.server_name = "bad name";
  CHECK_THAT(error_of([&] { o.validate(); }), Catch::Contains("server_name"));
  o.tls.server_name.clear();
  o.unix_socket = "/tmp/redis.sock";
  CHECK_THAT(error_of([&] { o.validate(); }), Catch::Contains("unix socket"));
}

TEST_CASE("printed options show the TLS fields", "[tls]") {
  TlsFiles f;
  auto o = RedisOptions::from_url("rediss://:secret@h?tls_ca_file=" + f.ca + "&tls_verify=off");
  std::ostringstream os;
  os << o;
  CHECK_THAT(os.str(), Catch::Contains("ca_file=" + f.ca));
  CHECK_THAT(os.str(), Catch::Contains("verify_peer=OFF"));
  CHECK_THAT(os.str(), !Catch::Contains("secret"));
  std::ostringstream plain;
  plain << RedisOptions{};
  CHECK_THAT(plain.str(), Catch::Contains("tls=off"));
}

TEST_CASE("the REDIS_TLS variables apply on top of the URL or the REDIS_* variables", "[tls]") {
  EnvGuard guard;
  EnvGuard::set("REDIS_HOST", "db.internal");
  EnvGuard::set("REDIS_TLS", "yes");
  EnvGuard::set("REDIS_TLS_CA", "/etc/ca.pem");
  EnvGuard::set("REDIS_TLS_CA_DIR", "/etc/cas");
  EnvGuard::set("REDIS_TLS_CERT", "/etc/c.pem");
  EnvGuard::set("REDIS_TLS_KEY", "/etc/c.key");
  EnvGuard::set("REDIS_TLS_SERVER_NAME", "redis.example");
  EnvGuard::set("REDIS_TLS_VERIFY", "0");
  auto o = RedisOptions::from_env();
  CHECK(o.host == "db.internal");
  CHECK(o.tls.enabled);
  CHECK(o.tls.ca_file == "/etc/ca.pem");
  CHECK(o.tls.ca_dir == "/etc/cas");
  CHECK(o.tls.cert_file == "/etc/c.pem");
  CHECK(o.tls.key_file == "/etc/c.key");
  CHECK(o.tls.server_name == "redis.example");
  CHECK_FALSE(o.tls.verify_peer);

  EnvGuard::set("REDIS_URL", "rediss://other:6390");
  ::unsetenv("REDIS_TLS");
  auto u = RedisOptions::from_env();
  CHECK(u.tls.enabled);
  CHECK(u.host == "other");
  CHECK(u.tls.ca_file == "/etc/ca.pem");

  EnvGuard::set("REDIS_TLS_VERIFY", "sometimes");
  CHECK_THAT(error_of([] { RedisOptions::from_env(); }), Catch::Contains("REDIS_TLS_VERIFY"));
}

TEST_CASE("the certificate is checked against server_name, else the host, no SNI for an IP", "[tls]") {
  using corocache::detail::redis::tls_peer;
  corocache::RedisTlsOptions t;
  t.enabled = true;
  auto by_host = tls_peer(t, "cache.internal");
  CHECK(by_host.name == "cache.internal");
  CHECK(by_host.sni == "cache.internal");
  CHECK_FALSE(by_host.name_is_ip);
  CHECK(by_host.verify);
  auto by_ip = tls_peer(t, "127.0.0.1");
  CHECK(by_ip.name_is_ip);
  CHECK(by_ip.sni.empty());
  CHECK(tls_peer(t, "::1").name_is_ip);
  t.server_name = "redis.example";
  auto named = tls_peer(t, "127.0.0.1");
  CHECK(named.name == "redis.example");
  CHECK(named.sni == "redis.example");
  CHECK_FALSE(named.name_is_ip);
  t.verify_peer = false;
  CHECK_FALSE(tls_peer(t, "h").verify);
}

TEST_CASE("a TLS handshake failure: certificates and refusals are rejections, the rest retries", "[tls]") {
  using namespace corocache::detail::redis;
  using corocache::errc;
  corocache::RedisTlsOptions t;
  t.enabled = true;
  const auto peer = tls_peer(t, "localhost");
  auto outcome = [](bool ok, bool timed_out, bool tls_error, std::string reason, long verify_result,
                    std::string verify_error) {
    TlsHandshakeOutcome o;
    o.ok = ok;
    o.timed_out = timed_out;
    o.tls_error = tls_error;
    o.reason = std::move(reason);
    o.verify_result = verify_result;
    o.verify_error = std::move(verify_error);
    return o;
  };
  CHECK_FALSE(classify_tls_handshake(peer, outcome(true, false, false, "", 0, "")));

  const auto bad_cert =
      outcome(false, false, true, "certificate verify failed", 20, "unable to get local issuer certificate");
  auto f = classify_tls_handshake(peer, bad_cert);
  REQUIRE(f);
  CHECK(f->code == errc::tls_failed);
  CHECK_THAT(f->message, Catch::Contains("'localhost'") && Catch::Contains("local issuer"));
  CHECK(is_rejection(f->code));

  const auto refused = outcome(false, false, true, "wrong version number", 0, "");
  f = classify_tls_handshake(peer, refused);
  REQUIRE(f);
  CHECK(f->code == errc::tls_failed);
  CHECK_THAT(f->message, Catch::Contains("wrong version number"));

  f = classify_tls_handshake(peer, outcome(false, true, false, "", 0, ""));
  REQUIRE(f);
  CHECK(f->code == errc::not_connected);
  CHECK_FALSE(is_rejection(f->code));

  f = classify_tls_handshake(peer, outcome(false, false, false, "Connection reset by peer", 0, ""));
  REQUIRE(f);
  CHECK(f->code == errc::not_connected);

  // Verification off: a verification result alone is no failure reason to name.
  t.verify_peer = false;
  f = classify_tls_handshake(tls_peer(t, "localhost"), outcome(false, false, false, "eof", 20, "x"));
  REQUIRE(f);
  CHECK(f->code == errc::not_connected);
}

}  // namespace redis_options_test
