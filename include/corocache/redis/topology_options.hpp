#pragma once
// Configuration of the Redis deployments beyond a single server: Redis Cluster
// (RedisClusterOptions, `redis+cluster://`) and Sentinel (RedisSentinelOptions,
// `redis+sentinel://`), each with TLS (RedisTlsOptions, defined in redis/options.hpp with
// the single server's `rediss://`). Plain aggregates with a documented default per field, parsing from a
// URL or the environment, and validate() that throws std::invalid_argument naming the field
// before any network I/O. Passwords never appear in a message or a printed config.
// docs/redis_topology.md describes how the backends use them.

#include <corocache/backend.hpp>
#include <corocache/redis/options.hpp>

#include <charconv>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace corocache {

/// host:port of a seed node or a sentinel.
struct RedisAddress {
  std::string host;
  std::uint16_t port = 0;
  friend bool operator==(const RedisAddress&, const RedisAddress&) = default;
  friend std::ostream& operator<<(std::ostream& os, const RedisAddress& a) {
    return a.host.find(':') != std::string::npos ? os << '[' << a.host << "]:" << a.port
                                                 : os << a.host << ':' << a.port;
  }
};

/// How each data-node connection of a Cluster or Sentinel backend behaves: the RedisOptions
/// fields of the same names, meanings and defaults (README, "Configuration"). Host,
/// credentials, TLS and timeouts come from the deployment's own fields.
struct RedisConnectionTuning {
  Duration reconnect_min = RedisOptions{}.reconnect_min;
  Duration reconnect_max = RedisOptions{}.reconnect_max;
  std::size_t max_pending = RedisOptions{}.max_pending;
  std::chrono::microseconds busy_poll = RedisOptions{}.busy_poll;
  std::size_t max_reply_bytes = RedisOptions{}.max_reply_bytes;
  std::size_t max_reply_elements = RedisOptions{}.max_reply_elements;
  Duration stall_timeout = RedisOptions{}.stall_timeout;
  Duration health_check_interval = RedisOptions{}.health_check_interval;
  std::size_t max_blocking_connections = RedisOptions{}.max_blocking_connections;

  /// Sets these fields of `o`.
  void apply_to(RedisOptions& o) const {
    o.reconnect_min = reconnect_min;
    o.reconnect_max = reconnect_max;
    o.max_pending = max_pending;
    o.busy_poll = busy_poll;
    o.max_reply_bytes = max_reply_bytes;
    o.max_reply_elements = max_reply_elements;
    o.stall_timeout = stall_timeout;
    o.health_check_interval = health_check_interval;
    o.max_blocking_connections = max_blocking_connections;
  }

  /// RedisOptions' rules for these fields; std::invalid_argument names the field as
  /// `<type>: connection.<field> ...`.
  void validate(std::string_view type) const {
    RedisOptions probe;  // defaults elsewhere: only these fields can fail
    apply_to(probe);
    try {
      probe.validate();
    } catch (const std::invalid_argument& e) {
      constexpr std::string_view own = "corocache::RedisOptions: ";
      std::string_view why = e.what();
      if (why.substr(0, own.size()) == own) why.remove_prefix(own.size());
      throw std::invalid_argument("corocache::" + std::string(type) + ": connection." + std::string(why));
    }
  }

  friend std::ostream& operator<<(std::ostream& os, const RedisConnectionTuning& t) {
    return os << "connection={reconnect_min=" << t.reconnect_min.count()
              << "ms, reconnect_max=" << t.reconnect_max.count() << "ms, max_pending=" << t.max_pending
              << ", busy_poll=" << t.busy_poll.count() << "us, max_reply_bytes=" << t.max_reply_bytes
              << ", max_reply_elements=" << t.max_reply_elements
              << ", stall_timeout=" << t.stall_timeout.count()
              << "ms, health_check_interval=" << t.health_check_interval.count()
              << "ms, max_blocking_connections=" << t.max_blocking_connections << "}";
  }
};

