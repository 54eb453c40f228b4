// Cluster, Sentinel and TLS options: URL and environment parsing, validation before any I/O,
// printing; passwords are never echoed.
#include <corocache/redis/backend.hpp>
#include <corocache/redis/topology_options.hpp>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace redis_topology_options_test {

using namespace corocache;

namespace {

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return {};
}

template <class T>
std::string printed(const T& v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

/// Clears the variables these options read for one scope and restores them after.
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
  static constexpr const char* names[] = {"REDIS_CLUSTER_URL",
                                          "REDIS_CLUSTER_NODES",
                                          "REDIS_SENTINEL_URL",
                                          "REDIS_SENTINELS",
                                          "REDIS_SENTINEL_MASTER",
                                          "REDIS_SENTINEL_USER",
                                          "REDIS_SENTINEL_PASSWORD",
                                          "REDIS_USER",
                                          "REDIS_PASSWORD",
                                          "REDIS_DB",
                                          "REDIS_TLS",
                                          "REDIS_TLS_CA",
                                          "REDIS_TLS_CA_DIR",
                                          "REDIS_TLS_CERT",
                                          "REDIS_TLS_KEY",
                                          "REDIS_TLS_SERVER_NAME",
                                          "REDIS_TLS_VERIFY"};
  std::vector<std::optional<std::string>> saved_;
};

