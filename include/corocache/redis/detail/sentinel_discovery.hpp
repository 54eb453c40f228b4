#pragma once
// Redis Sentinel discovery, I/O-free: the requests a client sends to sentinels and the
// primary (SENTINEL GET-MASTER-ADDR-BY-NAME, SENTINEL SENTINELS, ROLE, SUBSCRIBE
// +switch-master), parsers for their replies, the order in which sentinels are asked, and
// the discovery state machine: ask sentinels in turn until one names the primary, check
// with ROLE that it is a primary, and retry (bounded by a deadline) when it is not. The
// topology layer performs the actions (docs/redis_topology.md).

#include <corocache/errors.hpp>
#include <corocache/redis/detail/cluster_slots.hpp>
#include <corocache/redis/detail/reply.hpp>
#include <corocache/redis/detail/request.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace corocache::detail::redis::sentinel {

using cluster::NodeAddress;

/// SENTINEL GET-MASTER-ADDR-BY-NAME <name>
inline Request master_addr_request(std::string_view master_name) {
  Request r;
  r.add("SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name);
  return r;
}
/// SENTINEL SENTINELS <name>: the other sentinels watching it (to learn new ones).
inline Request sentinels_request(std::string_view master_name) {
  Request r;
  r.add("SENTINEL", "SENTINELS", master_name);
  return r;
}
/// ROLE, sent to the node a sentinel named, before trusting it as the primary.
inline Request role_request() {
  Request r;
  r.add("ROLE");
  return r;
}
/// SUBSCRIBE +switch-master, on a dedicated connection to one sentinel.
inline Request switch_master_subscription() {
  Request r;
  r.add("SUBSCRIBE", "+switch-master");
  return r;
}

namespace detail_ {
inline std::optional<std::uint16_t> port_of(std::string_view text) {
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || v == 0 || v > 65535)
    return std::nullopt;
  return static_cast<std::uint16_t>(v);
}
inline bool is_text(const Reply& r) { return r.is_string() || r.is_status(); }
}  // namespace detail_

struct MasterAddr {
  enum class Kind {
    found,           ///< `address` is where the sentinel believes the primary is
    unknown_master,  ///< nil: this sentinel does not monitor that name (ask another; a
                     ///< configuration error if none does)
    error,           ///< an error reply (e.g. -NOAUTH): ask another sentinel
    malformed,       ///< not a sentinel's answer
  };
  Kind kind = Kind::malformed;
  NodeAddress address;
  std::string message;  ///< error text for error / malformed
};

/// Parses the reply to SENTINEL GET-MASTER-ADDR-BY-NAME: [ip, port] or nil.
inline MasterAddr parse_master_addr(const Reply& reply) {
  if (reply.is_nil() || (reply.is_array() && reply.elements.empty()))
    return {MasterAddr::Kind::unknown_master, {}, {}};
  if (reply.is_error()) return {MasterAddr::Kind::error, {}, reply.str};
  if (!reply.is_array() || reply.elements.size() != 2 || !detail_::is_text(reply.elements[0]) ||
      !detail_::is_text(reply.elements[1]))
    return {MasterAddr::Kind::malformed, {}, "not an [ip, port] pair"};
  const auto port = detail_::port_of(reply.elements[1].str);
  if (reply.elements[0].str.empty() || !port) return {MasterAddr::Kind::malformed, {}, "bad ip or port"};
  return {MasterAddr::Kind::found, NodeAddress{reply.elements[0].str, *port}, {}};
}

/// Parses SENTINEL SENTINELS <name>: one flat [key, value, ...] array per sentinel; the
/// "ip" and "port" fields give its address. Entries without them are skipped.
inline std::vector<NodeAddress> parse_sentinels(const Reply& reply) {
  std::vector<NodeAddress> out;
  if (!reply.is_array()) return out;
  for (const auto& entry : reply.elements) {
    if (!entry.is_array()) continue;
    std::optional<std::string> ip;
    std::optional<std::uint16_t> port;
    for (std::size_t i = 0; i + 1 < entry.elements.size(); i += 2) {
      const auto& k = entry.elements[i];
      const auto& v = entry.elements[i + 1];
      if (!detail_::is_text(k) || !detail_::is_text(v)) continue;
      if (k.str == "ip" && !v.str.empty()) ip = v.str;
      if (k.str == "port") port = detail_::port_of(v.str);
    }
    if (ip && port) out.push_back(NodeAddress{*ip, *port});
  }
  return out;
}

