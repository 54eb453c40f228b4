#pragma once
// Redis Cluster redirects and retries, I/O-free: classifying an error reply (-MOVED, -ASK,
// -TRYAGAIN, -CLUSTERDOWN), and the life of one routed request as a small state machine
// that takes events (reply, link lost) and returns the next action (send to a node,
// with or without ASKING; wait and resend; complete; fail). The topology layer performs the
// actions on its per-node connections (docs/redis_topology.md).

#include <corocache/errors.hpp>
#include <corocache/redis/detail/cluster_slots.hpp>
#include <corocache/redis/detail/reply.hpp>
#include <corocache/redis/detail/request.hpp>
#include <corocache/redis/detail/retry_backoff.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace corocache::detail::redis::cluster {

enum class ErrorClass {
  none,         ///< not an error reply
  moved,        ///< the slot lives elsewhere for good: update the map, resend there
  ask,          ///< the key is on the importing node for now: ASKING + resend there, once
  tryagain,     ///< multi-key command during a migration: resend after a short wait
  clusterdown,  ///< the cluster cannot serve the slot now: refresh the map, resend later
  other,        ///< any other error: the request's own answer
};

struct Redirect {
  int slot = -1;
  NodeAddress to;
  friend bool operator==(const Redirect&, const Redirect&) = default;
};

struct Classified {
  ErrorClass kind = ErrorClass::none;
  std::optional<Redirect> redirect;  ///< moved / ask
};

/// Parses the text of a MOVED/ASK error after its first word: "<slot> <host>:<port>". An
/// empty host (":6380", sent when the server has no endpoint to announce) means the host of
/// `origin`, the node that answered. nullopt when malformed.
inline std::optional<Redirect> parse_redirect_target(std::string_view rest, const NodeAddress& origin) {
  const auto space = rest.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const auto slot_text = rest.substr(0, space);
  int slot = -1;
  const auto [end, ec] = std::from_chars(slot_text.data(), slot_text.data() + slot_text.size(), slot);
  if (ec != std::errc{} || end != slot_text.data() + slot_text.size() || slot < 0 || slot >= slot_count)
    return std::nullopt;
  auto target = rest.substr(space + 1);
  while (!target.empty() && (target.back() == ' ' || target.back() == '\r' || target.back() == '\n'))
    target.remove_suffix(1);
  std::string with_host;
  if (target.starts_with(':')) {
    with_host = (origin.host.find(':') != std::string::npos ? "[" + origin.host + "]" : origin.host) +
                std::string(target);
    target = with_host;
  }
  auto addr = parse_address(target);
  if (!addr) return std::nullopt;
  return Redirect{slot, std::move(*addr)};
}

/// Classifies a reply. A MOVED/ASK whose target does not parse is `other` (the caller gets
/// the server's text rather than a guess).
inline Classified classify_reply(const Reply& reply, const NodeAddress& origin) {
  if (!reply.is_error()) return {};
  const std::string_view text = reply.str;
  auto word = [&](std::string_view w) {
    return text.starts_with(w) && (text.size() == w.size() || text[w.size()] == ' ');
  };
  if (word("MOVED") || word("ASK")) {
    const bool moved = word("MOVED");
    const auto rest = text.size() > (moved ? 6u : 4u) ? text.substr(moved ? 6 : 4) : std::string_view{};
    auto redirect = parse_redirect_target(rest, origin);
    if (!redirect) return {ErrorClass::other, std::nullopt};
    return {moved ? ErrorClass::moved : ErrorClass::ask, std::move(redirect)};
  }
  if (word("TRYAGAIN")) return {ErrorClass::tryagain, std::nullopt};
  // A script on a node whose slot is MIGRATING that reaches a key the node no longer has
  // (e.g. one it deleted and now writes again) is stopped here by Redis 7; the script did
  // not finish, and the slot's keys are moving: like TRYAGAIN, route it again after a wait
  // (corocache's scripts are idempotent; docs/redis_topology.md, "During resharding").
  if (text.starts_with("ERR Script attempted to access a non local key in a cluster node"))
    return {ErrorClass::tryagain, std::nullopt};
  if (word("CLUSTERDOWN")) return {ErrorClass::clusterdown, std::nullopt};
  return {ErrorClass::other, std::nullopt};
}

/// The request to write after an ASK: ASKING immediately followed by `command`, as one unit
/// (one write, adjacent on the connection: ASKING only covers the next command). It yields
/// one reply more than `command`; the first (+OK) is the ASKING reply, to be dropped.
inline Request with_asking(const Request& command) {
  Request r;
  r.add("ASKING");
  r.append(command);
  r.server_wait = command.server_wait;
  r.send_within = command.send_within;
  r.control = command.control;
  return r;
}

