#pragma once
// The Redis Cluster topology: the slot map, one pipelined Connection per node, and the thin
// I/O shell that performs what ClusterRequestFsm (cluster_redirect.hpp) decides for each
// request: send to the slot's owner, follow MOVED / ASK, wait and route again after
// TRYAGAIN / CLUSTERDOWN / an unwritten send. Design: docs/redis_topology.md, "Cluster".

#include <corocache/backend.hpp>
#include <corocache/errors.hpp>
#include <corocache/redis/detail/blocking_pool.hpp>
#include <corocache/redis/detail/cluster_redirect.hpp>
#include <corocache/redis/detail/cluster_slots.hpp>
#include <corocache/redis/detail/cluster_walk.hpp>
#include <corocache/redis/detail/connection.hpp>
#include <corocache/redis/detail/pending.hpp>
#include <corocache/redis/detail/reply.hpp>
#include <corocache/redis/detail/request.hpp>
#include <corocache/redis/options.hpp>
#include <corocache/redis/topology_options.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace corocache::detail::redis {

/// The RedisOptions of one cluster node's connections (credentials, TLS, timeouts and the
/// connection tuning of the cluster options).
inline RedisOptions cluster_node_options(const RedisClusterOptions& c, const cluster::NodeAddress& node) {
  RedisOptions o;
  o.host = node.host;
  o.port = node.port;
  o.user = c.user;
  o.password = c.password;
  o.tls = c.tls;
  o.connect_timeout = c.connect_timeout;
  o.request_timeout = c.request_timeout;
  c.connection.apply_to(o);
  return o;
}

/// The options a cluster backend reports and takes its limits from: the first seed's.
inline RedisOptions cluster_base_options(const RedisClusterOptions& c) {
  if (c.seeds.empty()) throw std::invalid_argument("corocache: a Redis Cluster needs at least one seed");
  return cluster_node_options(c, cluster::NodeAddress{c.seeds.front().host, c.seeds.front().port});
}

/// Counters of a cluster topology (monotonic, except nodes).
struct ClusterStats {
  std::uint64_t moved = 0;             ///< MOVED replies followed
  std::uint64_t ask = 0;               ///< ASK replies followed
  std::uint64_t retries = 0;           ///< waits after TRYAGAIN / CLUSTERDOWN / unwritten link loss
  std::uint64_t refreshes = 0;         ///< slot maps installed (discovery included)
  std::uint64_t refresh_failures = 0;  ///< refreshes where no node answered with a usable map
  std::size_t nodes = 0;               ///< node connections open
};

class ClusterTopology : public std::enable_shared_from_this<ClusterTopology> {
 public:
  using Clock = std::chrono::steady_clock;
  using ConnectionPtr = std::shared_ptr<Connection>;
  using MapPtr = std::shared_ptr<const cluster::SlotMap>;

  ClusterTopology(asio::any_io_executor ex, RedisClusterOptions options)
      : executor_(std::move(ex)), options_(std::move(options)), map_(std::make_shared<cluster::SlotMap>()) {
    options_.validate();
    policy_.max_redirects = options_.max_redirects;
    policy_.retry_min = std::chrono::duration_cast<std::chrono::milliseconds>(options_.retry_min);
    policy_.retry_max = std::chrono::duration_cast<std::chrono::milliseconds>(options_.retry_max);
  }
  ClusterTopology(const ClusterTopology&) = delete;
  ClusterTopology& operator=(const ClusterTopology&) = delete;

  const RedisClusterOptions& options() const noexcept { return options_; }