struct RoleInfo {
  enum class Role { master, replica, sentinel, unknown };
  Role role = Role::unknown;
  NodeAddress primary;     ///< replica: the primary it follows
  std::string link_state;  ///< replica: connect / connecting / sync / connected
};

/// Classifies a ROLE reply: ["master", offset, [...]], ["slave", ip, port, state, offset],
/// ["sentinel", [names]]. Anything else (errors included) is unknown.
inline RoleInfo parse_role(const Reply& reply) {
  RoleInfo info;
  if (!reply.is_array() || reply.elements.empty() || !detail_::is_text(reply.elements[0])) return info;
  const auto& name = reply.elements[0].str;
  if (name == "master") {
    info.role = RoleInfo::Role::master;
  } else if (name == "slave" || name == "replica") {
    info.role = RoleInfo::Role::replica;
    if (reply.elements.size() >= 4 && detail_::is_text(reply.elements[1])) {
      const auto& p = reply.elements[2];
      std::optional<std::uint16_t> port;
      if (p.is_integer() && p.integer > 0 && p.integer <= 65535)
        port = static_cast<std::uint16_t>(p.integer);
      else if (detail_::is_text(p))
        port = detail_::port_of(p.str);
      if (port) info.primary = NodeAddress{reply.elements[1].str, *port};
      if (detail_::is_text(reply.elements[3])) info.link_state = reply.elements[3].str;
    }
  } else if (name == "sentinel") {
    info.role = RoleInfo::Role::sentinel;
  }
  return info;
}

struct SwitchMaster {
  std::string master_name;
  NodeAddress from, to;
  friend bool operator==(const SwitchMaster&, const SwitchMaster&) = default;
};

/// Parses a pub/sub push from the +switch-master channel: ["message", "+switch-master",
/// "<name> <old ip> <old port> <new ip> <new port>"] (or the pmessage form with a pattern).
/// nullopt for other messages, other channels, or another master's switch when
/// `master_name` is not empty.
inline std::optional<SwitchMaster> parse_switch_master(const Reply& push, std::string_view master_name = {}) {
  if (!push.is_array() || push.elements.size() < 3) return std::nullopt;
  for (const auto& e : push.elements)
    if (!detail_::is_text(e)) return std::nullopt;
  const auto& kind = push.elements[0].str;
  std::size_t channel = 1;
  if (kind == "pmessage" && push.elements.size() == 4)
    channel = 2;
  else if (kind != "message" || push.elements.size() != 3)
    return std::nullopt;
  if (push.elements[channel].str != "+switch-master") return std::nullopt;
  std::vector<std::string_view> words;
  std::string_view payload = push.elements[channel + 1].str;
  while (!payload.empty()) {
    const auto space = payload.find(' ');
    if (space != 0) words.push_back(payload.substr(0, space));
    if (space == std::string_view::npos) break;
    payload.remove_prefix(space + 1);
  }
  if (words.size() != 5) return std::nullopt;
  const auto from_port = detail_::port_of(words[2]);
  const auto to_port = detail_::port_of(words[4]);
  if (!from_port || !to_port) return std::nullopt;
  if (!master_name.empty() && words[0] != master_name) return std::nullopt;
  return SwitchMaster{std::string(words[0]), NodeAddress{std::string(words[1]), *from_port},
                      NodeAddress{std::string(words[3]), *to_port}};
}

/// The sentinels in the order to ask them. The one that last answered goes first (the
/// Sentinel client guidelines' rule, so a healthy sentinel keeps being used); a failure
/// moves on to the next; a full round of failures is reported so the caller backs off.
class SentinelList {
 public:
  explicit SentinelList(std::vector<NodeAddress> sentinels) : list_(std::move(sentinels)) {}

  bool empty() const noexcept { return list_.empty(); }
  std::size_t size() const noexcept { return list_.size(); }
  const std::vector<NodeAddress>& addresses() const noexcept { return list_; }
  const NodeAddress& current() const { return list_.at(index_); }

