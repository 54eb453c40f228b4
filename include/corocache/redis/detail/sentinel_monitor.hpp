#pragma once
// Sentinel's I/O shell (docs/redis_topology.md, Sentinel). One SentinelMonitor per backend,
// shared by every connection of it through RedisOptions::sentinel:
// - discover(): asks the sentinels for the primary on short-lived connections (TCP, TLS,
//   AUTH with the sentinel credentials), each question bounded by sentinel_timeout; whom
//   to ask, when to wait and when to give up is DiscoveryFsm's decision.
// - one pub/sub connection to one sentinel, SUBSCRIBE +switch-master, re-established to the
//   next sentinel when it drops or goes silent; each notice for our master name is handed
//   to every registered connection. It runs while at least one connection is registered.
// The connection itself checks ROLE in its handshake and drops its link on -READONLY.

#include <corocache/redis/detail/connect_io.hpp>
#include <corocache/redis/detail/reader.hpp>
#include <corocache/redis/detail/sentinel_discovery.hpp>
#include <corocache/redis/detail/tls.hpp>
#include <corocache/redis/detail/tls_io.hpp>
#include <corocache/redis/options.hpp>
#include <corocache/redis/topology_options.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace corocache::detail::redis {

/// What discover() found: the primary's address, or why not.
struct SentinelDiscovery {
  std::optional<sentinel::NodeAddress> primary;
  LinkFailure failure;     ///< when !primary
  bool rejection = false;  ///< no sentinel monitors the name: fail waiting requests at once
};

class SentinelMonitor : public std::enable_shared_from_this<SentinelMonitor> {
 public:
  using NodeAddress = sentinel::NodeAddress;
  using Listener = std::function<void(const sentinel::SwitchMaster&)>;

  /// Throws std::invalid_argument for bad options or TLS files OpenSSL cannot load.
  SentinelMonitor(asio::any_io_executor ex, RedisSentinelOptions options)
      : options_((options.validate(), std::move(options))),
        tls_context_(options_.tls.enabled ? link_io::make_tls_context(options_.tls) : nullptr),
        list_(to_nodes(options_.sentinels)),
        watch_strand_(asio::make_strand(ex)),
        watch_timer_(watch_strand_) {}

  const RedisSentinelOptions& options() const noexcept { return options_; }
  /// Successful discoveries and +switch-master notices for our name (for tests).
  std::uint64_t discoveries() const noexcept { return discoveries_.load(std::memory_order_relaxed); }
  std::uint64_t switch_notices() const noexcept { return notices_.load(std::memory_order_relaxed); }
  /// The sentinels known now, in the order they are asked (learnt ones included).
  std::vector<NodeAddress> sentinels() const {
    std::lock_guard lock(mutex_);
    return list_.addresses();
  }

  /// Asks the sentinels in turn until one names the primary, or `deadline`. Runs on the
  /// caller's executor (a connection's strand). The caller checks ROLE on the address.
  asio::awaitable<SentinelDiscovery> discover(Clock::time_point deadline) {
    auto ex = co_await asio::this_coro::executor;
    sentinel::SentinelList list(snapshot());
    sentinel::DiscoveryFsm fsm(list, options_.master_name, deadline, policy());
    asio::steady_timer timer(ex);
    std::vector<NodeAddress> learnt;
    Request question = sentinel::master_addr_request(options_.master_name);
    question.append(sentinel::sentinels_request(options_.master_name));
    auto action = fsm.start(Clock::now());
    for (;;) {
      using Kind = sentinel::DiscoveryAction::Kind;
      if (action.kind == Kind::ask_sentinel) {
        const auto limit =
            std::min(deadline, Clock::now() + sentinel::sentinel_timeout(options_.connect_timeout));
        auto answer = co_await ask(ex, action.node, question, limit);
        if (auto* failure = std::get_if<LinkFailure>(&answer)) {
          action = fsm.on_sentinel_error(failure->message, Clock::now());
        } else {
          auto& replies = std::get<std::vector<Reply>>(answer);
          const auto more = sentinel::parse_sentinels(replies.at(1));
          learnt.insert(learnt.end(), more.begin(), more.end());
          action = fsm.on_sentinel_reply(replies.at(0), Clock::now());
        }
      } else if (action.kind == Kind::wait) {
        timer.expires_after(action.delay);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        action = fsm.resume(Clock::now());
      } else if (action.kind == Kind::fail) {
        co_return SentinelDiscovery{std::nullopt, LinkFailure{action.error, action.message},
                                    action.rejection};
      } else {  // check_role (done never comes: the connection checks ROLE itself)
        list.merge(learnt);
        {
          std::lock_guard lock(mutex_);
          list_ = list;
        }
        discoveries_.fetch_add(1, std::memory_order_relaxed);
        co_return SentinelDiscovery{action.node, {}, false};
      }
    }
  }

