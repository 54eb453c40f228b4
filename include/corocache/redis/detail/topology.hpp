#pragma once
// Where RedisBackend's requests go: one server (a Connection, used directly: no extra
// allocation, virtual call or shared_ptr copy per request) or a Redis Cluster
// (ClusterTopology: routed by the slot of the request's key). Per-node work (SCAN walks)
// goes through primaries(); waiting pops through blocking_pool(). docs/redis_topology.md.

#include <corocache/backend.hpp>
#include <corocache/redis/detail/blocking_pool.hpp>
#include <corocache/redis/detail/cluster_route.hpp>
#include <corocache/redis/detail/cluster_slots.hpp>
#include <corocache/redis/detail/cluster_topology.hpp>
#include <corocache/redis/detail/connection.hpp>
#include <corocache/redis/detail/reply.hpp>
#include <corocache/redis/detail/request.hpp>
#include <corocache/redis/options.hpp>
#include <corocache/redis/topology_options.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corocache::detail::redis {

/// One node's connection, as a target of run_script / walk_prefix steps.
struct NodeTarget {
  Connection* conn = nullptr;
  std::shared_ptr<Connection> hold;  ///< cluster: keeps the node's handle alive
  asio::awaitable<Reply> exec(Request request, Duration timeout) const {
    return conn->exec(std::move(request), timeout);
  }
};

class Topology {
 public:
  /// One server.
  Topology(asio::any_io_executor ex, const RedisOptions& options)
      : main_(std::in_place, ex, options), pool_(ex, options) {}
  /// A cluster; `base` supplies the limits of the (unused) single-server pool.
  Topology(asio::any_io_executor ex, RedisClusterOptions options, const RedisOptions& base)
      : cluster_(std::make_shared<ClusterTopology>(ex, std::move(options))), pool_(ex, base) {}

  bool clustered() const noexcept { return cluster_ != nullptr; }
  /// The connection a hot call (GET, plain SET) may use directly, without routing: one
  /// server's (Sentinel's included); nullptr for a cluster.
  Connection* direct() noexcept { return cluster_ ? nullptr : &*main_; }
  ClusterTopology* cluster() const noexcept { return cluster_.get(); }

  /// Sends `request`, whose keys all share `key`'s slot (ignored for one server).
  asio::awaitable<Reply> exec(std::string_view key, Request request, Duration timeout) {
    if (!cluster_) [[likely]]
      return main_->exec(std::move(request), timeout);
    return ClusterTopology::exec(cluster_, cluster::key_slot(key), std::move(request), timeout);
  }

  /// The connection of every primary (one server: just it), waiting up to `timeout` for a
  /// cluster's slot map.
  asio::awaitable<std::vector<NodeTarget>> primaries(Duration timeout) {
    std::vector<NodeTarget> out;
    if (!cluster_) {
      out.push_back(NodeTarget{&*main_, nullptr});
      co_return out;
    }
    auto conns = co_await ClusterTopology::primaries(cluster_, timeout);
    for (auto& c : conns) out.push_back(NodeTarget{c.get(), std::move(c)});
    co_return out;
  }

  /// `keys` split by slot (one server: one group holding them all). Keeps each key's order.
  std::vector<std::vector<std::string>> by_slot(std::vector<std::string>& keys) const {
    std::vector<std::vector<std::string>> groups;
    if (!cluster_) {
      groups.push_back(std::move(keys));
      return groups;
    }
    return cluster::group_by_slot(keys);
  }

  /// The pool of blocking connections for a waiting pop on `key`; nullptr when a cluster
  /// does not know the key's owner (yet: see wait_ready). The caller holds it for its pop.
  std::shared_ptr<BlockingPool> blocking_pool(std::string_view key) {
    if (!cluster_) [[likely]]
      return std::shared_ptr<BlockingPool>(std::shared_ptr<BlockingPool>{}, &pool_);  // owned by this
    return cluster_->blocking_pool(cluster::key_slot(key));
  }
  /// A cluster: waits up to `until` for its first slot map; returns then, or at once when
  /// the seeds rejected AUTH or TLS (the call that follows reports it); shut_down once closed.
  asio::awaitable<void> wait_ready(std::chrono::steady_clock::time_point until) {
    return ClusterTopology::wait_ready(cluster_, until);
  }

  ConnectionStats connection_stats() const {
    return cluster_ ? cluster_->connection_stats() : main_->stats();
  }
  BlockingPool::Stats pool_stats() const { return cluster_ ? cluster_->pool_stats() : pool_.stats(); }

  void close() noexcept {
    if (main_) main_->close();
    if (cluster_) cluster_->close();
    pool_.close();
  }

 private:
  std::optional<Connection> main_;
  std::shared_ptr<ClusterTopology> cluster_;
  BlockingPool pool_;
};

/// The requests of one key's slot, as a target of run_script / peek_values / settling.
struct Routed {
  Topology& topology;
  std::string_view key;
  asio::awaitable<Reply> exec(Request request, Duration timeout = Duration::zero()) const {
    return topology.exec(key, std::move(request), timeout);
  }
};

}  // namespace corocache::detail::redis
