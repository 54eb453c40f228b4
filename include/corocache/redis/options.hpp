#pragma once
// Configuration of the Redis backend's connection: a plain aggregate with a documented
// default per field, plus parsing from a URL or the environment. The password never appears
// in a printed config, an exception message or a log line.

#include <corocache/backend.hpp>

#include <charconv>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace corocache {

namespace detail::redis {
class SentinelMonitor;  // redis/detail/sentinel_monitor.hpp
}  // namespace detail::redis

// --- TLS -----------------------------------------------------------------------------------

namespace detail::redis {
/// Why TLS options are refused by a build without COROCACHE_TLS (detail/tls_io.hpp).
inline constexpr const char* tls_not_built_message =
    "corocache: TLS (rediss://) is not built in: compile with COROCACHE_TLS=1 and link OpenSSL "
    "(-lssl -lcrypto); the CMake target corocache::redis does both";
}  // namespace detail::redis

/// TLS for every connection of a backend (single server, every cluster node, sentinels and
/// the primary they name). OpenSSL through Asio's SSL stream; docs/redis_topology.md (TLS).
struct RedisTlsOptions {
  /// Off unless the URL scheme is rediss:// (rediss+cluster://, rediss+sentinel://) or
  /// REDIS_TLS is set; the other fields are refused while it is off.
  bool enabled = false;
  /// PEM file of trusted CAs. With ca_dir also empty: the system's default trust store.
  std::string ca_file;
  /// Directory of trusted CAs in OpenSSL's hashed form (`openssl rehash`).
  std::string ca_dir;
  /// Client certificate (PEM) for servers with tls-auth-clients yes/optional; needs key_file.
  std::string cert_file;
  /// Private key of cert_file (PEM, unencrypted).
  std::string key_file;
  /// Name sent as SNI and checked against the server certificate; empty: the host
  /// connected to (for cluster nodes and a primary named by sentinels: their reported host).
  std::string server_name;
  /// Verify the server certificate chain and name. Leave on: off accepts any server (a
  /// man in the middle included) and exists for throwaway test setups only.
  bool verify_peer = true;

  /// Throws std::invalid_argument naming the first bad field. Checks that the files and the
  /// directory exist, so a typo fails here rather than as a handshake error per connection.
  void validate() const;
  /// REDIS_TLS (1/true/yes/on enables), REDIS_TLS_CA, REDIS_TLS_CA_DIR, REDIS_TLS_CERT,
  /// REDIS_TLS_KEY, REDIS_TLS_SERVER_NAME, REDIS_TLS_VERIFY (0/false/no/off disables),
  /// applied on top of `base`.
  static RedisTlsOptions from_env(RedisTlsOptions base);
  static RedisTlsOptions from_env() { return from_env(RedisTlsOptions{}); }

  friend std::ostream& operator<<(std::ostream& os, const RedisTlsOptions& t) {
    if (!t.enabled) return os << "tls=off";
    auto or_default = [](const std::string& s) { return s.empty() ? std::string("(default)") : s; };
    return os << "tls={ca_file=" << or_default(t.ca_file) << ", ca_dir=" << or_default(t.ca_dir)
              << ", cert_file=" << or_default(t.cert_file) << ", key_file=" << or_default(t.key_file)
              << ", server_name=" << or_default(t.server_name)
              << ", verify_peer=" << (t.verify_peer ? "on" : "OFF") << "}";
  }
};

// --- end TLS -------------------------------------------------------------------------------

