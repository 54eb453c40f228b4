#pragma once
// The I/O-free half of a connection's link: which address to try next (every resolved
// address, each with its own connect timeout), the handshake (AUTH/SELECT) as a request
// builder plus a reply classifier, and the reconnect backoff as a pure function. The I/O
// layer (connection.hpp) performs the steps these decide. docs/redis_connection.md has the
// state diagram.

#include <corocache/backend.hpp>
#include <corocache/errors.hpp>
#include <corocache/redis/detail/reply.hpp>
#include <corocache/redis/detail/request.hpp>
#include <corocache/redis/detail/sentinel_discovery.hpp>
#include <corocache/redis/options.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace corocache::detail::redis {

/// Why a connect attempt failed. The message never contains the password.
struct LinkFailure {
  errc code = errc::not_connected;
  std::string message;
};

// --- connect: every address, each with its own timeout -------------------------------------

/// Steps of one connect attempt over a list of addresses. start() and every result return
/// the next step; the attempt ends with `handshake` (the caller then runs the handshake on
/// the connected socket) or `failed` (`failure` says why, naming the last error).
class ConnectPlan {
 public:
  enum class Step : std::uint8_t { connect, handshake, failed };
  struct Action {
    Step step;
    std::size_t address = 0;  // connect: index of the address to try
    Duration timeout{};       // connect: the limit of this address' attempt
  };

  ConnectPlan(std::size_t addresses, Duration per_address_timeout)
      : count_(addresses), timeout_(per_address_timeout) {}

  Action start() {
    if (count_ == 0) {
      failure_ = {errc::not_connected, "host resolved to no address"};
      return {Step::failed};
    }
    return {Step::connect, 0, timeout_};
  }
  /// The socket could not be opened or the connect failed: `why` (e.g. "connection refused").
  Action on_error(const std::string& address_text, const std::string& why) {
    return next(address_text + ": " + why);
  }
  /// The address did not answer within its timeout.
  Action on_timeout(const std::string& address_text) { return next(address_text + ": connect timed out"); }
  Action on_connected() { return {Step::handshake, current_}; }

  const LinkFailure& failure() const noexcept { return failure_; }
  std::size_t tried() const noexcept { return current_ + 1; }

 private:
  Action next(std::string why) {
    failure_ = {errc::not_connected,
                count_ > 1 ? std::move(why) + " (all " + std::to_string(count_) + " addresses failed)"
                           : std::move(why)};
    if (++current_ < count_) return {Step::connect, current_, timeout_};
    current_ = count_ - 1;
    return {Step::failed};
  }

  std::size_t count_;
  Duration timeout_;
  std::size_t current_ = 0;
  LinkFailure failure_;
};

// --- handshake: AUTH / SELECT (/ ROLE) ------------------------------------------------------

/// The commands sent on a new link before it serves requests (empty: none). `check_role`
/// (a primary named by Sentinel) adds ROLE last: only a node that says `master` is used.
inline Request handshake_request(const RedisOptions& o, bool check_role = false) {
  Request hello;
  if (!o.password.empty()) {
    if (o.user.empty())
      hello.add("AUTH", o.password);
    else
      hello.add("AUTH", o.user, o.password);
  }
  if (o.db != 0) hello.add("SELECT", o.db);
  if (check_role) hello.add("ROLE");
  return hello;
}

/// Classifies the handshake's replies in order; an error reply to AUTH/SELECT is
/// auth_failed naming the command (and user), never the password. A ROLE that is not
/// `master` is not_connected (a failover in progress: the attempt backs off and asks the
/// sentinels again).
class HandshakeClassifier {
 public:
  explicit HandshakeClassifier(const RedisOptions& o, bool check_role = false)
      : auth_(!o.password.empty()),
        role_(check_role),
        user_(o.user),
        db_(o.db),
        expected_(handshake_request(o, check_role).replies) {}

  /// The next reply arrived: a failure if it rejects the handshake.
  std::optional<LinkFailure> on_reply(const Reply& reply) {
    const bool is_auth = auth_ && index_ == 0;
    const bool is_role = role_ && index_ + 1 == expected_;
    ++index_;
    if (is_role) return role_failure(reply);
    if (!reply.is_error()) return std::nullopt;
    std::string what = is_auth ? "AUTH rejected" : "SELECT " + std::to_string(db_) + " rejected";
    if (is_auth && !user_.empty()) what += " for user '" + user_ + "'";
    return LinkFailure{errc::auth_failed, what + ": " + reply.str};
  }
  bool done() const noexcept { return index_ >= expected_; }
  /// The next reply is ROLE's. A primary's ROLE lists every replica, so, like the replies to
  /// the backend's own commands (Request::control), it may be read with the wider limits;
  /// AUTH and SELECT replies keep the configured ones.
  bool role_is_next() const noexcept { return role_ && index_ + 1 == expected_; }

 private:
  static std::optional<LinkFailure> role_failure(const Reply& reply) {
    const auto role = sentinel::parse_role(reply);
    if (role.role == sentinel::RoleInfo::Role::master) return std::nullopt;
    if (reply.is_error()) return LinkFailure{errc::not_connected, "ROLE failed: " + reply.str};
    std::string what = "the node named as primary is not one (ROLE ";
    what += role.role == sentinel::RoleInfo::Role::replica ? "slave" : "unknown";
    if (!role.primary.host.empty()) what += " of " + role.primary.to_string();
    return LinkFailure{errc::not_connected, what + "): failover in progress"};
  }

  bool auth_;
  bool role_;
  std::string user_;
  int db_;
  std::size_t expected_;
  std::size_t index_ = 0;
};

// --- backoff -------------------------------------------------------------------------------

/// How a link ended, for the reconnect decision.
struct LinkEnd {
  enum class Kind : std::uint8_t { connect_failed, auth_failed, dropped } kind;
  Duration lived{};  // dropped: how long the link was up
};

struct BackoffState {
  Duration next{};  // the delay after the next failure
};

struct BackoffDecision {
  Duration delay;
  BackoffState state;
};

/// A link counts as stable (and resets the backoff) once it lived this long.
inline Duration stable_link_after(const RedisOptions& o) noexcept {
  return std::max<Duration>(o.reconnect_min, std::chrono::seconds(1));
}

inline BackoffState initial_backoff(const RedisOptions& o) noexcept { return {o.reconnect_min}; }

/// The delay before the next connect attempt. Failed attempts double it from reconnect_min
/// up to reconnect_max; a rejected AUTH/SELECT waits reconnect_max; a link that lived at
/// least stable_link_after() resets it to reconnect_min, a shorter one keeps doubling. Never
/// zero (reconnect_min > 0), so a server that accepts and then closes gets no tight loop.
inline BackoffDecision next_backoff(const RedisOptions& o, BackoffState s, LinkEnd end) noexcept {
  const auto doubled = [&](Duration d) {
    return d >= o.reconnect_max / 2 ? o.reconnect_max : std::min(d * 2, o.reconnect_max);
  };
  Duration current = std::clamp(s.next, o.reconnect_min, o.reconnect_max);
  switch (end.kind) {
    case LinkEnd::Kind::auth_failed: return {o.reconnect_max, {current}};
    case LinkEnd::Kind::dropped:
      if (end.lived >= stable_link_after(o)) return {o.reconnect_min, {o.reconnect_min}};
      return {current, {doubled(current)}};
    case LinkEnd::Kind::connect_failed: break;
  }
  return {current, {doubled(current)}};
}

}  // namespace corocache::detail::redis
