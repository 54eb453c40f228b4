#pragma once
// A real Redis Cluster on loopback for tests: 3 primaries with 1 replica each by default,
// every node a redis-server child process (RedisServer, so each has its own free port and
// temporary directory), joined with `redis-cli --cluster create`. The constructor returns
// once every node reports cluster_state:ok, agrees on who owns every slot, and every
// replica's link to its primary is up. Killing, pausing and restarting nodes and moving a
// slot by hand (the four CLUSTER SETSLOT steps) let tests fail over and reshard under load.
//
// Every wait is bounded; a missing redis-server or redis-cli is an exception, never a skip.

#include "redis_process.hpp"
#include "redis_server.hpp"
#include "redis_tls.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace corocache::test {

/// One line of CLUSTER NODES, as seen by one node.
struct ClusterNodeView {
  std::string id;
  std::uint16_t port = 0;
  bool primary = false;
  bool failed = false;                     ///< flagged fail (or fail? when `suspected` is set too)
  bool suspected = false;                  ///< flagged pfail / fail?
  std::string primary_id;                  ///< replicas: the id of their primary
  std::vector<std::pair<int, int>> slots;  ///< owned slot ranges (migration markers skipped)
  bool owns(int slot) const {
    for (auto [a, b] : slots)
      if (slot >= a && slot <= b) return true;
    return false;
  }
};

/// Parses CLUSTER NODES text.
inline std::vector<ClusterNodeView> parse_cluster_nodes(const std::string& text) {
  std::vector<ClusterNodeView> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string w; fields >> w;) f.push_back(w);
    if (f.size() < 8) continue;
    ClusterNodeView n;
    n.id = f[0];
    const auto colon = f[1].rfind(':', f[1].find('@'));
    n.port = static_cast<std::uint16_t>(std::stoi(f[1].substr(colon + 1)));
    std::set<std::string> flags;
    std::istringstream flag_list(f[2]);
    for (std::string flag; std::getline(flag_list, flag, ',');) flags.insert(flag);
    n.primary = flags.contains("master");
    n.failed = flags.contains("fail");
    n.suspected = flags.contains("fail?");
    if (f[3] != "-") n.primary_id = f[3];
    for (std::size_t i = 8; i < f.size(); ++i) {
      if (f[i].starts_with('[')) continue;  // [slot->-id] / [slot-<-id]: migration in progress
      const auto dash = f[i].find('-');
      const int a = std::stoi(f[i].substr(0, dash));
      const int b = dash == std::string::npos ? a : std::stoi(f[i].substr(dash + 1));
      n.slots.emplace_back(a, b);
    }
    out.push_back(std::move(n));
  }
  return out;
}

class RedisCluster {
 public:
  struct Options {
    int primaries = 3;
    int replicas_per_primary = 1;
    /// cluster-node-timeout: how long a silent node takes to be marked failed (and its
    /// replica promoted). Short, so a failover test takes seconds.
    std::chrono::milliseconds node_timeout{1000};
    /// Appended to every node's arguments.
    std::vector<std::string> extra_args;
    /// Limit of the whole startup (processes, create, convergence).
    std::chrono::milliseconds startup_limit{45000};
    /// Non-null: every node also listens with TLS on tls_port(i) with these certificates
    /// (tls-cluster and tls-replication on: the bus and replication use TLS too, and CLUSTER
    /// SLOTS/SHARDS over a TLS connection report the TLS ports). The plain port stays open
    /// for the fixture's own commands. Must outlive the cluster.
    const TestCertificates* tls = nullptr;
  };