struct RedisOptions {
  /// Host name or IP address of the server (TCP).
  std::string host = "127.0.0.1";
  /// TCP port of the server.
  std::uint16_t port = 6379;
  /// Non-empty: connect to this unix domain socket instead of host:port.
  std::string unix_socket;
  /// Database number, SELECTed after every (re)connect (not sent when 0).
  int db = 0;
  /// ACL user name; empty: the default user (AUTH <password>).
  std::string user;
  /// Empty: no AUTH. Never printed, logged or put in an error message.
  std::string password;
  /// TLS (rediss://): off by default. Not with unix_socket. See RedisTlsOptions.
  RedisTlsOptions tls;
  /// Limit of one connect attempt (name resolution, connect, TLS handshake, AUTH and SELECT).
  Duration connect_timeout = std::chrono::seconds(2);
  /// Default deadline of every request (Connection::exec takes a per-call override).
  Duration request_timeout = std::chrono::seconds(2);
  /// First reconnect delay; doubles after each failed attempt, and after each link that
  /// dropped within max(reconnect_min, 1s) of its handshake, up to reconnect_max. A link that
  /// lived longer reconnects after reconnect_min. Never zero: no tight reconnect loop.
  Duration reconnect_min = std::chrono::milliseconds(50);
  /// Largest reconnect delay; also the delay after a rejected AUTH/SELECT.
  Duration reconnect_max = std::chrono::seconds(2);
  /// Queued plus in-flight requests of one connection; beyond it a call fails at once with
  /// errc::overloaded.
  std::size_t max_pending = 65536;
  /// The longest the connection polls the socket for the replies of written requests
  /// (non-blocking reads from posted handlers; other work on the executor runs in between)
  /// before sleeping in the reactor; 0 = never poll. Adaptive: the connection measures the
  /// time per reply (wait and handling) when polling and when sleeping, keeps the faster on this
  /// machine, and re-checks the other now and then (docs/redis_connection.md). Polling pays
  /// where waking a sleeping thread is slow (some VMs: ~40 us) and the server answers within
  /// the cap; against a distant server it is soon dropped. Set 0 where the CPU a waiting
  /// thread spins matters more than latency. Not used by TLS links or blocking pops.
  std::chrono::microseconds busy_poll{50};
  /// A reply (or bulk string) larger than this fails only its own call with
  /// errc::reply_too_large: its bytes are skipped as they arrive, never buffered, and the
  /// link is kept. A value that could not be read back is refused when written. Replies to
  /// the backend's own commands (slot maps, SCAN pages) get at least the default limits.
  std::size_t max_reply_bytes = std::size_t{64} << 20;
  /// Elements of one array reply; more: errc::reply_too_large (the same rule). Nesting
  /// deeper than 8 levels is malformed input (errc::protocol_error).
  std::size_t max_reply_elements = std::size_t{1} << 20;
  /// Stall detection: when the oldest written request has waited this long with no byte
  /// from the server, the link is dropped (written requests fail with
  /// errc::connection_lost, abandoned ones stop counting against max_pending) and the
  /// connection reconnects. A waiting pop's BLMOVE extends the limit by its wait while it is
  /// the oldest; a long timeout (with_timeout) does not. Noticed within 1.25x the limit. 0
  /// disables it; keep it above the longest command the server may run without answering.
  /// URL: stall_timeout_ms.
  Duration stall_timeout = std::chrono::seconds(3);
  /// While the link is idle (nothing queued, nothing received) for this long, a PING is
  /// sent; if its reply does not come within stall_timeout (or this interval when stall
  /// detection is off), the link is dropped and re-established. 0 disables it.
  /// URL: health_check_interval_ms.
  Duration health_check_interval = std::chrono::seconds(2);

  // --- waiting pops ---
  /// Connections for waiting pops (each BLMOVE holds one until answered), at most this many
  /// open at once; past it a waiting pop queues (FIFO) for one until its wait ends, then pops
  /// without waiting. In [1, 65536].
  std::size_t max_blocking_connections = 16;

  // --- Sentinel ---
  /// Set by RedisBackend(executor, RedisSentinelOptions) (not meant to be set by hand):
  /// every connection of the backend asks it for the primary's address instead of using
  /// host/port, checks ROLE, and follows failovers (docs/redis_topology.md, Sentinel).
  std::shared_ptr<detail::redis::SentinelMonitor> sentinel;

  /// Parses `redis://[[user]:password@]host[:port][/db]` (also `?db=N`),
  /// `rediss://...` (TLS on; TLS query parameters: tls_ca_file (or tls_ca), tls_ca_dir,
  /// tls_cert_file (tls_cert), tls_key_file (tls_key), tls_server_name, tls_verify=0|1,
  /// values percent-encoded) or `unix://[[user]:password@]/path/to/socket[?db=N]`. The user
  /// and password may be percent-encoded. Throws std::invalid_argument for a malformed URL;
  /// the message never contains the password.
  static RedisOptions from_url(std::string_view url);