/// Redis Cluster: seeds to discover the slot map from, credentials shared by every node.
struct RedisClusterOptions {
  /// Nodes asked for the slot map (CLUSTER SHARDS); any subset of the cluster, primaries
  /// or replicas. More than one, so discovery survives a seed being down.
  std::vector<RedisAddress> seeds;
  /// ACL user and password of every node (empty: default user / no AUTH). Never printed.
  std::string user;
  std::string password;
  RedisTlsOptions tls;
  /// Limit of one connect attempt to a node (resolution, TCP, TLS handshake, AUTH).
  Duration connect_timeout = std::chrono::seconds(2);
  /// Default deadline of a request, redirects and retries included.
  Duration request_timeout = std::chrono::seconds(2);
  /// MOVED + ASK redirects one request may follow.
  int max_redirects = 5;
  /// Periodic slot map refresh (besides the refresh after every MOVED); 0: only on redirects.
  Duration refresh_interval = std::chrono::seconds(30);
  /// Backoff of TRYAGAIN / CLUSTERDOWN retries: first wait, doubling up to retry_max, always
  /// within the request's deadline.
  Duration retry_min = std::chrono::milliseconds(10);
  Duration retry_max = std::chrono::milliseconds(200);
  /// Every node connection's backoff, bounds, stall and health checks, reply polling and
  /// blocking pool. URL: stall_timeout_ms, health_check_interval_ms, busy_poll_us.
  RedisConnectionTuning connection;

  /// `redis+cluster://[[user]:password@]h1[:p1],h2[:p2]...[?params]` (port 6379 by default);
  /// `rediss+cluster://` turns TLS on. Params: max_redirects, connect_timeout_ms,
  /// request_timeout_ms, refresh_interval_ms, the connection ones (stall_timeout_ms,
  /// health_check_interval_ms, busy_poll_us) and the TLS ones (tls_ca_file, tls_ca_dir,
  /// tls_cert_file, tls_key_file, tls_server_name, tls_verify=0|1; rediss only).
  static RedisClusterOptions from_url(std::string_view url);
  /// REDIS_CLUSTER_URL if set; else REDIS_CLUSTER_NODES (h1:p1,h2:p2), REDIS_USER,
  /// REDIS_PASSWORD; TLS from RedisTlsOptions::from_env on top.
  static RedisClusterOptions from_env();
  void validate() const;
  friend std::ostream& operator<<(std::ostream& os, const RedisClusterOptions& o);
};

/// Sentinel: where the sentinels are and which master they watch.
struct RedisSentinelOptions {
  /// Sentinels to ask (port 26379 by default); more are learnt from SENTINEL SENTINELS.
  std::vector<RedisAddress> sentinels;
  /// The name the sentinels monitor (`sentinel monitor <name> ...`).
  std::string master_name;
  /// Database SELECTed on the primary.
  int db = 0;
  /// ACL user / password of the data nodes (primary and replicas). Never printed.
  std::string user;
  std::string password;
  /// Credentials of the sentinels themselves (sentinels have their own ACL). Never printed.
  std::string sentinel_user;
  std::string sentinel_password;
  /// TLS to the sentinels and the data nodes.
  RedisTlsOptions tls;
  Duration connect_timeout = std::chrono::seconds(2);
  Duration request_timeout = std::chrono::seconds(2);
  /// Backoff between rounds of asking every sentinel, and after a named primary whose ROLE
  /// is not master (a failover in progress): first wait, doubling up to retry_max.
  Duration retry_min = std::chrono::milliseconds(50);
  Duration retry_max = std::chrono::seconds(1);
  /// The data-node connections' backoff, bounds, stall and health checks, reply polling
  /// and blocking pool. URL: stall_timeout_ms, health_check_interval_ms, busy_poll_us.
  RedisConnectionTuning connection;

  /// `redis+sentinel://[[user]:password@]s1[:p1],s2[:p2]/master_name[/db][?params]`;
  /// `rediss+sentinel://` turns TLS on. Params: sentinel_user, sentinel_password (both
  /// percent-encoded), connect_timeout_ms, request_timeout_ms, db, the connection ones
  /// (stall_timeout_ms, health_check_interval_ms, busy_poll_us) and the TLS ones.
  static RedisSentinelOptions from_url(std::string_view url);
  /// REDIS_SENTINEL_URL if set; else REDIS_SENTINELS (s1:p1,s2:p2), REDIS_SENTINEL_MASTER,
  /// REDIS_DB, REDIS_USER, REDIS_PASSWORD, REDIS_SENTINEL_USER, REDIS_SENTINEL_PASSWORD; TLS
  /// from RedisTlsOptions::from_env on top.
  static RedisSentinelOptions from_env();
  void validate() const;
  friend std::ostream& operator<<(std::ostream& os, const RedisSentinelOptions& o);
};