  /// The current sentinel failed (no answer, error, or does not know the master). Returns
  /// false when every sentinel failed since the last success (a full round): the caller
  /// waits before the next round, which starts again at the front.
  bool next() {
    ++failures_;
    index_ = (index_ + 1) % list_.size();
    if (failures_ >= list_.size()) {
      failures_ = 0;
      index_ = 0;
      return false;
    }
    return true;
  }

  /// The current sentinel answered: it moves to the front.
  void success() {
    std::rotate(list_.begin(), list_.begin() + static_cast<std::ptrdiff_t>(index_),
                list_.begin() + static_cast<std::ptrdiff_t>(index_) + 1);
    index_ = 0;
    failures_ = 0;
  }

  /// Adds sentinels learnt from SENTINEL SENTINELS (at the back; known ones are kept where
  /// they are). Returns how many were new.
  std::size_t merge(const std::vector<NodeAddress>& discovered) {
    std::size_t added = 0;
    for (const auto& a : discovered)
      if (std::find(list_.begin(), list_.end(), a) == list_.end()) {
        list_.push_back(a);
        ++added;
      }
    return added;
  }

 private:
  std::vector<NodeAddress> list_;
  std::size_t index_ = 0;
  std::size_t failures_ = 0;
};

/// Limits of one discovery.
struct DiscoveryPolicy {
  /// Wait after a full round of failed sentinels or a ROLE that is not master (the
  /// sentinels' view lags during a failover); doubles up to retry_max.
  std::chrono::milliseconds retry_min{50};
  std::chrono::milliseconds retry_max{1000};
};

struct DiscoveryAction {
  enum class Kind {
    ask_sentinel,  ///< send master_addr_request() to `node` (a sentinel)
    check_role,    ///< connect to `node` (the named primary) and send ROLE
    done,          ///< `node` is the primary: use it
    wait,          ///< wait `delay`, then call resume()
    fail,          ///< give up: `error` (timeout / not_connected), `message` says why
  };
  Kind kind = Kind::fail;
  NodeAddress node;
  std::chrono::milliseconds delay{0};
  errc error = errc::not_connected;
  std::string message;
  /// fail: every sentinel answered and none monitors the name (a configuration error, not
  /// a failover): waiting requests should fail at once instead of at their deadline.
  bool rejection = false;
};

/// One discovery of the primary, from start() to done or fail; bounded by `deadline`.
class DiscoveryFsm {
 public:
  using Clock = std::chrono::steady_clock;

  DiscoveryFsm(SentinelList& sentinels, std::string master_name, Clock::time_point deadline,
               DiscoveryPolicy policy = {})
      : sentinels_(sentinels), name_(std::move(master_name)), deadline_(deadline), policy_(policy) {}

  DiscoveryAction start(Clock::time_point now) {
    if (sentinels_.empty()) return fail(errc::not_connected, "no sentinel configured");
    if (now >= deadline_) return fail(errc::timeout, "deadline passed before asking a sentinel");
    return ask(sentinels_.current());
  }
  /// After a `wait` action.
  DiscoveryAction resume(Clock::time_point now) { return start(now); }