  /// Registers a connection for +switch-master notices (the listener is called on the
  /// watcher's strand and posts to the connection's own). The first one starts the watcher.
  std::uint64_t add_listener(Listener listener) {
    std::uint64_t id = 0;
    bool start = false;
    {
      std::lock_guard lock(mutex_);
      id = ++last_listener_;
      listeners_.emplace(id, std::move(listener));
      start = !std::exchange(watching_, true);
    }
    // Outside the lock: co_spawn may start the watcher inline, and it takes the lock.
    if (start) asio::co_spawn(watch_strand_, watch(shared_from_this()), asio::detached);
    return id;
  }
  /// The last one stops the watcher (its sentinel connection is closed).
  void remove_listener(std::uint64_t id) {
    bool stop = false;
    {
      std::lock_guard lock(mutex_);
      listeners_.erase(id);
      stop = listeners_.empty() && watching_;
    }
    if (stop) asio::post(watch_strand_, [self = shared_from_this()] { self->interrupt_watch(); });
  }

 private:
  using Socket = link_io::Socket;

  // A connection to one sentinel.
  struct SentinelLink {
    explicit SentinelLink(const asio::any_io_executor& ex) : socket(ex) {}
    Socket socket;
    std::shared_ptr<link_io::TlsStream> tls;
    Reader reader{ReaderLimits{std::size_t{1} << 20, std::size_t{1} << 16}};
    std::vector<char> buf = std::vector<char>(16 * 1024);
  };

  static std::vector<NodeAddress> to_nodes(const std::vector<RedisAddress>& in) {
    std::vector<NodeAddress> out;
    for (const auto& a : in) out.push_back(NodeAddress{a.host, a.port});
    return out;
  }
  std::vector<NodeAddress> snapshot() const {
    std::lock_guard lock(mutex_);
    return list_.addresses();
  }
  sentinel::DiscoveryPolicy policy() const {
    return {std::chrono::duration_cast<std::chrono::milliseconds>(options_.retry_min),
            std::chrono::duration_cast<std::chrono::milliseconds>(options_.retry_max)};
  }
  Request with_auth(const Request& commands) const {
    Request r;
    if (!options_.sentinel_password.empty()) {
      if (options_.sentinel_user.empty())
        r.add("AUTH", options_.sentinel_password);
      else
        r.add("AUTH", options_.sentinel_user, options_.sentinel_password);
    }
    r.append(commands);
    return r;
  }

  // TCP (each address until `deadline`) and, with TLS, the TLS handshake.
  asio::awaitable<std::optional<LinkFailure>> open(SentinelLink& link, const NodeAddress& node,
                                                   Clock::time_point deadline) {
    link_io::Endpoints eps;
    boost::system::error_code ec;
    const auto ip = asio::ip::make_address(node.host, ec);
    if (!ec) {
      const asio::ip::tcp::endpoint ep(ip, node.port);
      eps.list.emplace_back(ep);
      eps.texts.push_back(link_io::endpoint_text(ep));
    } else {
      std::shared_ptr<asio::ip::tcp::resolver> hold;
      auto resolved = co_await link_io::resolve(asio::make_strand(link.socket.get_executor()), node.host,
                                                node.port, deadline, hold);
      if (auto* f = std::get_if<LinkFailure>(&resolved)) co_return std::move(*f);
      eps = std::get<link_io::Endpoints>(std::move(resolved));
    }
    const auto left = std::chrono::duration_cast<Duration>(deadline - Clock::now());
    if (left <= Duration::zero()) co_return LinkFailure{errc::not_connected, "no time left to connect"};
    auto failure = co_await link_io::connect_any(link.socket, eps, left, never_closed_);
    if (failure || !tls_context_) co_return failure;
    link.socket.set_option(asio::ip::tcp::no_delay(true), ec);
    link.tls = std::make_shared<link_io::TlsStream>(link.socket, *tls_context_);
    auto tls_failure =
        co_await link_io::tls_handshake(*link.tls, tls_peer(options_.tls, node.host), deadline);
    co_return tls_failure;
  }