/// Files that exist, for TLS validation.
struct TlsFiles {
  std::filesystem::path dir;
  std::string ca, cert, key;
  TlsFiles() {
    // A directory of its own: ctest may run several of these cases at once.
    char pattern[] = "/tmp/corocache-topology-options-XXXXXX";
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

TEST_CASE("a cluster URL gives the seeds, credentials and parameters") {
  auto o = RedisClusterOptions::from_url(
      "redis+cluster://"
      "alice:p%40ss@10.0.0.1:7000,10.0.0.2,[::1]:7002?max_redirects=3&request_timeout_ms=500");
  CHECK(o.seeds == std::vector<RedisAddress>{{"10.0.0.1", 7000}, {"10.0.0.2", 6379}, {"::1", 7002}});
  CHECK(o.user == "alice");
  CHECK(o.password == "p@ss");
  CHECK(o.max_redirects == 3);
  CHECK(o.request_timeout == std::chrono::milliseconds(500));
  CHECK_FALSE(o.tls.enabled);
  o.validate();
  // Defaults.
  const RedisClusterOptions d;
  CHECK(d.max_redirects == 5);
  CHECK(d.refresh_interval == std::chrono::seconds(30));
  CHECK(d.tls.verify_peer);
  CHECK(RedisClusterOptions::from_url("redis+cluster://h?refresh_interval_ms=0").refresh_interval.count() ==
        0);
}

TEST_CASE("malformed cluster URLs are refused with a message that names the problem") {
  CHECK(error_of([] { RedisClusterOptions::from_url("redis://h:1"); }).find("redis+cluster://") !=
        std::string::npos);
  CHECK(error_of([] { RedisClusterOptions::from_url("redis+cluster://"); }).find("no seed") !=
        std::string::npos);
  CHECK(error_of([] { RedisClusterOptions::from_url("redis+cluster://h:1,,h:2"); }).find("empty entry") !=
        std::string::npos);
  CHECK(error_of([] { RedisClusterOptions::from_url("redis+cluster://h:0"); }).find("port") !=
        std::string::npos);
  CHECK(error_of([] { RedisClusterOptions::from_url("redis+cluster://h:99999"); }).find("port") !=
        std::string::npos);
  CHECK(error_of([] { RedisClusterOptions::from_url("redis+cluster://::1:7000"); }).find("brackets") !=
        std::string::npos);
  CHECK(error_of([] { RedisClusterOptions::from_url("redis+cluster://h:1/3"); }).find("no path") !=
        std::string::npos);
  CHECK(error_of([] { RedisClusterOptions::from_url("redis+cluster://h?bogus=1"); }).find("'bogus'") !=
        std::string::npos);
  CHECK(error_of([] { RedisClusterOptions::from_url("redis+cluster://h?tls_ca_file=/x"); }).find("rediss") !=
        std::string::npos);
  CHECK(error_of([] {
          RedisClusterOptions::from_url("redis+cluster://h?max_redirects=-1");
        }).find("max_redirects") != std::string::npos);
  CHECK(error_of([] { RedisClusterOptions::from_url("redis+cluster://h\n:1"); }).find("control") !=
        std::string::npos);
}

TEST_CASE("rediss+cluster turns TLS on and takes the TLS parameters") {
  TlsFiles f;
  auto o = RedisClusterOptions::from_url("rediss+cluster://h1:7000,h2:7001?tls_ca_file=" + f.ca +
                                         "&tls_cert_file=" + f.cert + "&tls_key_file=" + f.key +
                                         "&tls_server_name=redis.internal");
  CHECK(o.tls.enabled);
  CHECK(o.tls.ca_file == f.ca);
  CHECK(o.tls.cert_file == f.cert);
  CHECK(o.tls.key_file == f.key);
  CHECK(o.tls.server_name == "redis.internal");
  CHECK(o.tls.verify_peer);
  o.validate();
  CHECK_FALSE(RedisClusterOptions::from_url("rediss+cluster://h?tls_verify=0").tls.verify_peer);
  CHECK(error_of([] {
          RedisClusterOptions::from_url("rediss+cluster://h?tls_verify=maybe");
        }).find("tls_verify") != std::string::npos);
}

TEST_CASE("a sentinel URL gives the sentinels, the master name, the db and credentials") {
  auto o = RedisSentinelOptions::from_url(
      "redis+sentinel://:secret@10.0.0.1,10.0.0.2:26380/my%20master/"
      "2?sentinel_password=s%26p&connect_timeout_ms=300");
  CHECK(o.sentinels == std::vector<RedisAddress>{{"10.0.0.1", 26379}, {"10.0.0.2", 26380}});
  CHECK(o.master_name == "my master");
  CHECK(o.db == 2);
  CHECK(o.user.empty());
  CHECK(o.password == "secret");
  CHECK(o.sentinel_password == "s&p");
  CHECK(o.connect_timeout == std::chrono::milliseconds(300));
  CHECK(error_of([&] { o.validate(); }).find("master_name contains a space") != std::string::npos);
  o.master_name = "mymaster";
  o.validate();
  auto plain = RedisSentinelOptions::from_url("redis+sentinel://s1:26379/mymaster");
  CHECK(plain.db == 0);
  CHECK(plain.password.empty());
  CHECK(RedisSentinelOptions::from_url("redis+sentinel://s1/m?db=4").db == 4);
  CHECK(RedisSentinelOptions::from_url("rediss+sentinel://s1/m").tls.enabled);
}

TEST_CASE("malformed sentinel URLs are refused with a message that names the problem") {
  CHECK(error_of([] { RedisSentinelOptions::from_url("redis+sentinel://s1:26379"); }).find("no master") !=
        std::string::npos);
  CHECK(error_of([] { RedisSentinelOptions::from_url("redis+sentinel://s1:26379/"); }).find("no master") !=
        std::string::npos);
  CHECK(error_of([] { RedisSentinelOptions::from_url("redis+sentinel:///m"); }).find("no sentinel") !=
        std::string::npos);
  CHECK(error_of([] { RedisSentinelOptions::from_url("redis+sentinel://s/m/x"); }).find("db") !=
        std::string::npos);
  CHECK(error_of([] { RedisSentinelOptions::from_url("redis+cluster://s/m"); }).find("redis+sentinel://") !=
        std::string::npos);
  CHECK(error_of([] {
          RedisSentinelOptions::from_url("redis+sentinel://s/m?sentinel_password");
        }).find("'='") != std::string::npos);
}

TEST_CASE("passwords never appear in messages or printed options") {
  const std::string secret = "Sup3rSecret";
  auto c = RedisClusterOptions::from_url("redis+cluster://bob:" + secret + "@h1:7000");
  CHECK(printed(c).find(secret) == std::string::npos);
  CHECK(printed(c).find("password=***") != std::string::npos);
  auto s =
      RedisSentinelOptions::from_url("redis+sentinel://:" + secret + "@s1/m?sentinel_password=" + secret);
  CHECK(printed(s).find(secret) == std::string::npos);
  CHECK(printed(s).find("sentinel_password=***") != std::string::npos);
  // Errors raised while parsing a URL with a password do not echo it.
  for (const auto& url :
       {"redis+cluster://u:" + secret + "@h:0", "redis+cluster://u:" + secret + "@h?x=" + secret,
        "redis+cluster://u:" + secret + "%zz@h", "redis+sentinel://u:" + secret + "@s/m/" + secret,
        "redis+sentinel://u:" + secret + "@s"}) {
    const auto msg = error_of([&] {
      if (url.starts_with("redis+cluster"))
        RedisClusterOptions::from_url(url);
      else
        RedisSentinelOptions::from_url(url);
    });
    INFO(msg);
    CHECK_FALSE(msg.empty());
    CHECK(msg.find(secret) == std::string::npos);
  }
  // A user without a password is refused, naming no secret.
  RedisSentinelOptions o = RedisSentinelOptions::from_url("redis+sentinel://s/m");
  o.sentinel_user = "watcher";
  CHECK(error_of([&] { o.validate(); }).find("sentinel_password") != std::string::npos);
}

TEST_CASE("TLS options are validated before any connection") {
  TlsFiles f;
  RedisTlsOptions t;
  t.validate();  // off and empty: fine
  t.ca_file = f.ca;
  CHECK(error_of([&] { t.validate(); }).find("TLS is off") != std::string::npos);
  t.enabled = true;
  t.validate();
  t.cert_file = f.cert;
  CHECK(error_of([&] { t.validate(); }).find("cert_file and key_file") != std::string::npos);
  t.key_file = f.key;
  t.validate();
  t.ca_file = (f.dir / "missing.pem").string();
  CHECK(error_of([&] { t.validate(); }).find("missing.pem") != std::string::npos);
  t.ca_file = f.ca;
  t.ca_dir = f.ca;  // a file, not a directory
  CHECK(error_of([&] { t.validate(); }).find("ca_dir") != std::string::npos);
  t.ca_dir = f.dir.string();
  t.validate();
  t.server_name = "bad name";
  CHECK(error_of([&] { t.validate(); }).find("server_name") != std::string::npos);
  t.server_name = "redis.internal";
  CHECK(printed(t).find("verify_peer=on") != std::string::npos);
  t.verify_peer = false;
  CHECK(printed(t).find("verify_peer=OFF") != std::string::npos);
  CHECK(printed(RedisTlsOptions{}) == "tls=off");
}

TEST_CASE("rediss:// gives a single-server config with its TLS fields") {
  TlsFiles f;
  auto o = RedisOptions::from_url("rediss://:pw@localhost:6380/2?tls_ca_file=" + f.ca + "&db=3");
  CHECK(o.tls.enabled);
  CHECK(o.tls.ca_file == f.ca);
  CHECK(o.host == "localhost");
  CHECK(o.port == 6380);
  CHECK(o.db == 3);
  CHECK(o.password == "pw");
  o.validate();
  CHECK(error_of([] { RedisOptions::from_url("redis://h?tls_ca_file=/x"); }).find("rediss") !=
        std::string::npos);
  CHECK_FALSE(error_of([] { RedisOptions::from_url("rediss://h?nope=1"); }).empty());
}

TEST_CASE("cluster options from the environment: a URL, or a node list, with TLS on top") {
  EnvGuard guard;
  CHECK(error_of([] { RedisClusterOptions::from_env(); }).find("REDIS_CLUSTER_NODES") != std::string::npos);
  EnvGuard::set("REDIS_CLUSTER_NODES", "n1:7000,n2:7001");
  EnvGuard::set("REDIS_PASSWORD", "pw");
  auto o = RedisClusterOptions::from_env();
  CHECK(o.seeds == std::vector<RedisAddress>{{"n1", 7000}, {"n2", 7001}});
  CHECK(o.password == "pw");
  CHECK_FALSE(o.tls.enabled);
  EnvGuard::set("REDIS_TLS", "yes");
  EnvGuard::set("REDIS_TLS_SERVER_NAME", "cache.internal");
  EnvGuard::set("REDIS_TLS_VERIFY", "0");
  o = RedisClusterOptions::from_env();
  CHECK(o.tls.enabled);
  CHECK(o.tls.server_name == "cache.internal");
  CHECK_FALSE(o.tls.verify_peer);
  EnvGuard::set("REDIS_CLUSTER_URL", "redis+cluster://u1:7000");
  o = RedisClusterOptions::from_env();
  CHECK(o.seeds == std::vector<RedisAddress>{{"u1", 7000}});
  CHECK(o.password.empty());
  CHECK(o.tls.enabled);  // REDIS_TLS applies on top of the URL
  EnvGuard::set("REDIS_TLS", "perhaps");
  CHECK(error_of([] { RedisClusterOptions::from_env(); }).find("REDIS_TLS") != std::string::npos);
}

TEST_CASE("sentinel options from the environment") {
  EnvGuard guard;
  EnvGuard::set("REDIS_SENTINELS", "s1,s2:26380");
  CHECK(error_of([] { RedisSentinelOptions::from_env(); }).find("REDIS_SENTINEL_MASTER") !=
        std::string::npos);
  EnvGuard::set("REDIS_SENTINEL_MASTER", "mymaster");
  EnvGuard::set("REDIS_DB", "5");
  EnvGuard::set("REDIS_SENTINEL_PASSWORD", "sp");
  auto o = RedisSentinelOptions::from_env();
  CHECK(o.sentinels == std::vector<RedisAddress>{{"s1", 26379}, {"s2", 26380}});
  CHECK(o.master_name == "mymaster");
  CHECK(o.db == 5);
  CHECK(o.sentinel_password == "sp");
  o.validate();
  EnvGuard::set("REDIS_SENTINEL_URL", "redis+sentinel://x:1/other");
  CHECK(RedisSentinelOptions::from_env().master_name == "other");
}

TEST_CASE("validation of hand-built options names the field") {
  RedisClusterOptions c;
  CHECK(error_of([&] { c.validate(); }).find("at least one seed") != std::string::npos);
  c.seeds = {{"h", 7000}};
  c.validate();
  c.seeds = {{"h", 0}};
  CHECK(error_of([&] { c.validate(); }).find("port") != std::string::npos);
  c.seeds = {{"a,b", 1}};
  CHECK(error_of([&] { c.validate(); }).find("host") != std::string::npos);
  c.seeds = {{"h", 1}};
  c.retry_max = std::chrono::milliseconds(1);
  CHECK(error_of([&] { c.validate(); }).find("retry_max") != std::string::npos);
  c.retry_max = std::chrono::milliseconds(200);
  c.request_timeout = Duration::zero();
  CHECK(error_of([&] { c.validate(); }).find("request_timeout") != std::string::npos);
  c.request_timeout = std::chrono::seconds(1);
  c.user = "u";
  CHECK(error_of([&] { c.validate(); }).find("ACL user needs a password") != std::string::npos);

  RedisSentinelOptions s;
  s.sentinels = {{"s", 26379}};
  CHECK(error_of([&] { s.validate(); }).find("master_name") != std::string::npos);
  s.master_name = "m";
  s.db = -1;
  CHECK(error_of([&] { s.validate(); }).find("db") != std::string::npos);
  s.db = 0;
  s.validate();
}

TEST_CASE("cluster and sentinel options tune every node connection with RedisOptions' fields and rules") {
  using namespace std::chrono_literals;
  const RedisOptions single;
  const RedisConnectionTuning defaults;
  CHECK(defaults.max_pending == single.max_pending);
  CHECK(defaults.reconnect_min == single.reconnect_min);
  CHECK(defaults.stall_timeout == single.stall_timeout);
  CHECK(defaults.busy_poll == single.busy_poll);
  CHECK(defaults.max_blocking_connections == single.max_blocking_connections);

  const auto c = RedisClusterOptions::from_url(
      "redis+cluster://h:7000?stall_timeout_ms=0&health_check_interval_ms=500&busy_poll_us=0");
  CHECK(c.connection.stall_timeout == Duration::zero());
  CHECK(c.connection.health_check_interval == 500ms);
  CHECK(c.connection.busy_poll == std::chrono::microseconds::zero());
  const auto s = RedisSentinelOptions::from_url("redis+sentinel://s/m?stall_timeout_ms=9000");
  CHECK(s.connection.stall_timeout == 9s);
  CHECK(error_of([] {
          RedisClusterOptions::from_url("redis+cluster://h?busy_poll_us=2000000");
        }).find("busy_poll_us") != std::string::npos);

  RedisClusterOptions bad_cluster = c;
  bad_cluster.connection.max_pending = 0;
  CHECK(error_of([&] { bad_cluster.validate(); }) ==
        "corocache::RedisClusterOptions: connection.max_pending must be > 0");
  RedisSentinelOptions bad_sentinel = s;
  bad_sentinel.connection.reconnect_max = 1ms;
  CHECK(error_of([&] { bad_sentinel.validate(); }).find("connection.reconnect_max") != std::string::npos);

  // Each node's connections take them (the backend reports the first node's options).
  boost::asio::io_context io;  // never run: nothing connects
  RedisClusterOptions tuned = c;
  tuned.connection.max_pending = 7;
  tuned.connection.max_blocking_connections = 3;
  tuned.connection.max_reply_bytes = 4096;
  CHECK(printed(tuned).find("max_pending=7") != std::string::npos);
  const RedisBackend cluster(io.get_executor(), tuned);
  CHECK(cluster.options().max_pending == 7);
  CHECK(cluster.options().max_blocking_connections == 3);
  CHECK(cluster.options().max_reply_bytes == 4096);
  CHECK(cluster.options().stall_timeout == Duration::zero());
  RedisSentinelOptions sentinel_tuned = s;
  sentinel_tuned.connection.max_pending = 9;
  const RedisBackend primary(io.get_executor(), sentinel_tuned);
  CHECK(primary.options().max_pending == 9);
  CHECK(primary.options().stall_timeout == 9s);
}

}  // namespace redis_topology_options_test