  /// Sends `request` (every key in `slot`) to the slot's owner, following redirects and
  /// retrying within `timeout` (zero: request_timeout). Errors as Connection::exec; a
  /// request written before its link dropped fails with connection_lost, never resent.
  static asio::awaitable<Reply> exec(std::shared_ptr<ClusterTopology> self, int slot, Request request,
                                     Duration timeout) {
    ClusterTopology& t = *self;
    const Duration budget = timeout > Duration::zero() ? timeout : t.options_.request_timeout;
    const auto deadline = saturating_add(Clock::now(), budget);
    cluster::ClusterRequestFsm fsm(slot, deadline, t.policy_);
    const std::uint64_t asked_before = t.asks_finished();
    t.refresh_if_due();
    cluster::Action action = fsm.start(*t.map(), Clock::now());
    asio::steady_timer timer(t.executor_);
    std::string last_error;
    for (;;) {
      t.apply(action);
      if (action.kind == cluster::Action::Kind::complete) co_return std::move(fsm.reply());
      if (action.kind == cluster::Action::Kind::fail) {
        if (action.error == errc::timeout && t.map()->empty()) t.throw_undiscovered(asked_before, true);
        t.fail(action.error, fsm, last_error);
      }
      if (action.kind == cluster::Action::Kind::wait_then_send) {
        t.throw_if_closed();  // a closed topology would wait out the deadline (a send: connection())
        if (t.map()->empty()) t.throw_undiscovered(asked_before, false);
        t.retries_.fetch_add(1, std::memory_order_relaxed);
        timer.expires_after(action.delay);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        action = fsm.start(*t.map(), Clock::now());
        continue;
      }
      // send
      if (action.asking) t.ask_.fetch_add(1, std::memory_order_relaxed);
      const ConnectionPtr conn = t.connection(action.node);
      const Duration left = std::chrono::duration_cast<Duration>(deadline - Clock::now());
      if (left <= Duration::zero()) t.fail(errc::timeout, fsm, last_error);
      Request out = action.asking ? cluster::with_asking(request) : request;
      out.send_within = cluster::send_window(link_up(*conn), t.options_.connect_timeout);
      boost::system::error_code code;
      std::exception_ptr error;
      Reply reply;
      try {
        reply = co_await conn->exec(std::move(out), left);
      } catch (const boost::system::system_error& e) {
        code = e.code();
        last_error = detail::context_of(e);
        error = std::current_exception();
      }
      if (!code) {
        action = fsm.on_reply(std::move(reply), Clock::now());
        if (action.update_map) t.moved_.fetch_add(1, std::memory_order_relaxed);
      } else if (code == errc::connection_lost) {
        t.request_refresh();
        action = fsm.on_link_lost(true, Clock::now());
      } else if (code == errc::not_connected) {
        action = fsm.on_link_lost(false, Clock::now());
      } else {
        std::rethrow_exception(error);  // timeout, overloaded, auth_failed, cancelled...
      }
    }
  }

  /// The connections of every primary, slot-less ones included, for a walk over the whole
  /// key space (SCAN-based invalidation and flush), in walk order (cluster_walk.hpp: the
  /// source of a migration before the node importing from it). The map is fetched again
  /// first: a node added since the last refresh may already hold keys MIGRATEd onto it, and
  /// a walk that missed it would leave stale values behind. When no node answers before the
  /// deadline, the map already installed is used. Waits up to `timeout` for the first slot
  /// map.
  static asio::awaitable<std::vector<ConnectionPtr>> primaries(std::shared_ptr<ClusterTopology> self,
                                                               Duration timeout) {
    ClusterTopology& t = *self;
    const auto deadline =
        saturating_add(Clock::now(), timeout > Duration::zero() ? timeout : t.options_.request_timeout);
    co_await t.wait_for_map(deadline);
    const bool installed = co_await fetch_and_install(self, deadline);
    t.count_refresh(installed);
    const MapPtr m = t.map();
    std::vector<cluster::Migration> migrations;
    for (const auto& node : m->primaries()) {
      const ConnectionPtr conn = t.connection(node);  // named: no temporary across the co_await
      auto found = co_await own_migrations(*conn, deadline, t.options_.request_timeout);
      migrations.insert(migrations.end(), found.begin(), found.end());
    }
    std::vector<ConnectionPtr> out;
    for (const auto& node : cluster::walk_order(*m, migrations)) out.push_back(t.connection(node));
    co_return out;
  }