  /// REDIS_URL if set (and non-empty); otherwise REDIS_HOST, REDIS_PORT, REDIS_DB,
  /// REDIS_USER, REDIS_PASSWORD (each optional, defaults as above); then the TLS variables
  /// (RedisTlsOptions::from_env) on top, in both cases. Throws
  /// std::invalid_argument for malformed values (never echoing the password).
  static RedisOptions from_env();

  /// True when USE_REDIS is 1/true/yes/on (any case) or REDIS_URL is set and non-empty.
  static bool enabled_in_env();

  /// Throws std::invalid_argument naming the first bad field (never echoing the password).
  void validate() const;

  /// Prints every field; the password as "***" (or "(none)" when empty).
  friend std::ostream& operator<<(std::ostream& os, const RedisOptions& o) {
    os << "RedisOptions{";
    if (o.sentinel)
      os << "sentinel (the primary is discovered)";
    else if (o.unix_socket.empty())
      os << "host=" << o.host << ", port=" << o.port;
    else
      os << "unix_socket=" << o.unix_socket;
    os << ", db=" << o.db << ", user=" << (o.user.empty() ? std::string("(default)") : o.user)
       << ", password=" << (o.password.empty() ? "(none)" : "***") << ", " << o.tls
       << ", connect_timeout=" << o.connect_timeout.count() << "ms"
       << ", request_timeout=" << o.request_timeout.count() << "ms"
       << ", reconnect_min=" << o.reconnect_min.count() << "ms"
       << ", reconnect_max=" << o.reconnect_max.count() << "ms"
       << ", max_pending=" << o.max_pending << ", busy_poll=" << o.busy_poll.count() << "us"
       << ", max_reply_bytes=" << o.max_reply_bytes << ", max_reply_elements=" << o.max_reply_elements
       << ", stall_timeout=" << o.stall_timeout.count() << "ms"
       << ", health_check_interval=" << o.health_check_interval.count() << "ms"
       << ", max_blocking_connections=" << o.max_blocking_connections << "}";
    return os;
  }
};

namespace detail::redis_url {

[[noreturn]] inline void fail(std::string_view what) {
  throw std::invalid_argument("corocache::RedisOptions: " + std::string(what));
}

inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Percent-decodes `s`; `field` names it in the error (the value itself is never echoed).
inline std::string percent_decode(std::string_view s, std::string_view field) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) fail("bad percent-encoding in the URL's " + std::string(field));
    const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) fail("bad percent-encoding in the URL's " + std::string(field));
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