/// Limits of one request's journey through the cluster.
struct RedirectPolicy {
  /// MOVED + ASK redirects followed in a row before giving up (a healthy cluster needs at
  /// most 2: one MOVED to the new owner, one ASK during a migration); a TRYAGAIN or
  /// CLUSTERDOWN wait starts the count again.
  int max_redirects = 5;
  /// First wait after TRYAGAIN / CLUSTERDOWN / a lost unwritten send; doubles up to retry_max.
  std::chrono::milliseconds retry_min{10};
  std::chrono::milliseconds retry_max{200};
};

/// What the topology layer does next with a request.
struct Action {
  enum class Kind {
    send,            ///< write the command to `node` (prefixed by ASKING when `asking`)
    wait_then_send,  ///< wait `delay`, then route again (map may have changed) and call start()
    complete,        ///< hand `reply` to the caller
    fail,            ///< fail the caller with `error` (reply: the last server error, if any)
  };
  Kind kind = Kind::fail;
  NodeAddress node;
  bool asking = false;
  std::chrono::milliseconds delay{0};
  /// Side effects for the topology layer: apply this MOVED to the shared map, and/or
  /// refresh the whole map soon (it is stale).
  std::optional<Redirect> update_map;
  bool refresh_map = false;
  errc error = errc::timeout;
};

/// One routed request from first send to final answer. Not thread-safe; one per request.
///   start(map, now) -> send | wait_then_send | fail
///   on_reply(reply, now) -> complete | send (MOVED/ASK) | wait_then_send | fail
///   on_link_lost(written, now) -> fail (written: it may have run) | wait_then_send
class ClusterRequestFsm {
 public:
  using Clock = std::chrono::steady_clock;

  ClusterRequestFsm(int slot, Clock::time_point deadline, RedirectPolicy policy = {})
      : slot_(slot), deadline_(deadline), policy_(policy) {}

  int slot() const noexcept { return slot_; }
  int redirects() const noexcept { return redirects_; }
  int retries() const noexcept { return retries_; }
  const NodeAddress& target() const noexcept { return target_; }

  /// First send (or a resend after wait_then_send): to the slot's owner in `map`.
  Action start(const SlotMap& map, Clock::time_point now) {
    if (now >= deadline_) return fail(errc::timeout);
    const auto* owner = map.primary_of(slot_);
    if (!owner) {  // unassigned: the map is incomplete or stale
      Action a = retry(now);
      a.refresh_map = true;
      return a;
    }
    target_ = *owner;
    return send(target_, false);
  }

  Action on_reply(Reply reply, Clock::time_point now) {
    const auto c = classify_reply(reply, target_);
    switch (c.kind) {
      case ErrorClass::none:
      case ErrorClass::other: {
        Action a = make(Action::Kind::complete);
        last_ = std::move(reply);
        return a;
      }
      case ErrorClass::moved:
      case ErrorClass::ask: {
        last_ = std::move(reply);
        if (++redirects_ > policy_.max_redirects) return fail(errc::server_error);
        if (now >= deadline_) return fail(errc::timeout);
        target_ = c.redirect->to;
        Action a = send(target_, c.kind == ErrorClass::ask);
        if (c.kind == ErrorClass::moved) {
          a.update_map = c.redirect;
          a.refresh_map = true;  // one slot moved: others probably did too
        }
        return a;
      }
      case ErrorClass::tryagain:
      case ErrorClass::clusterdown: {
        last_ = std::move(reply);
        // The cluster says "wait": redirects before it were not a loop. A request that waits
        // for a migration to end goes ASK -> TRYAGAIN -> ASK ... at the backoff's pace, and
        // its deadline, not the redirect limit, ends that.
        redirects_ = 0;
        Action a = retry(now);
        a.refresh_map = a.kind != Action::Kind::fail && c.kind == ErrorClass::clusterdown;
        return a;
      }
    }
    return fail(errc::protocol_error);
  }

  /// The link to the target dropped. A written request may have run: it fails
  /// (connection_lost), it is not resent. An unwritten one is routed again after a wait.
  Action on_link_lost(bool written, Clock::time_point now) {
    if (written) return fail(errc::connection_lost);
    Action a = retry(now);
    a.refresh_map = a.kind != Action::Kind::fail;
    if (a.kind == Action::Kind::fail) a.error = errc::not_connected;
    return a;
  }

  /// The reply to hand to the caller (complete), or the last server error (fail).
  Reply& reply() noexcept { return last_; }