  /// Waits until the first slot map is known (discovery) or `until` passed; shut_down once
  /// closed.
  static asio::awaitable<void> wait_ready(std::shared_ptr<ClusterTopology> self, Clock::time_point until) {
    asio::steady_timer timer(self->executor_);
    Duration delay = self->options_.retry_min;
    const std::uint64_t asked_before = self->asks_finished();
    while (self->map()->empty() && Clock::now() < until) {
      self->throw_if_closed();
      self->request_refresh();
      if (self->failed_fatally_since(asked_before)) co_return;  // the pop's own call reports it
      timer.expires_at(std::min(until, saturating_add(Clock::now(), delay)));
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      delay = std::min<Duration>(delay * 2, self->options_.retry_max);
    }
  }

  /// The blocking pool of `slot`'s owner; nullptr while the slot has no known owner. The
  /// caller holds it for its pop: a pool whose node leaves the map meanwhile is retired,
  /// not destroyed.
  std::shared_ptr<BlockingPool> blocking_pool(int slot) {
    const MapPtr m = map();
    const auto* owner = m->primary_of(slot);
    if (!owner) return nullptr;
    std::lock_guard lock(mutex_);
    if (closed_) return nullptr;
    auto& pool = pools_[*owner];
    if (!pool) pool = std::make_shared<BlockingPool>(executor_, cluster_node_options(options_, *owner));
    return pool;
  }

  /// A blocking connection's node gave up a blocked command because its role changed (a
  /// primary demoted by a failover), or its link failed: the map may be stale.
  void note_blocking_failed() { request_refresh(); }

  /// A reply from a blocking connection said the slot moved: learn it.
  void note_redirect(const Reply& reply, const cluster::NodeAddress& origin) {
    const auto c = cluster::classify_reply(reply, origin);
    if (c.kind == cluster::ErrorClass::none || c.kind == cluster::ErrorClass::other) return;
    if (c.kind == cluster::ErrorClass::moved) {
      cluster::Action a;
      a.update_map = c.redirect;
      apply(a);
    }
    request_refresh();
  }

  /// Sums of the per-node counters, those of dropped node connections included (so that
  /// they never go down).
  ConnectionStats connection_stats() const {
    std::lock_guard lock(mutex_);
    ConnectionStats s = departed_stats_;
    for (const auto& [node, conn] : conns_) s += conn->stats();
    return s;
  }
  BlockingPool::Stats pool_stats() const {
    std::lock_guard lock(mutex_);
    BlockingPool::Stats s;
    auto pools = live_pools();
    for (const auto& pool : pools) {
      const auto p = pool->stats();
      s.open += p.open;
      s.idle += p.idle;
      s.waiting += p.waiting;
      s.peak += p.peak;
    }
    return s;
  }
  ClusterStats stats() const {
    ClusterStats s;
    s.moved = moved_.load(std::memory_order_relaxed);
    s.ask = ask_.load(std::memory_order_relaxed);
    s.retries = retries_.load(std::memory_order_relaxed);
    s.refreshes = refreshes_.load(std::memory_order_relaxed);
    s.refresh_failures = refresh_failures_.load(std::memory_order_relaxed);
    std::lock_guard lock(mutex_);
    s.nodes = conns_.size();
    return s;
  }

  void close() noexcept {
    std::map<cluster::NodeAddress, ConnectionPtr> conns;
    {
      std::lock_guard lock(mutex_);
      if (closed_) return;
      closed_ = true;
      conns.swap(conns_);
      for (auto& pool : live_pools()) pool->close();  // pools stay: a pop may still release into one
    }
    for (auto& [node, conn] : conns) conn->close();
  }

 private:
  static bool link_up(const Connection& conn) {
    const auto s = conn.stats();
    return s.connects > s.link_drops;
  }
  [[noreturn]] void fail(errc e, cluster::ClusterRequestFsm& fsm, const std::string& transport) const {
    std::string why = "corocache redis cluster: slot " + std::to_string(fsm.slot());
    if (fsm.reply().is_error()) why += ": " + fsm.reply().str;
    if (!transport.empty()) why += " (" + transport + ")";
    throw_error(e, why);
  }

  MapPtr map() const {
    std::lock_guard lock(mutex_);
    return map_;
  }