  RedisCluster() : RedisCluster(Options{}) {}
  explicit RedisCluster(Options options) : options_(std::move(options)) {
    if (options_.primaries < 3) throw std::invalid_argument("RedisCluster: redis-cli needs >= 3 primaries");
    const auto deadline = std::chrono::steady_clock::now() + options_.startup_limit;
    const int count = options_.primaries * (1 + options_.replicas_per_primary);
    for (int i = 0; i < count; ++i) nodes_.push_back(start_node());
    std::vector<std::string> create = {"redis-cli", "--cluster", "create"};
    for (const auto& n : nodes_) create.push_back("127.0.0.1:" + std::to_string(n->port()));
    create.insert(create.end(),
                  {"--cluster-replicas", std::to_string(options_.replicas_per_primary), "--cluster-yes"});
    run_command_ok(create, remaining(deadline));
    wait_converged(remaining(deadline), "after redis-cli --cluster create");
  }

  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  std::size_t size() const { return nodes_.size(); }
  RedisServer& node(std::size_t i) { return *nodes_.at(i); }
  std::uint16_t port(std::size_t i) const { return nodes_.at(i)->port(); }
  std::string address(std::size_t i) const { return "127.0.0.1:" + std::to_string(port(i)); }
  /// The TLS port of node i (Options::tls set), else 0.
  std::uint16_t tls_port(std::size_t i) const { return options_.tls ? tls_ports_.at(i) : 0; }
  /// "127.0.0.1:tls_port" of every node (Options::tls set).
  std::vector<std::string> tls_seeds() const {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < size() && options_.tls; ++i)
      out.push_back("127.0.0.1:" + std::to_string(tls_port(i)));
    return out;
  }
  bool running(std::size_t i) const { return nodes_.at(i)->running() && !paused_.contains(i); }

  /// "127.0.0.1:port" of every node (seeds for a client; primaries and replicas).
  std::vector<std::string> seeds() const {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < size(); ++i) out.push_back(address(i));
    return out;
  }
  /// redis+cluster://127.0.0.1:p1,127.0.0.1:p2,... over every node.
  std::string url() const {
    std::string u = "redis+cluster://";
    for (std::size_t i = 0; i < size(); ++i) u += (i ? "," : "") + address(i);
    return u;
  }

  /// CLUSTER NODES as seen by node `asked` (default: the first running node).
  std::vector<ClusterNodeView> view(std::optional<std::size_t> asked = std::nullopt) const {
    const std::size_t i = asked ? *asked : first_running();
    return parse_cluster_nodes(SyncClient::once(port(i), {"CLUSTER", "NODES"}).text);
  }

  /// Index of the node with this port (throws if none).
  std::size_t index_of_port(std::uint16_t p) const {
    for (std::size_t i = 0; i < size(); ++i)
      if (port(i) == p) return i;
    throw std::out_of_range("RedisCluster: no node on port " + std::to_string(p));
  }
  std::string node_id(std::size_t i) const { return SyncClient::once(port(i), {"CLUSTER", "MYID"}).text; }

  /// Indices of the current primaries (as a running node sees them), in port order.
  std::vector<std::size_t> primaries() const {
    std::vector<std::size_t> out;
    for (const auto& n : view())
      if (n.primary && !n.failed) out.push_back(index_of_port(n.port));
    std::sort(out.begin(), out.end());
    return out;
  }
  /// Indices of the replicas of primary `i`.
  std::vector<std::size_t> replicas_of(std::size_t i) const {
    const auto v = view();
    std::string id;
    for (const auto& n : v)
      if (n.port == port(i)) id = n.id;
    std::vector<std::size_t> out;
    for (const auto& n : v)
      if (!n.primary && n.primary_id == id) out.push_back(index_of_port(n.port));
    return out;
  }
  /// Index of the primary that owns `slot` (as a running node sees it).
  std::size_t owner_of_slot(int slot) const {
    for (const auto& n : view())
      if (n.primary && n.owns(slot)) return index_of_port(n.port);
    throw std::runtime_error("RedisCluster: nobody owns slot " + std::to_string(slot));
  }
  /// The server's own CLUSTER KEYSLOT for `key`.
  int key_slot(const std::string& key) const {
    return std::stoi(SyncClient::once(port(first_running()), {"CLUSTER", "KEYSLOT", key}).text);
  }

  void kill(std::size_t i) {
    nodes_.at(i)->kill();
    paused_.erase(i);
  }
  void pause(std::size_t i) {
    nodes_.at(i)->pause();
    paused_.insert(i);
  }
  void resume(std::size_t i) {
    nodes_.at(i)->resume();
    paused_.erase(i);
  }
  /// Restarts a killed node on its port; it rejoins with the nodes.conf in its directory.
  void restart(std::size_t i) { nodes_.at(i)->start(); }

  /// After a primary was killed or paused: waits until one of its former replicas owns its
  /// slots, every running node reports cluster_state:ok and they agree on the slot owners.
  /// Returns the time it took.
  std::chrono::milliseconds wait_for_failover(std::size_t old_primary,
                                              std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    const auto start = std::chrono::steady_clock::now();
    std::string error;
    const bool ok = poll_until(
        [&] {
          try {
            const auto v = view();
            for (const auto& n : v)
              if (n.port == port(old_primary) && n.primary && !n.failed && !n.slots.empty()) return false;
            return converged(&error, /*require_replicas_up=*/false);
          } catch (const std::exception& e) {
            error = e.what();
            return false;
          }
        },
        limit, std::chrono::milliseconds(50));
    if (!ok)
      throw std::runtime_error("RedisCluster: no failover of node " + std::to_string(old_primary) +
                               " within " + std::to_string(limit.count()) + " ms: " + error);
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  }

  /// Waits until the running nodes agree again (e.g. after restart()).
  void wait_converged(std::chrono::milliseconds limit, const std::string& what = "") {
    std::string error;
    const bool ok = poll_until(
        [&] {
          try {
            return converged(&error, /*require_replicas_up=*/true);
          } catch (const std::exception& e) {
            error = e.what();
            return false;
          }
        },
        limit, std::chrono::milliseconds(50));
    if (!ok)
      throw std::runtime_error("RedisCluster: not converged " + what + " within " +
                               std::to_string(limit.count()) + " ms: " + error);
  }

  // --- moving one slot by hand, in the steps the cluster specification gives ------------
  /// Step 1: `to` is IMPORTING the slot from its owner, the owner is MIGRATING it to `to`.
  /// From here the owner answers -ASK for keys of the slot it no longer has.
  void begin_slot_migration(int slot, std::size_t to) {
    const std::size_t from = owner_of_slot(slot);
    if (from == to) throw std::invalid_argument("RedisCluster: slot already on that node");
    const auto s = std::to_string(slot);
    SyncClient(host_, port(to)).ok({"CLUSTER", "SETSLOT", s, "IMPORTING", node_id(from)});
    SyncClient(host_, port(from)).ok({"CLUSTER", "SETSLOT", s, "MIGRATING", node_id(to)});
    migrations_[slot] = {from, to};
  }
  /// Step 2: MIGRATEs up to `batch` keys of the slot; returns how many moved (0: none left).
  std::size_t move_slot_keys(int slot, std::size_t batch = 100) {
    const auto [from, to] = migration(slot);
    SyncClient src(host_, port(from));
    const auto keys = src.ok({"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), std::to_string(batch)});
    if (keys.elements.empty()) return 0;
    std::vector<std::string> cmd = {"MIGRATE", host_, std::to_string(port(to)), "", "0", "5000",
                                    "REPLACE", "KEYS"};
    for (const auto& k : keys.elements) cmd.push_back(k.text);
    src.ok(cmd);
    return keys.elements.size();
  }
  /// Step 3: the slot belongs to `to` (SETSLOT NODE on the target, the source, then every
  /// other primary); waits until every running node agrees.
  void finish_slot_migration(int slot, std::chrono::milliseconds limit = std::chrono::seconds(15)) {
    // Plain locals, not a structured binding: clang 14 cannot capture those in the lambda.
    const std::size_t from = migration(slot).first, to = migration(slot).second;
    const auto s = std::to_string(slot);
    const auto target_id = node_id(to);
    SyncClient(host_, port(to)).ok({"CLUSTER", "SETSLOT", s, "NODE", target_id});
    SyncClient(host_, port(from)).ok({"CLUSTER", "SETSLOT", s, "NODE", target_id});
    for (auto p : primaries())
      if (p != to && p != from && running(p))
        SyncClient(host_, port(p)).ok({"CLUSTER", "SETSLOT", s, "NODE", target_id});
    migrations_.erase(slot);
    std::string error;
    const bool ok = poll_until(
        [&] {
          return every_running_node_lists(
              [&](const ClusterNodeView& n) { return n.port == port(to) && n.owns(slot); },
              "does not see the slot on its new owner yet", error);
        },
        limit, std::chrono::milliseconds(20));
    if (!ok) throw std::runtime_error("RedisCluster: slot " + s + " move not agreed: " + error);
  }
  /// Moves `slots` slots (with their keys) from primary `from` to primary `to` with
  /// `redis-cli --cluster reshard`, then waits until every running node agrees.
  void reshard(std::size_t from, std::size_t to, int slots,
               std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    const auto start = std::chrono::steady_clock::now();
    run_command_ok({"redis-cli", "--cluster", "reshard", address(from), "--cluster-from", node_id(from),
                    "--cluster-to", node_id(to), "--cluster-slots", std::to_string(slots), "--cluster-yes"},
                   limit);
    wait_converged(std::max(limit - std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now() - start),
                            std::chrono::milliseconds(1000)),
                   "after redis-cli --cluster reshard");
  }
  /// Number of slots primary `i` owns (as a running node sees it).
  int slot_count_of(std::size_t i) const {
    int n = 0;
    for (const auto& v : view())
      if (v.port == port(i))
        for (auto [a, b] : v.slots) n += b - a + 1;
    return n;
  }

  /// Starts one more node and joins it as a primary that owns no slot (what a reshard onto a
  /// new node starts from); waits until every running node lists it as a primary and the
  /// new node knows every slot's owner. Returns its index.
  std::size_t add_empty_primary(std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    nodes_.push_back(start_node());
    const std::size_t added = nodes_.size() - 1;
    ++added_primaries_;
    run_command_ok({"redis-cli", "--cluster", "add-node", address(added), address(first_running())},
                   remaining(deadline));
    std::string error;
    const bool ok = poll_until(
        [&] {
          return every_running_node_lists(
              [&](const ClusterNodeView& n) { return n.port == port(added) && n.primary; },
              "does not list it as a primary yet", error);
        },
        remaining(deadline), std::chrono::milliseconds(20));
    if (!ok) throw std::runtime_error("RedisCluster: added node not known: " + error);
    // The new node answers CLUSTERDOWN (a MIGRATE onto it too) until gossip told it every
    // slot's owner.
    wait_converged(remaining(deadline), "after redis-cli --cluster add-node");
    return added;
  }

  /// The three steps at once; returns the number of keys moved.
  std::size_t migrate_slot(int slot, std::size_t to) {
    begin_slot_migration(slot, to);
    std::size_t moved = 0;
    for (std::size_t n; (n = move_slot_keys(slot)) > 0;) moved += n;
    finish_slot_migration(slot);
    return moved;
  }

 private:
  /// A new cluster-enabled node (not yet part of any cluster), on free loopback ports.
  std::unique_ptr<RedisServer> start_node() {
    // The bus port is chosen here (not port+10000, which may pass 65535).
    used_ports_.push_back(free_loopback_port(used_ports_));
    const auto bus_port = used_ports_.back();
    std::vector<std::string> tls_args;
    if (options_.tls) {
      used_ports_.push_back(free_loopback_port(used_ports_));
      tls_ports_.push_back(used_ports_.back());
      const auto& c = *options_.tls;
      tls_args = {"--tls-port", std::to_string(tls_ports_.back()), "--tls-cert-file", c.server_cert,
                  "--tls-key-file", c.server_key, "--tls-ca-cert-file", c.ca_cert, "--tls-auth-clients",
                  "optional",
                  // Bus and replication links are outgoing TLS connections: the node presents the
                  // client certificate (the server one is for serverAuth only).
                  "--tls-client-cert-file", c.client_cert, "--tls-client-key-file", c.client_key,
                  "--tls-cluster", "yes", "--tls-replication", "yes"};
    }
    std::vector<std::string> args = {"--cluster-enabled",
                                     "yes",
                                     "--cluster-port",
                                     std::to_string(bus_port),
                                     "--cluster-node-timeout",
                                     std::to_string(options_.node_timeout.count()),
                                     "--repl-diskless-sync-delay",
                                     "0",
                                     "--appendonly",
                                     "no"};
    args.insert(args.end(), tls_args.begin(), tls_args.end());
    args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
    return std::make_unique<RedisServer>(std::move(args));
  }

  static std::chrono::milliseconds remaining(std::chrono::steady_clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return std::max(left, std::chrono::milliseconds(1));
  }

  /// True when the CLUSTER NODES of every running node has a line matching `pred`; else
  /// `error` names the first node that has none.
  template <class Pred>
  bool every_running_node_lists(Pred pred, const std::string& missing, std::string& error) const {
    for (std::size_t i = 0; i < size(); ++i) {
      if (!running(i)) continue;
      bool seen = false;
      for (const auto& n : view(i)) seen = seen || pred(n);
      if (!seen) {
        error = "node " + std::to_string(i) + " " + missing;
        return false;
      }
    }
    return true;
  }

  std::size_t first_running() const {
    for (std::size_t i = 0; i < size(); ++i)
      if (running(i)) return i;
    throw std::runtime_error("RedisCluster: no node is running");
  }

  std::pair<std::size_t, std::size_t> migration(int slot) const {
    const auto it = migrations_.find(slot);
    if (it == migrations_.end()) throw std::logic_error("RedisCluster: begin_slot_migration first");
    return it->second;
  }

  /// Every running node: cluster_state:ok, all slots assigned, the same slot owners as the
  /// others; with require_replicas_up, every running replica's link to its primary is up.
  bool converged(std::string* error, bool require_replicas_up) const {
    std::optional<std::vector<std::pair<int, std::uint16_t>>> reference;
    for (std::size_t i = 0; i < size(); ++i) {
      if (!running(i)) continue;
      const auto info = SyncClient::once(port(i), {"CLUSTER", "INFO"}).text;
      if (info_field(info, "cluster_state") != "ok" ||
          info_field(info, "cluster_slots_assigned") != "16384") {
        *error = "node " + std::to_string(i) + ": cluster_state:" + info_field(info, "cluster_state");
        return false;
      }
      std::vector<std::pair<int, std::uint16_t>> owners;  // (range start, owner port), sorted
      const auto v = view(i);
      std::size_t primaries_seen = 0;
      for (const auto& n : v) {
        if (n.primary && !n.failed && !n.slots.empty()) ++primaries_seen;
        if (!n.primary) continue;
        for (auto [a, b] : n.slots) owners.emplace_back(a, n.port);
      }
      std::sort(owners.begin(), owners.end());
      // Primaries added by add_empty_primary() may own slots or not.
      if (primaries_seen < static_cast<std::size_t>(options_.primaries) ||
          primaries_seen > static_cast<std::size_t>(options_.primaries) + added_primaries_) {
        *error =
            "node " + std::to_string(i) + " sees " + std::to_string(primaries_seen) + " primaries with slots";
        return false;
      }
      if (!reference) {
        reference = owners;
      } else if (*reference != owners) {
        *error = "node " + std::to_string(i) + " disagrees on slot owners";
        return false;
      }
      if (require_replicas_up) {
        // Gossip is slower than replication: a node may still list a fresh replica as a
        // primary without slots, so its CLUSTER SHARDS would show that shard with no replica.
        std::size_t running_nodes = 0, replicas_seen = 0;
        for (std::size_t j = 0; j < size(); ++j) running_nodes += running(j) ? 1 : 0;
        for (const auto& n : v)
          if (!n.primary && !n.failed && !n.suspected && running(index_of_port(n.port))) ++replicas_seen;
        if (replicas_seen + static_cast<std::size_t>(options_.primaries) + added_primaries_ !=
            running_nodes) {
          *error = "node " + std::to_string(i) + " sees " + std::to_string(replicas_seen) + " replicas";
          return false;
        }
        const auto repl = SyncClient::once(port(i), {"INFO", "replication"}).text;
        if (info_field(repl, "role") == "slave" && info_field(repl, "master_link_status") != "up") {
          *error = "replica " + std::to_string(i) + " link to its primary is not up";
          return false;
        }
        if (info_field(repl, "role") == "master") {
          // A primary expects its replicas: connected_slaves counts those attached.
          std::size_t expected = 0;
          std::string my_id;
          for (const auto& n : v)
            if (n.port == port(i)) my_id = n.id;
          for (const auto& n : v)
            if (!n.primary && n.primary_id == my_id && running(index_of_port(n.port))) ++expected;
          if (std::stoul(info_field(repl, "connected_slaves")) < expected) {
            *error = "primary " + std::to_string(i) + " waits for its replicas";
            return false;
          }
        }
      }
    }
    if (!reference) {
      *error = "no node running";
      return false;
    }
    return true;
  }

  Options options_;
  std::string host_ = "127.0.0.1";
  std::vector<std::unique_ptr<RedisServer>> nodes_;
  std::vector<std::uint16_t> tls_ports_;
  std::set<std::size_t> paused_;
  std::map<int, std::pair<std::size_t, std::size_t>> migrations_;  // slot -> (from, to)
  std::vector<std::uint16_t> used_ports_;                          // bus and TLS ports handed out so far
  std::size_t added_primaries_ = 0;                                // by add_empty_primary()
};

}  // namespace corocache::test