/// Parses a whole decimal number in [lo, hi]; `what` names the field in the error (the
/// value is not echoed: a mangled URL may have shifted a secret into any position).
inline long long parse_number(std::string_view s, long long lo, long long hi, std::string_view what) {
  long long v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v < lo || v > hi)
    fail(std::string(what) + " must be a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}

inline bool has_control_chars(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

/// 1/true/yes/on or 0/false/no/off (any case); empty optional for anything else.
inline std::optional<bool> parse_bool(std::string_view v) {
  std::string s(v);
  for (auto& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (s == "1" || s == "true" || s == "yes" || s == "on") return true;
  if (s == "0" || s == "false" || s == "no" || s == "off") return false;
  return std::nullopt;
}

/// Applies one `tls_*` URL parameter; nullptr when done, else the error text. `known` says
/// whether `name` is a TLS parameter at all. Shared with the cluster and sentinel URLs.
inline const char* apply_tls_param(RedisTlsOptions& tls, std::string_view name, const std::string& value,
                                   bool& known) {
  known = true;
  if (name == "tls_ca_file" || name == "tls_ca")
    tls.ca_file = value;
  else if (name == "tls_ca_dir")
    tls.ca_dir = value;
  else if (name == "tls_cert_file" || name == "tls_cert")
    tls.cert_file = value;
  else if (name == "tls_key_file" || name == "tls_key")
    tls.key_file = value;
  else if (name == "tls_server_name")
    tls.server_name = value;
  else if (name == "tls_verify") {
    const auto b = parse_bool(value);
    if (!b) return "tls_verify must be 0 or 1";
    tls.verify_peer = *b;
  } else {
    known = false;
    return nullptr;
  }
  if (!tls.enabled) return "tls_* URL parameters need a rediss scheme (TLS is off)";
  return nullptr;
}

/// The largest stall_timeout_ms / health_check_interval_ms a URL may give (a year), for
/// every deployment's URL.
inline constexpr long long max_url_interval_ms = 365LL * 24 * 3600 * 1000;

/// Handles `?db=N`, `stall_timeout_ms=N`, `health_check_interval_ms=N`, `busy_poll_us=N`
/// (0 disables each) and the `tls_*` parameters (rediss:// only).
inline void apply_query(RedisOptions& o, std::string_view query) {
  constexpr long long max_ms = max_url_interval_ms;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (param.starts_with("db="))
      o.db = static_cast<int>(parse_number(param.substr(3), 0, INT_MAX, "the URL's db"));
    else if (param.starts_with("stall_timeout_ms="))
      o.stall_timeout = Duration(parse_number(param.substr(17), 0, max_ms, "the URL's stall_timeout_ms"));
    else if (param.starts_with("health_check_interval_ms="))
      o.health_check_interval =
          Duration(parse_number(param.substr(25), 0, max_ms, "the URL's health_check_interval_ms"));
    else if (param.starts_with("busy_poll_us="))
      o.busy_poll =
          std::chrono::microseconds(parse_number(param.substr(13), 0, 1'000'000, "the URL's busy_poll_us"));
    else if (param.starts_with("tls_")) {
      const auto eq = param.find('=');
      if (eq == std::string_view::npos) fail("URL query parameter without '=' (expected tls_name=value)");
      const auto name = param.substr(0, eq);
      bool known = false;
      if (const char* error = apply_tls_param(o.tls, name, percent_decode(param.substr(eq + 1), name), known))
        fail(error);
      if (!known) fail("unknown TLS URL query parameter '" + std::string(name) + "'");
    } else if (!param.empty())
      fail(
          "unknown URL query parameter (understood: db, stall_timeout_ms, health_check_interval_ms, "
          "busy_poll_us, tls_*)");
  }
}

}  // namespace detail::redis_url

inline RedisOptions RedisOptions::from_url(std::string_view url) {
  namespace u = detail::redis_url;
  RedisOptions o;
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos)
    u::fail("a Redis URL must start with redis://, rediss:// (TLS) or unix://");
  const auto scheme = url.substr(0, scheme_end);
  if (scheme != "redis" && scheme != "rediss" && scheme != "unix")
    u::fail("unsupported URL scheme (use redis://, rediss:// (TLS) or unix://)");
  o.tls.enabled = scheme == "rediss";
  auto rest = url.substr(scheme_end + 3);
  if (u::has_control_chars(rest)) u::fail("the URL contains control characters");

  // Credentials: everything before the LAST '@' of the authority (a password may hold '@'
  // when percent-encoded; an unencoded one still works as long as the host has none).
  std::string_view authority_and_path = rest;
  std::string_view query;
  if (const auto q = authority_and_path.find('?'); q != std::string_view::npos) {
    query = authority_and_path.substr(q + 1);
    authority_and_path = authority_and_path.substr(0, q);
  }
  if (const auto at = authority_and_path.rfind('@'); at != std::string_view::npos) {
    const auto userinfo = authority_and_path.substr(0, at);
    authority_and_path = authority_and_path.substr(at + 1);
    if (const auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      o.user = u::percent_decode(userinfo.substr(0, colon), "user");
      o.password = u::percent_decode(userinfo.substr(colon + 1), "password");
    } else {
      // redis://secret@host: a lone userinfo is the password (default user), as redis-cli reads it.
      o.password = u::percent_decode(userinfo, "password");
    }
  }

  if (scheme == "unix") {
    if (authority_and_path.empty() || authority_and_path.front() != '/')
      u::fail("a unix:// URL needs an absolute socket path (unix:///path/to/redis.sock)");
    o.unix_socket = std::string(authority_and_path);
    u::apply_query(o, query);
    return o;
  }

  std::string_view hostport = authority_and_path;
  std::string_view path;
  if (const auto slash = hostport.find('/'); slash != std::string_view::npos) {
    path = hostport.substr(slash + 1);
    hostport = hostport.substr(0, slash);
  }
  std::string_view host = hostport;
  std::string_view port;
  if (!hostport.empty() && hostport.front() == '[') {  // [IPv6]:port
    const auto close = hostport.find(']');
    if (close == std::string_view::npos) u::fail("unterminated '[' in the URL's host");
    host = hostport.substr(1, close - 1);
    const auto after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') u::fail("unexpected characters after the URL's IPv6 host");
      port = after.substr(1);
      if (port.empty()) u::fail("empty port in the URL");
    }
  } else if (const auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
    if (port.empty()) u::fail("empty port in the URL");
  }
  if (host.empty()) u::fail("the URL has no host");
  o.host = std::string(host);
  if (!port.empty()) o.port = static_cast<std::uint16_t>(u::parse_number(port, 1, 65535, "the URL's port"));
  if (!path.empty()) o.db = static_cast<int>(u::parse_number(path, 0, INT_MAX, "the URL's db"));
  u::apply_query(o, query);
  return o;
}