  /// The sentinel answered GET-MASTER-ADDR-BY-NAME.
  DiscoveryAction on_sentinel_reply(const Reply& reply, Clock::time_point now) {
    const auto addr = parse_master_addr(reply);
    if (addr.kind == MasterAddr::Kind::found) {
      sentinels_.success();
      unknown_in_a_row_ = 0;
      candidate_ = addr.address;
      return check(candidate_);
    }
    if (addr.kind == MasterAddr::Kind::unknown_master) {
      last_problem_ =
          "sentinel " + sentinels_.current().to_string() + " does not know master '" + name_ + "'";
      if (++unknown_in_a_row_ >= sentinels_.size()) {
        auto a = fail(errc::not_connected, "no sentinel monitors a master named '" + name_ + "' (asked " +
                                               std::to_string(sentinels_.size()) + ")");
        a.rejection = true;
        return a;
      }
    } else {
      unknown_in_a_row_ = 0;
      last_problem_ = "sentinel " + sentinels_.current().to_string() + ": " + addr.message;
    }
    return next_sentinel(now);
  }
  /// The sentinel could not be reached or did not answer in time.
  DiscoveryAction on_sentinel_error(std::string_view what, Clock::time_point now) {
    unknown_in_a_row_ = 0;
    last_problem_ = "sentinel " + sentinels_.current().to_string() + ": " + std::string(what);
    return next_sentinel(now);
  }
  /// The named primary answered ROLE.
  DiscoveryAction on_role_reply(const Reply& reply, Clock::time_point now) {
    const auto role = parse_role(reply);
    if (role.role == RoleInfo::Role::master) return make(DiscoveryAction::Kind::done, candidate_);
    last_problem_ = candidate_.to_string() + " is not a primary (ROLE " +
                    (reply.is_array() && !reply.elements.empty() ? reply.elements[0].str : std::string("?")) +
                    ")";
    return backoff(now);  // a failover is in progress: ask again shortly
  }
  /// The named primary could not be reached.
  DiscoveryAction on_role_error(std::string_view what, Clock::time_point now) {
    last_problem_ = "primary " + candidate_.to_string() + ": " + std::string(what);
    return backoff(now);
  }

  int rounds() const noexcept { return rounds_; }

 private:
  static DiscoveryAction make(DiscoveryAction::Kind kind, const NodeAddress& node = {}) {
    DiscoveryAction a;
    a.kind = kind;
    a.node = node;
    return a;
  }
  DiscoveryAction ask(const NodeAddress& node) const {
    return make(DiscoveryAction::Kind::ask_sentinel, node);
  }
  DiscoveryAction check(const NodeAddress& node) const {
    return make(DiscoveryAction::Kind::check_role, node);
  }
  DiscoveryAction fail(errc e, std::string why) const {
    DiscoveryAction a = make(DiscoveryAction::Kind::fail);
    a.error = e;
    a.message = "corocache: Sentinel discovery of '" + name_ + "' failed: " + std::move(why);
    return a;
  }
  DiscoveryAction next_sentinel(Clock::time_point now) {
    if (now >= deadline_) return fail(errc::timeout, last_problem_);
    if (sentinels_.next()) return ask(sentinels_.current());
    return backoff(now);
  }
  DiscoveryAction backoff(Clock::time_point now) {
    auto delay = policy_.retry_min;
    for (int i = 0; i < rounds_ && delay < policy_.retry_max; ++i) delay *= 2;
    delay = std::min(delay, policy_.retry_max);
    if (now + delay >= deadline_) return fail(errc::timeout, last_problem_);
    ++rounds_;
    DiscoveryAction a = make(DiscoveryAction::Kind::wait);
    a.delay = delay;
    return a;
  }

  SentinelList& sentinels_;
  std::string name_;
  Clock::time_point deadline_;
  DiscoveryPolicy policy_;
  NodeAddress candidate_;
  std::string last_problem_;
  int rounds_ = 0;
  std::size_t unknown_in_a_row_ = 0;  // sentinels in a row that do not know the name
};

/// The limit of one question to one sentinel: short, so a dead or paused sentinel leaves
/// time for the others within the attempt's connect_timeout.
inline std::chrono::milliseconds sentinel_timeout(std::chrono::milliseconds connect_timeout) {
  return std::max(connect_timeout / 4, std::chrono::milliseconds(100));
}

/// A `-READONLY` reply from the node believed to be the primary: it was demoted (the
/// command did not run); the link is dropped and the primary discovered again.
inline bool is_demoted(const Reply& reply) { return reply.is_error("READONLY"); }

/// What a data link does with a +switch-master notice for its master name.
enum class SwitchAction {
  none,       ///< already on the new primary
  drop_link,  ///< up on another node: drop it (written requests: connection_lost), rediscover
  retry_now,  ///< not up: the next connect attempt starts now, not after its backoff
};
inline SwitchAction on_switch_master(const SwitchMaster& notice, bool link_up,
                                     const NodeAddress& connected_to) {
  if (!link_up) return SwitchAction::retry_now;
  return connected_to == notice.to ? SwitchAction::none : SwitchAction::drop_link;
}

}  // namespace corocache::detail::redis::sentinel