namespace detail::topology_url {

[[noreturn]] inline void fail(std::string_view type, std::string_view what) {
  throw std::invalid_argument("corocache::" + std::string(type) + ": " + std::string(what));
}

inline std::string_view env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string_view(v) : std::string_view{};
}

inline bool is_true(std::string_view v) {
  std::string s(v);
  for (auto& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return s == "1" || s == "true" || s == "yes" || s == "on";
}
inline bool is_false(std::string_view v) {
  std::string s(v);
  for (auto& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return s == "0" || s == "false" || s == "no" || s == "off";
}

inline long long number(std::string_view type, std::string_view s, long long lo, long long hi,
                        std::string_view what) {
  long long v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v < lo || v > hi)
    fail(type,
         std::string(what) + " must be a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}

inline std::string decode(std::string_view type, std::string_view s, std::string_view field) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    const int hi = i + 2 < s.size() ? detail::redis_url::hex_value(s[i + 1]) : -1;
    const int lo = i + 2 < s.size() ? detail::redis_url::hex_value(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) fail(type, "bad percent-encoding in the URL's " + std::string(field));
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

/// "h1:p1,h2,[v6]:p3" -> addresses (default_port where none is given).
inline std::vector<RedisAddress> addresses(std::string_view type, std::string_view list,
                                           std::uint16_t default_port, std::string_view what) {
  std::vector<RedisAddress> out;
  while (true) {
    const auto comma = list.find(',');
    const auto item = list.substr(0, comma);
    if (item.empty()) fail(type, "empty entry in the " + std::string(what) + " list");
    RedisAddress a{std::string(item), default_port};
    if (item.front() == '[') {
      const auto close = item.find(']');
      if (close == std::string_view::npos)
        fail(type, "unterminated '[' in the " + std::string(what) + " list");
      a.host = std::string(item.substr(1, close - 1));
      const auto after = item.substr(close + 1);
      if (!after.empty()) {
        if (after.front() != ':')
          fail(type, "unexpected text after an IPv6 host in the " + std::string(what) + " list");
        a.port = static_cast<std::uint16_t>(
            number(type, after.substr(1), 1, 65535, "a port in the " + std::string(what) + " list"));
      }
    } else if (const auto colon = item.find(':'); colon != std::string_view::npos) {
      if (item.find(':', colon + 1) != std::string_view::npos)
        fail(type, "an IPv6 address in the " + std::string(what) + " list needs brackets: [addr]:port");
      a.host = std::string(item.substr(0, colon));
      a.port = static_cast<std::uint16_t>(
          number(type, item.substr(colon + 1), 1, 65535, "a port in the " + std::string(what) + " list"));
    }
    if (a.host.empty()) fail(type, "empty host in the " + std::string(what) + " list");
    out.push_back(std::move(a));
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

/// The parts of `scheme://[userinfo@]authority[/path][?query]`.
struct UrlParts {
  std::string_view scheme, authority, path, query;
  std::string user, password;
  bool has_userinfo = false;
};

inline UrlParts split(std::string_view type, std::string_view url) {
  UrlParts p;
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) fail(type, "not a URL (scheme:// missing)");
  p.scheme = url.substr(0, scheme_end);
  auto rest = url.substr(scheme_end + 3);
  if (detail::redis_url::has_control_chars(rest)) fail(type, "the URL contains control characters");
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    p.query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const auto userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    p.has_userinfo = true;
    if (const auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      p.user = decode(type, userinfo.substr(0, colon), "user");
      p.password = decode(type, userinfo.substr(colon + 1), "password");
    } else {
      p.password = decode(type, userinfo, "password");
    }
  }
  const auto slash = rest.find('/');
  p.authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) p.path = rest.substr(slash + 1);
  return p;
}

/// Calls on_param(name, decoded value) for each `name=value` of the query.
template <class F>
void each_param(std::string_view type, std::string_view query, F on_param) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (param.empty()) continue;
    const auto eq = param.find('=');
    if (eq == std::string_view::npos) fail(type, "URL query parameter without '=' (expected name=value)");
    const auto name = param.substr(0, eq);
    on_param(name, decode(type, param.substr(eq + 1), name));
  }
}