inline RedisOptions RedisOptions::from_env() {
  namespace u = detail::redis_url;
  auto env = [](const char* name) -> std::string_view {
    const char* v = std::getenv(name);
    return v ? std::string_view(v) : std::string_view{};
  };
  if (const auto url = env("REDIS_URL"); !url.empty()) {
    auto o = from_url(url);
    o.tls = RedisTlsOptions::from_env(std::move(o.tls));
    return o;
  }
  RedisOptions o;
  if (const auto v = env("REDIS_HOST"); !v.empty()) o.host = std::string(v);
  if (const auto v = env("REDIS_PORT"); !v.empty())
    o.port = static_cast<std::uint16_t>(u::parse_number(v, 1, 65535, "REDIS_PORT"));
  if (const auto v = env("REDIS_DB"); !v.empty())
    o.db = static_cast<int>(u::parse_number(v, 0, INT_MAX, "REDIS_DB"));
  if (const auto v = env("REDIS_USER"); !v.empty()) o.user = std::string(v);
  if (const auto v = env("REDIS_PASSWORD"); !v.empty()) o.password = std::string(v);
  o.tls = RedisTlsOptions::from_env(std::move(o.tls));
  return o;
}

inline bool RedisOptions::enabled_in_env() {
  if (const char* url = std::getenv("REDIS_URL"); url && *url) return true;
  const char* use = std::getenv("USE_REDIS");
  if (!use) return false;
  std::string v(use);
  for (auto& c : v) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return v == "1" || v == "true" || v == "yes" || v == "on";
}

inline void RedisOptions::validate() const {
  namespace u = detail::redis_url;
  if (unix_socket.empty()) {
    if (host.empty()) u::fail("host must not be empty");
    if (u::has_control_chars(host)) u::fail("host contains control characters");
    if (port == 0) u::fail("port must not be 0");
  } else if (u::has_control_chars(unix_socket)) {
    u::fail("unix_socket contains control characters");
  }
  if (db < 0) u::fail("db must be >= 0");
  if (u::has_control_chars(user)) u::fail("user contains control characters");
  if (user.find(' ') != std::string::npos) u::fail("user contains a space");
  if (!user.empty() && password.empty()) u::fail("an ACL user needs a password");
  if (connect_timeout <= Duration::zero()) u::fail("connect_timeout must be > 0");
  if (request_timeout <= Duration::zero()) u::fail("request_timeout must be > 0");
  if (reconnect_min <= Duration::zero()) u::fail("reconnect_min must be > 0");
  if (reconnect_max < reconnect_min) u::fail("reconnect_max must be >= reconnect_min");
  if (max_pending == 0) u::fail("max_pending must be > 0");
  if (busy_poll < std::chrono::microseconds::zero() || busy_poll > std::chrono::seconds(1))
    u::fail("busy_poll must be in [0, 1s]");
  if (max_reply_bytes < 1024) u::fail("max_reply_bytes must be >= 1024");
  if (max_reply_elements == 0 || max_reply_elements > static_cast<std::size_t>(INT_MAX))
    u::fail("max_reply_elements must be in [1, INT_MAX]");
  if (stall_timeout < Duration::zero()) u::fail("stall_timeout must be >= 0 (0 disables it)");
  if (health_check_interval < Duration::zero()) u::fail("health_check_interval must be >= 0 (0 disables it)");
  // TLS: the fields of RedisTlsOptions, and no TLS over a unix socket (Redis has none).
  if (tls.enabled && !unix_socket.empty())
    u::fail("TLS is not available over a unix socket (tls.enabled with unix_socket)");
  tls.validate();

  // --- waiting pops ---
  if (max_blocking_connections == 0 || max_blocking_connections > 65536)
    u::fail("max_blocking_connections must be in [1, 65536]");
}