  /// How many rounds of asking the nodes for a map have finished (installed or not).
  std::uint64_t asks_finished() const {
    std::lock_guard lock(mutex_);
    return asks_finished_;
  }
  /// A round that finished after `asked_before` rounds found only rejected AUTH or TLS.
  bool failed_fatally_since(std::uint64_t asked_before) const {
    std::lock_guard lock(mutex_);
    return discovery_failure_.fatal() && failed_at_ask_ > asked_before;
  }

  /// For a call that found no slot map and had seen `asked_before` rounds of asking when it
  /// began: throws the discovery failure when it is fatal and came from a round that ended
  /// since (an older one may be stale: the server may have been fixed); when `at_deadline`,
  /// not_connected otherwise, naming each seed's reason if any was asked yet.
  void throw_undiscovered(std::uint64_t asked_before, bool at_deadline) const {
    cluster::DiscoveryFailure failure;
    bool fresh = false;
    {
      std::lock_guard lock(mutex_);
      failure = discovery_failure_;
      fresh = failed_at_ask_ > asked_before;
    }
    if (failure.fatal() && fresh) throw_error(failure.code(), failure.message());
    // A stale rejection is no verdict on this call: it was just never sent.
    if (at_deadline) throw_error(failure.fatal() ? errc::not_connected : failure.code(), failure.message());
  }

  void throw_if_closed() const {
    std::lock_guard lock(mutex_);
    if (closed_) throw_error(errc::shut_down, "corocache redis cluster: closed");
  }

  ConnectionPtr connection(const cluster::NodeAddress& node) {
    std::lock_guard lock(mutex_);
    if (closed_) throw_error(errc::shut_down, "corocache redis cluster: closed");
    auto& conn = conns_[node];
    if (!conn) conn = std::make_shared<Connection>(executor_, cluster_node_options(options_, node));
    return conn;
  }

  /// The map side effects of an action (a MOVED slot at once, a refresh soon).
  void apply(const cluster::Action& a) {
    if (a.update_map) {
      std::lock_guard lock(mutex_);
      auto next = std::make_shared<cluster::SlotMap>(*map_);
      next->apply_moved(a.update_map->slot, a.update_map->to);
      map_ = std::move(next);
    }
    if (a.refresh_map) request_refresh();
  }

  void refresh_if_due() {
    if (options_.refresh_interval <= Duration::zero()) return;
    const auto last = last_refresh_.load(std::memory_order_relaxed);
    if (Clock::now().time_since_epoch().count() - last >=
        std::chrono::duration_cast<Clock::duration>(options_.refresh_interval).count())
      request_refresh();
  }

  /// Starts a refresh unless one is running or one started less than retry_min ago.
  void request_refresh() {
    {
      std::lock_guard lock(mutex_);
      if (closed_ || refreshing_) return;
      const auto now = Clock::now();
      if (now - last_refresh_start_ < std::max<Duration>(options_.retry_min, std::chrono::milliseconds(10)))
        return;
      refreshing_ = true;
      last_refresh_start_ = now;
    }
    asio::co_spawn(executor_, refresh(shared_from_this()), asio::detached);
  }

  std::vector<cluster::NodeAddress> refresh_candidates() const {
    std::vector<cluster::NodeAddress> seeds;
    for (const auto& seed : options_.seeds) seeds.push_back(cluster::NodeAddress{seed.host, seed.port});
    const MapPtr m = map();
    std::lock_guard lock(mutex_);
    return cluster::refresh_order(*m, seeds, [&](const cluster::NodeAddress& n) {
      const auto it = conns_.find(n);
      return it != conns_.end() && link_up(*it->second);
    });
  }

  static asio::awaitable<void> refresh(std::shared_ptr<ClusterTopology> self) {
    ClusterTopology& t = *self;
    const bool installed = co_await fetch_and_install(self, Clock::time_point::max());
    t.count_refresh(installed);
    std::lock_guard lock(t.mutex_);
    t.refreshing_ = false;
  }