/// Applies a tls_* parameter (RedisOptions' rules); false when `name` is not one.
inline bool tls_param(std::string_view type, RedisTlsOptions& tls, std::string_view name,
                      const std::string& value) {
  bool known = false;
  if (const char* error = detail::redis_url::apply_tls_param(tls, name, value, known)) fail(type, error);
  return known;
}

inline Duration millis(std::string_view type, std::string_view v, std::string_view name) {
  return Duration(number(type, v, 1, 86'400'000, name));
}

/// Applies a connection parameter (RedisOptions' names); false when `name` is not one.
inline bool connection_param(std::string_view type, RedisConnectionTuning& c, std::string_view name,
                             const std::string& value) {
  constexpr long long max_ms = detail::redis_url::max_url_interval_ms;  // as redis:// URLs
  if (name == "stall_timeout_ms")
    c.stall_timeout = Duration(number(type, value, 0, max_ms, name));
  else if (name == "health_check_interval_ms")
    c.health_check_interval = Duration(number(type, value, 0, max_ms, name));
  else if (name == "busy_poll_us")
    c.busy_poll = std::chrono::microseconds(number(type, value, 0, 1'000'000, name));
  else
    return false;
  return true;
}

inline void validate_common(std::string_view type, const std::string& user, const std::string& password,
                            Duration connect_timeout, Duration request_timeout, Duration retry_min,
                            Duration retry_max) {
  if (detail::redis_url::has_control_chars(user) || user.find(' ') != std::string::npos)
    fail(type, "user contains a space or control characters");
  if (!user.empty() && password.empty()) fail(type, "an ACL user needs a password");
  if (connect_timeout <= Duration::zero()) fail(type, "connect_timeout must be > 0");
  if (request_timeout <= Duration::zero()) fail(type, "request_timeout must be > 0");
  if (retry_min <= Duration::zero()) fail(type, "retry_min must be > 0");
  if (retry_max < retry_min) fail(type, "retry_max must be >= retry_min");
  if (retry_max > std::chrono::hours(24)) fail(type, "retry_max must be <= 24h");
}

inline void validate_addresses(std::string_view type, const std::vector<RedisAddress>& list,
                               std::string_view what) {
  if (list.empty()) fail(type, "at least one " + std::string(what) + " is needed");
  for (const auto& a : list) {
    if (a.host.empty()) fail(type, std::string(what) + " with an empty host");
    if (detail::redis_url::has_control_chars(a.host) || a.host.find_first_of(" ,/@") != std::string::npos)
      fail(type, std::string(what) + " host contains a space, ',', '/', '@' or control characters");
    if (a.port == 0) fail(type, std::string(what) + " port must not be 0");
  }
}

inline const char* hidden(const std::string& password) { return password.empty() ? "(none)" : "***"; }

}  // namespace detail::topology_url

inline RedisClusterOptions RedisClusterOptions::from_url(std::string_view url) {
  namespace u = detail::topology_url;
  constexpr std::string_view T = "RedisClusterOptions";
  auto p = u::split(T, url);
  RedisClusterOptions o;
  if (p.scheme == "rediss+cluster")
    o.tls.enabled = true;
  else if (p.scheme != "redis+cluster")
    u::fail(T, "a cluster URL starts with redis+cluster:// or rediss+cluster://");
  if (p.authority.empty()) u::fail(T, "the URL names no seed node (redis+cluster://host:port,...)");
  if (!p.path.empty()) u::fail(T, "a cluster URL has no path (Redis Cluster has only database 0)");
  o.seeds = u::addresses(T, p.authority, 6379, "seed");
  o.user = std::move(p.user);
  o.password = std::move(p.password);
  u::each_param(T, p.query, [&](std::string_view name, const std::string& v) {
    if (u::tls_param(T, o.tls, name, v) || u::connection_param(T, o.connection, name, v)) return;
    if (name == "max_redirects")
      o.max_redirects = static_cast<int>(u::number(T, v, 0, 100, "max_redirects"));
    else if (name == "connect_timeout_ms")
      o.connect_timeout = u::millis(T, v, name);
    else if (name == "request_timeout_ms")
      o.request_timeout = u::millis(T, v, name);
    else if (name == "refresh_interval_ms")
      o.refresh_interval = Duration(u::number(T, v, 0, 86'400'000, "refresh_interval_ms"));
    else
      u::fail(T, "unknown URL query parameter '" + std::string(name) + "'");
  });
  return o;
}