// --- TLS -----------------------------------------------------------------------------------

inline void RedisTlsOptions::validate() const {
  auto fail = [](const std::string& what) {
    throw std::invalid_argument("corocache::RedisTlsOptions: " + what);
  };
  if (!enabled) {
    if (!ca_file.empty() || !ca_dir.empty() || !cert_file.empty() || !key_file.empty() ||
        !server_name.empty())
      fail("TLS fields are set but TLS is off (enabled = false; use a rediss:// URL or REDIS_TLS=1)");
    return;
  }
#if !COROCACHE_TLS
  throw std::invalid_argument(detail::redis::tls_not_built_message);
#endif
  std::error_code ec;
  if (!ca_file.empty() && !std::filesystem::is_regular_file(ca_file, ec))
    fail("ca_file '" + ca_file + "' is not a readable file");
  if (!ca_dir.empty() && !std::filesystem::is_directory(ca_dir, ec))
    fail("ca_dir '" + ca_dir + "' is not a directory");
  if (cert_file.empty() != key_file.empty()) fail("cert_file and key_file go together (set both or neither)");
  if (!cert_file.empty() && !std::filesystem::is_regular_file(cert_file, ec))
    fail("cert_file '" + cert_file + "' is not a readable file");
  if (!key_file.empty() && !std::filesystem::is_regular_file(key_file, ec))
    fail("key_file '" + key_file + "' is not a readable file");
  if (detail::redis_url::has_control_chars(server_name) ||
      server_name.find_first_of(" /@") != std::string::npos)
    fail("server_name contains a space, '/', '@' or control characters");
}

inline RedisTlsOptions RedisTlsOptions::from_env(RedisTlsOptions t) {
  auto env = [](const char* name) -> std::string_view {
    const char* v = std::getenv(name);
    return v ? std::string_view(v) : std::string_view{};
  };
  auto flag = [&](const char* name, bool& field) {
    const auto v = env(name);
    if (v.empty()) return;
    const auto b = detail::redis_url::parse_bool(v);
    if (!b)
      throw std::invalid_argument("corocache::RedisTlsOptions: " + std::string(name) +
                                  " must be 1/true/yes/on or 0/false/no/off");
    field = *b;
  };
  flag("REDIS_TLS", t.enabled);
  if (const auto v = env("REDIS_TLS_CA"); !v.empty()) t.ca_file = std::string(v);
  if (const auto v = env("REDIS_TLS_CA_DIR"); !v.empty()) t.ca_dir = std::string(v);
  if (const auto v = env("REDIS_TLS_CERT"); !v.empty()) t.cert_file = std::string(v);
  if (const auto v = env("REDIS_TLS_KEY"); !v.empty()) t.key_file = std::string(v);
  if (const auto v = env("REDIS_TLS_SERVER_NAME"); !v.empty()) t.server_name = std::string(v);
  flag("REDIS_TLS_VERIFY", t.verify_peer);
  return t;
}

// --- end TLS -------------------------------------------------------------------------------

}  // namespace corocache