  /// Asks the candidates in turn for the slot map and installs the first usable one; false
  /// when none answered with one (or `deadline` passed first). Concurrent installs are
  /// harmless: each map is whole, and the later one is at least as new.
  static asio::awaitable<bool> fetch_and_install(std::shared_ptr<ClusterTopology> self,
                                                 Clock::time_point deadline) {
    ClusterTopology& t = *self;
    cluster::DiscoveryFailure failure;
    for (const auto& node : t.refresh_candidates()) {
      const auto left = std::min<Duration>(std::chrono::duration_cast<Duration>(deadline - Clock::now()),
                                           t.options_.request_timeout);
      if (left <= Duration::zero()) break;
      ConnectionPtr conn;
      try {
        conn = t.connection(node);
      } catch (...) {
        break;  // closed
      }
      const Duration window = cluster::send_window(link_up(*conn), t.options_.connect_timeout);
      auto answer = co_await ask_for_map(*conn, node, left, window, t.options_.tls.enabled);
      if (!answer.result.ok() || answer.result.map.empty()) {
        failure.add(answer.code, node, answer.result.ok() ? "no slot has an owner" : answer.result.error);
        continue;
      }
      std::vector<ConnectionPtr> departed;  // closed here, after the lock, unless a call holds one
      {
        std::lock_guard lock(t.mutex_);
        t.map_ = std::make_shared<cluster::SlotMap>(std::move(answer.result.map));
        t.discovery_failure_ = {};
        ++t.asks_finished_;
        t.take_departed(departed);
      }
      co_return true;
    }
    std::lock_guard lock(t.mutex_);
    ++t.asks_finished_;
    if (!failure.empty()) {
      t.discovery_failure_ = std::move(failure);
      t.failed_at_ask_ = t.asks_finished_;
    }
    co_return false;
  }

  void count_refresh(bool installed) {
    (installed ? refreshes_ : refresh_failures_).fetch_add(1, std::memory_order_relaxed);
    if (installed) last_refresh_.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  }

  /// Under mutex_: moves out the connections to nodes that are not primaries of the map
  /// (failed over, resharded away, a seed asked for the map), so that they stop reconnecting
  /// and health-checking. Each closes when the last call holding it is done; a node that
  /// comes back gets a new one. Those nodes' blocking pools are retired: idle connections
  /// close now, busy ones when their pop ends (BlockingPool::retire).
  void take_departed(std::vector<ConnectionPtr>& out) {
    const auto primaries = map_->primaries();
    auto departed = [&](const cluster::NodeAddress& node) {
      return std::find(primaries.begin(), primaries.end(), node) == primaries.end();
    };
    for (auto it = conns_.begin(); it != conns_.end();) {
      if (!departed(it->first)) {
        ++it;
        continue;
      }
      departed_stats_ += it->second->stats();
      out.push_back(std::move(it->second));
      it = conns_.erase(it);
    }
    std::erase_if(retired_pools_, [](const std::weak_ptr<BlockingPool>& p) { return p.expired(); });
    for (auto it = pools_.begin(); it != pools_.end();) {
      if (!departed(it->first)) {
        ++it;
        continue;
      }
      it->second->retire();
      retired_pools_.push_back(it->second);  // kept alive only by the pops still using it
      it = pools_.erase(it);
    }
  }

  /// Under mutex_: the pools of the map's nodes and the retired ones still in use.
  std::vector<std::shared_ptr<BlockingPool>> live_pools() const {
    std::vector<std::shared_ptr<BlockingPool>> out;
    for (const auto& [node, pool] : pools_) out.push_back(pool);
    for (const auto& weak : retired_pools_)
      if (auto pool = weak.lock()) out.push_back(std::move(pool));
    return out;
  }

  /// The slots `conn`'s node is migrating or importing (CLUSTER NODES, its own line); none
  /// when it does not answer in time: the walk then keeps the map's order.
  static asio::awaitable<std::vector<cluster::Migration>> own_migrations(Connection& conn,
                                                                         Clock::time_point deadline,
                                                                         Duration request_timeout) {
    const auto left =
        std::min<Duration>(std::chrono::duration_cast<Duration>(deadline - Clock::now()), request_timeout);
    std::vector<cluster::Migration> found;
    if (left <= Duration::zero()) co_return found;
    try {
      Request nodes;
      nodes.add("CLUSTER", "NODES");
      nodes.control = true;
      const Reply reply = co_await conn.exec(std::move(nodes), left);
      if (reply.is_string() || reply.is_status()) found = cluster::parse_own_migrations(reply.str);
    } catch (const std::exception&) {
      // The walk itself reports a node it cannot reach.
    }
    co_return found;
  }