inline RedisClusterOptions RedisClusterOptions::from_env() {
  namespace u = detail::topology_url;
  constexpr std::string_view T = "RedisClusterOptions";
  RedisClusterOptions o;
  if (const auto url = u::env("REDIS_CLUSTER_URL"); !url.empty()) {
    o = from_url(url);
  } else {
    const auto nodes = u::env("REDIS_CLUSTER_NODES");
    if (nodes.empty()) u::fail(T, "set REDIS_CLUSTER_URL or REDIS_CLUSTER_NODES (host:port,host:port)");
    o.seeds = u::addresses(T, nodes, 6379, "REDIS_CLUSTER_NODES");
    o.user = std::string(u::env("REDIS_USER"));
    o.password = std::string(u::env("REDIS_PASSWORD"));
  }
  o.tls = RedisTlsOptions::from_env(o.tls);
  return o;
}

inline void RedisClusterOptions::validate() const {
  namespace u = detail::topology_url;
  constexpr std::string_view T = "RedisClusterOptions";
  u::validate_addresses(T, seeds, "seed");
  u::validate_common(T, user, password, connect_timeout, request_timeout, retry_min, retry_max);
  if (max_redirects < 0) u::fail(T, "max_redirects must be >= 0");
  if (refresh_interval < Duration::zero()) u::fail(T, "refresh_interval must be >= 0 (0: only on redirects)");
  connection.validate(T);
  tls.validate();
}

inline std::ostream& operator<<(std::ostream& os, const RedisClusterOptions& o) {
  os << "RedisClusterOptions{seeds=";
  for (std::size_t i = 0; i < o.seeds.size(); ++i) os << (i ? "," : "") << o.seeds[i];
  return os << ", user=" << (o.user.empty() ? std::string("(default)") : o.user)
            << ", password=" << detail::topology_url::hidden(o.password) << ", " << o.tls
            << ", connect_timeout=" << o.connect_timeout.count()
            << "ms, request_timeout=" << o.request_timeout.count() << "ms, max_redirects=" << o.max_redirects
            << ", refresh_interval=" << o.refresh_interval.count() << "ms, retry_min=" << o.retry_min.count()
            << "ms, retry_max=" << o.retry_max.count() << "ms, " << o.connection << "}";
}

inline RedisSentinelOptions RedisSentinelOptions::from_url(std::string_view url) {
  namespace u = detail::topology_url;
  constexpr std::string_view T = "RedisSentinelOptions";
  auto p = u::split(T, url);
  RedisSentinelOptions o;
  if (p.scheme == "rediss+sentinel")
    o.tls.enabled = true;
  else if (p.scheme != "redis+sentinel")
    u::fail(T, "a Sentinel URL starts with redis+sentinel:// or rediss+sentinel://");
  if (p.authority.empty())
    u::fail(T, "the URL names no sentinel (redis+sentinel://host:port,.../master_name)");
  o.sentinels = u::addresses(T, p.authority, 26379, "sentinel");
  auto path = p.path;
  const auto slash = path.find('/');
  o.master_name = u::decode(T, path.substr(0, slash), "master name");
  if (o.master_name.empty())
    u::fail(T, "the URL names no master (redis+sentinel://host:port,.../master_name)");
  if (slash != std::string_view::npos && !path.substr(slash + 1).empty())
    o.db = static_cast<int>(u::number(T, path.substr(slash + 1), 0, INT_MAX, "the URL's db"));
  o.user = std::move(p.user);
  o.password = std::move(p.password);
  u::each_param(T, p.query, [&](std::string_view name, const std::string& v) {
    if (u::tls_param(T, o.tls, name, v) || u::connection_param(T, o.connection, name, v)) return;
    if (name == "sentinel_user")
      o.sentinel_user = v;
    else if (name == "sentinel_password")
      o.sentinel_password = v;
    else if (name == "db")
      o.db = static_cast<int>(u::number(T, v, 0, INT_MAX, "the URL's db"));
    else if (name == "connect_timeout_ms")
      o.connect_timeout = u::millis(T, v, name);
    else if (name == "request_timeout_ms")
      o.request_timeout = u::millis(T, v, name);
    else
      u::fail(T, "unknown URL query parameter '" + std::string(name) + "'");
  });
  return o;
}