 private:
  static Action make(Action::Kind kind) {
    Action a;
    a.kind = kind;
    return a;
  }
  static Action send(const NodeAddress& node, bool asking) {
    Action a = make(Action::Kind::send);
    a.node = node;
    a.asking = asking;
    return a;
  }
  Action fail(errc e) {
    Action a = make(Action::Kind::fail);
    a.error = e;
    return a;
  }
  /// Waits as retry_delay() says (backoff from retry_min to retry_max, within the deadline).
  Action retry(Clock::time_point now) {
    const auto delay = retry_delay(policy_.retry_min, policy_.retry_max, retries_, now, deadline_);
    // The caller's deadline bounds every retry: past it the answer is timeout (reply() keeps
    // the last TRYAGAIN/CLUSTERDOWN text for the message).
    if (!delay) return fail(errc::timeout);
    ++retries_;
    Action a = make(Action::Kind::wait_then_send);
    a.delay = *delay;
    return a;
  }

  int slot_;
  Clock::time_point deadline_;
  RedirectPolicy policy_;
  NodeAddress target_;
  int redirects_ = 0;
  int retries_ = 0;
  Reply last_;
};

/// Why no node gave a slot map, for the calls that wait for one. A rejected AUTH or TLS
/// handshake outranks an unreachable node: it is a configuration error that waiting does not
/// mend, so calls fail with it without waiting for their deadline, as on a single server;
/// otherwise a call fails with not_connected (it was never sent) at its deadline, naming
/// each node's reason.
class DiscoveryFailure {
 public:
  bool empty() const noexcept { return reasons_.empty(); }
  errc code() const noexcept { return code_; }
  const std::string& reasons() const noexcept { return reasons_; }
  bool fatal() const noexcept { return code_ == errc::auth_failed || code_ == errc::tls_failed; }

  /// Why `node` gave no map (named in the text unless `why` names it). At most
  /// `max_reasons` are kept in the text.
  void add(errc code, const NodeAddress& node, std::string_view why) {
    if (!fatal() && (code == errc::auth_failed || code == errc::tls_failed)) code_ = code;
    if (count_++ == max_reasons) {
      reasons_ += "; ...";
      return;
    }
    if (count_ > max_reasons) return;
    for (std::string_view prefix : {"corocache redis: ", "corocache: "})
      if (why.starts_with(prefix)) why.remove_prefix(prefix.size());
    if (!reasons_.empty()) reasons_ += "; ";
    const std::string bare = node.host + ":" + std::to_string(node.port);  // as a connection names it
    if (why.find(bare) == std::string_view::npos) reasons_ += node.to_string() + ": ";
    reasons_ += why;
  }

  /// The message of a call that failed for want of a slot map.
  std::string message() const {
    std::string m = "corocache redis cluster: no slot map from any seed";
    if (!reasons_.empty()) m += " (" + reasons_ + ")";
    return m;
  }

 private:
  static constexpr int max_reasons = 4;
  errc code_ = errc::not_connected;
  std::string reasons_;
  int count_ = 0;
};

/// How long one send may wait unwritten on a node's connection (Request::send_within; zero:
/// no separate limit). A node whose link is up gets none: its request goes out at once. A
/// node whose link is down (a dead or not yet reached primary) gets a short window,
/// connect_timeout / 4 clamped to 50..500 ms: a request still unwritten then comes back
/// with not_connected and can be routed again, e.g. to the replica promoted meanwhile. A
/// request written inside the window has the caller's whole deadline for its reply.
inline std::chrono::milliseconds send_window(bool link_up, std::chrono::milliseconds connect_timeout) {
  if (link_up) return std::chrono::milliseconds::zero();
  return std::clamp(connect_timeout / 4, std::chrono::milliseconds(50), std::chrono::milliseconds(500));
}

/// The order in which to ask nodes for the slot map: nodes with a live link first (they
/// answer at once), then the map's primaries and replicas, then the seeds; no repeats.
template <class IsUp>
std::vector<NodeAddress> refresh_order(const SlotMap& map, const std::vector<NodeAddress>& seeds,
                                       IsUp is_up) {
  std::vector<NodeAddress> out;
  auto add = [&](const NodeAddress& n) {
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  };
  for (const auto& shard : map.shards()) {
    add(shard.primary);
    for (const auto& r : shard.replicas) add(r);
  }
  for (const auto& s : seeds) add(s);
  // Nodes whose link is up first, order kept within each group (by hand: libstdc++ 12's
  // std::stable_partition uses get_temporary_buffer, deprecated under clang 19).
  std::vector<NodeAddress> ordered, down;
  ordered.reserve(out.size());
  for (auto& n : out) (is_up(n) ? ordered : down).push_back(std::move(n));
  ordered.insert(ordered.end(), std::make_move_iterator(down.begin()), std::make_move_iterator(down.end()));
  return ordered;
}

}  // namespace corocache::detail::redis::cluster