  struct MapAnswer {
    cluster::SlotMapResult result;
    errc code = errc::protocol_error;  // what kind of failure, when the result has an error
  };

  /// CLUSTER SHARDS, or CLUSTER SLOTS when SHARDS is refused; an error text on failure.
  static asio::awaitable<MapAnswer> ask_for_map(Connection& conn, cluster::NodeAddress node, Duration timeout,
                                                Duration window, bool tls) {
    try {
      Request shards;
      shards.add("CLUSTER", "SHARDS");
      shards.control = true;
      shards.send_within = window;
      const Reply reply = co_await conn.exec(std::move(shards), timeout);
      if (!reply.is_error()) co_return MapAnswer{cluster::parse_cluster_shards(reply, node, tls)};
      Request slots;
      slots.add("CLUSTER", "SLOTS");
      slots.control = true;
      const Reply fallback = co_await conn.exec(std::move(slots), timeout);
      co_return MapAnswer{cluster::parse_cluster_slots(fallback, node)};
    } catch (const boost::system::system_error& e) {
      const auto code = e.code() == errc::auth_failed  ? errc::auth_failed
                        : e.code() == errc::tls_failed ? errc::tls_failed
                                                       : errc::not_connected;
      co_return MapAnswer{cluster::SlotMapResult{cluster::SlotMap{}, detail::context_of(e)}, code};
    } catch (const std::exception& e) {
      co_return MapAnswer{cluster::SlotMapResult{cluster::SlotMap{}, e.what()}};
    }
  }

  /// Waits (polling every retry_min .. retry_max) until a map with an owner for some slot is
  /// installed; as throw_undiscovered() otherwise, shut_down once closed.
  asio::awaitable<void> wait_for_map(Clock::time_point deadline) {
    asio::steady_timer timer(executor_);
    Duration delay = options_.retry_min;
    const std::uint64_t asked_before = asks_finished();
    for (;;) {
      if (!map()->empty()) co_return;
      throw_if_closed();
      request_refresh();
      throw_undiscovered(asked_before, false);
      const auto now = Clock::now();
      if (now >= deadline) throw_undiscovered(asked_before, true);
      timer.expires_at(std::min(deadline, saturating_add(now, delay)));  // the last poll at the deadline
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      delay = std::min<Duration>(delay * 2, options_.retry_max);
    }
  }

  asio::any_io_executor executor_;
  RedisClusterOptions options_;
  cluster::RedirectPolicy policy_;
  mutable std::mutex mutex_;  // guards map_, discovery_failure_, asks_finished_, failed_at_ask_,
                              // conns_, departed_stats_, pools_, retired_pools_, closed_, refreshing_,
                              // last_refresh_start_
  MapPtr map_;
  cluster::DiscoveryFailure discovery_failure_;  // of the last round of asking that installed no map
  std::uint64_t asks_finished_ = 0;              // rounds of asking for a map that ended
  std::uint64_t failed_at_ask_ = 0;              // the round discovery_failure_ comes from
  std::map<cluster::NodeAddress, ConnectionPtr> conns_;
  ConnectionStats departed_stats_;  // the counters of connections take_departed dropped
  std::map<cluster::NodeAddress, std::shared_ptr<BlockingPool>> pools_;
  std::vector<std::weak_ptr<BlockingPool>> retired_pools_;  // of departed nodes, while pops use them
  bool closed_ = false;
  bool refreshing_ = false;
  Clock::time_point last_refresh_start_{};
  std::atomic<Clock::rep> last_refresh_{0};
  std::atomic<std::uint64_t> moved_{0}, ask_{0}, retries_{0}, refreshes_{0}, refresh_failures_{0};
};

}  // namespace corocache::detail::redis