inline RedisSentinelOptions RedisSentinelOptions::from_env() {
  namespace u = detail::topology_url;
  constexpr std::string_view T = "RedisSentinelOptions";
  RedisSentinelOptions o;
  if (const auto url = u::env("REDIS_SENTINEL_URL"); !url.empty()) {
    o = from_url(url);
  } else {
    const auto list = u::env("REDIS_SENTINELS");
    if (list.empty()) u::fail(T, "set REDIS_SENTINEL_URL or REDIS_SENTINELS (host:port,host:port)");
    o.sentinels = u::addresses(T, list, 26379, "REDIS_SENTINELS");
    o.master_name = std::string(u::env("REDIS_SENTINEL_MASTER"));
    if (o.master_name.empty()) u::fail(T, "REDIS_SENTINEL_MASTER (the monitored master's name) is not set");
    if (const auto v = u::env("REDIS_DB"); !v.empty())
      o.db = static_cast<int>(u::number(T, v, 0, INT_MAX, "REDIS_DB"));
    o.user = std::string(u::env("REDIS_USER"));
    o.password = std::string(u::env("REDIS_PASSWORD"));
    o.sentinel_user = std::string(u::env("REDIS_SENTINEL_USER"));
    o.sentinel_password = std::string(u::env("REDIS_SENTINEL_PASSWORD"));
  }
  o.tls = RedisTlsOptions::from_env(o.tls);
  return o;
}

inline void RedisSentinelOptions::validate() const {
  namespace u = detail::topology_url;
  constexpr std::string_view T = "RedisSentinelOptions";
  u::validate_addresses(T, sentinels, "sentinel");
  if (master_name.empty()) u::fail(T, "master_name must not be empty");
  if (detail::redis_url::has_control_chars(master_name) || master_name.find(' ') != std::string::npos)
    u::fail(T, "master_name contains a space or control characters");
  if (db < 0) u::fail(T, "db must be >= 0");
  u::validate_common(T, user, password, connect_timeout, request_timeout, retry_min, retry_max);
  if (detail::redis_url::has_control_chars(sentinel_user) || sentinel_user.find(' ') != std::string::npos)
    u::fail(T, "sentinel_user contains a space or control characters");
  if (!sentinel_user.empty() && sentinel_password.empty())
    u::fail(T, "sentinel_user needs a sentinel_password");
  connection.validate(T);
  tls.validate();
}

inline std::ostream& operator<<(std::ostream& os, const RedisSentinelOptions& o) {
  namespace u = detail::topology_url;
  os << "RedisSentinelOptions{sentinels=";
  for (std::size_t i = 0; i < o.sentinels.size(); ++i) os << (i ? "," : "") << o.sentinels[i];
  return os << ", master_name=" << o.master_name << ", db=" << o.db
            << ", user=" << (o.user.empty() ? std::string("(default)") : o.user)
            << ", password=" << u::hidden(o.password)
            << ", sentinel_user=" << (o.sentinel_user.empty() ? std::string("(default)") : o.sentinel_user)
            << ", sentinel_password=" << u::hidden(o.sentinel_password) << ", " << o.tls
            << ", connect_timeout=" << o.connect_timeout.count()
            << "ms, request_timeout=" << o.request_timeout.count() << "ms, retry_min=" << o.retry_min.count()
            << "ms, retry_max=" << o.retry_max.count() << "ms, " << o.connection << "}";
}

}  // namespace corocache