  // Writes `request` (AUTH first when configured) and reads its replies until `deadline`;
  // an AUTH error is a failure, the other replies are returned as they are.
  template <class Stream>
  asio::awaitable<std::variant<LinkFailure, std::vector<Reply>>> exchange(Stream& stream, SentinelLink& link,
                                                                          const Request& commands,
                                                                          Clock::time_point deadline) {
    using namespace asio::experimental::awaitable_operators;
    const Request request = with_auth(commands);
    asio::steady_timer timer(link.socket.get_executor(), deadline);
    auto wrote = co_await (
        asio::async_write(stream, asio::buffer(request.bytes), asio::as_tuple(asio::use_awaitable)) ||
        timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (wrote.index() == 1) co_return LinkFailure{errc::not_connected, "timed out"};
    if (auto [ec, n] = std::get<0>(wrote); ec)
      co_return LinkFailure{errc::not_connected, "write: " + ec.message()};
    std::vector<Reply> replies;
    while (replies.size() < request.replies) {
      Reply reply;
      const auto status = link.reader.next(reply);
      if (status == Reader::Status::error || status == Reader::Status::too_large)
        co_return LinkFailure{errc::protocol_error, "reply: " + link.reader.error_message()};
      if (status == Reader::Status::reply) {
        replies.push_back(std::move(reply));
        continue;
      }
      auto got =
          co_await (stream.async_read_some(asio::buffer(link.buf), asio::as_tuple(asio::use_awaitable)) ||
                    timer.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (got.index() == 1) co_return LinkFailure{errc::not_connected, "no answer in time"};
      auto [ec, n] = std::get<0>(got);
      if (ec) co_return LinkFailure{errc::not_connected, "read: " + ec.message()};
      link.reader.feed(link.buf.data(), n);
    }
    if (request.replies > commands.replies) {
      if (replies.front().is_error())
        co_return LinkFailure{errc::auth_failed, "AUTH rejected: " + replies.front().str};
      replies.erase(replies.begin());
    }
    co_return replies;
  }

  asio::awaitable<std::variant<LinkFailure, std::vector<Reply>>> ask(asio::any_io_executor ex,
                                                                     NodeAddress node,
                                                                     const Request& commands,
                                                                     Clock::time_point deadline) {
    SentinelLink link(ex);
    auto failure = co_await open(link, node, deadline);
    if (failure) co_return std::move(*failure);
    if (link.tls) {
      auto answer = co_await exchange(*link.tls, link, commands, deadline);
      co_return answer;
    }
    auto answer = co_await exchange(link.socket, link, commands, deadline);
    co_return answer;
  }

  // --- the +switch-master watcher (on watch_strand_) ----------------------------------------

  bool keep_watching() {
    std::lock_guard lock(mutex_);
    if (listeners_.empty()) watching_ = false;
    return watching_;
  }
  void interrupt_watch() {
    boost::system::error_code ignored;
    if (watch_link_) watch_link_->socket.close(ignored);
    watch_timer_.cancel();
  }
  void notify(const sentinel::SwitchMaster& notice) {
    notices_.fetch_add(1, std::memory_order_relaxed);
    std::vector<Listener> to_call;
    {
      std::lock_guard lock(mutex_);
      for (const auto& [id, l] : listeners_) to_call.push_back(l);
    }
    for (const auto& l : to_call) l(notice);
  }

  static asio::awaitable<void> watch(std::shared_ptr<SentinelMonitor> self) {
    auto ex = co_await asio::this_coro::executor;
    std::size_t index = 0;
    auto delay = self->options_.retry_min;
    while (self->keep_watching()) {
      const auto nodes = self->snapshot();
      const NodeAddress node = nodes.at(index % nodes.size());
      SentinelLink link(ex);
      self->watch_link_ = &link;
      const auto started = Clock::now();
      auto failure = co_await self->open(link, node, Clock::now() + self->options_.connect_timeout);
      if (!failure) {
        if (link.tls)
          co_await self->listen(*link.tls, link);
        else
          co_await self->listen(link.socket, link);
      }
      self->watch_link_ = nullptr;
      // A subscription that lived resets the backoff; the next try goes to the next sentinel.
      if (Clock::now() - started > std::chrono::seconds(1)) delay = self->options_.retry_min;
      ++index;
      if (!self->keep_watching()) break;
      self->watch_timer_.expires_after(delay);
      co_await self->watch_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
      delay = std::min(delay * 2, self->options_.retry_max);
    }
  }

  // SUBSCRIBE, then hand out notices until the link drops, the watcher stops, or the
  // sentinel is silent for two idle periods (a PING after the first one).
  template <class Stream>
  asio::awaitable<void> listen(Stream& stream, SentinelLink& link) {
    using namespace asio::experimental::awaitable_operators;
    const Request subscribe = with_auth(sentinel::switch_master_subscription());
    auto wrote = co_await asio::async_write(stream, asio::buffer(subscribe.bytes),
                                            asio::as_tuple(asio::use_awaitable));
    if (std::get<0>(wrote)) co_return;
    Request ping;
    ping.add("PING");
    const auto idle = std::max<Duration>(options_.connect_timeout, std::chrono::seconds(1));
    bool pinged = false;
    while (keep_watching()) {
      Reply reply;
      const auto status = link.reader.next(reply);
      if (status == Reader::Status::error || status == Reader::Status::too_large) co_return;
      if (status == Reader::Status::reply) {
        if (reply.is_error()) co_return;  // AUTH or SUBSCRIBE refused: try another sentinel
        if (auto notice = sentinel::parse_switch_master(reply, options_.master_name)) notify(*notice);
        continue;
      }
      watch_timer_.expires_after(idle);
      auto got =
          co_await (stream.async_read_some(asio::buffer(link.buf), asio::as_tuple(asio::use_awaitable)) ||
                    watch_timer_.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (got.index() == 1) {
        if (pinged || !keep_watching()) co_return;
        pinged = true;
        auto sent =
            co_await asio::async_write(stream, asio::buffer(ping.bytes), asio::as_tuple(asio::use_awaitable));
        if (std::get<0>(sent)) co_return;
        continue;
      }
      auto [ec, n] = std::get<0>(got);
      if (ec) co_return;
      pinged = false;
      link.reader.feed(link.buf.data(), n);
    }
  }

  RedisSentinelOptions options_;
  std::shared_ptr<link_io::TlsContext> tls_context_;
  mutable std::mutex mutex_;
  sentinel::SentinelList list_;                  // guarded by mutex_
  std::map<std::uint64_t, Listener> listeners_;  // guarded by mutex_
  std::uint64_t last_listener_ = 0;              // guarded by mutex_
  bool watching_ = false;                        // guarded by mutex_: a watcher coroutine runs
  asio::strand<asio::any_io_executor> watch_strand_;
  asio::steady_timer watch_timer_;      // watch_strand_ only
  SentinelLink* watch_link_ = nullptr;  // watch_strand_ only
  std::atomic<bool> never_closed_{false};
  std::atomic<std::uint64_t> discoveries_{0};
  std::atomic<std::uint64_t> notices_{0};
};

/// The options of the backend's connections for `sentinel` (one monitor shared by all).
inline RedisOptions sentinel_connection_options(asio::any_io_executor ex, RedisSentinelOptions sentinel) {
  sentinel.validate();
  RedisOptions o;
  // host/port are not used for connecting (the monitor names the primary); they only keep
  // RedisOptions::validate() meaningful.
  o.host = sentinel.sentinels.front().host;
  o.port = sentinel.sentinels.front().port;
  o.db = sentinel.db;
  o.user = sentinel.user;
  o.password = sentinel.password;
  o.tls = sentinel.tls;
  o.connect_timeout = sentinel.connect_timeout;
  o.request_timeout = sentinel.request_timeout;
  sentinel.connection.apply_to(o);
  o.sentinel = std::make_shared<SentinelMonitor>(std::move(ex), std::move(sentinel));
  return o;
}

}  // namespace corocache::detail::redis
