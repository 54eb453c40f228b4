#pragma once
// The I/O steps of establishing a link, as the link state machine (link_fsm.hpp) decides
// them: resolve the host (bounded), connect to each address in turn with its own timeout
// (ConnectPlan), and run the AUTH/SELECT handshake (handshake_request +
// HandshakeClassifier) on the connected socket or, with TLS, on the TLS stream once its
// handshake (tls_io.hpp) is done; both bounded by one connect_timeout.

#include <corocache/redis/detail/link_fsm.hpp>
#include <corocache/redis/detail/pending.hpp>
#include <corocache/redis/detail/reader.hpp>
#include <corocache/redis/detail/tls_io.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace corocache::detail::redis::link_io {

namespace asio = boost::asio;
using Strand = asio::strand<asio::any_io_executor>;
using Socket = asio::generic::stream_protocol::socket;

struct Endpoints {
  std::vector<Socket::endpoint_type> list;
  std::vector<std::string> texts;  // for error messages
};

inline std::string endpoint_text(const asio::ip::tcp::endpoint& ep) {
  const auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

/// Name resolution with a deadline. Asio's resolver cannot be interrupted (getaddrinfo runs
/// to completion in a background thread), so the attempt stops waiting at the deadline and
/// the resolver finishes on its own, holding its state alive. `hold` lets close() cancel it.
inline asio::awaitable<std::variant<LinkFailure, Endpoints>> resolve(
    Strand strand, std::string host, std::uint16_t port, Clock::time_point deadline,
    std::shared_ptr<asio::ip::tcp::resolver>& hold) {
  struct Race {
    explicit Race(const Strand& s) : resolver(s), timer(s) {}
    asio::ip::tcp::resolver resolver;
    asio::steady_timer timer;
    std::optional<asio::any_completion_handler<void()>> handler;
    boost::system::error_code ec;
    bool timed_out = false;
    Endpoints endpoints;
    void finish() {
      if (!handler) return;
      timer.cancel();
      auto h = std::move(*handler);
      handler.reset();
      // (Boost 1.81's any_completion_handler cannot be passed to asio::dispatch itself.)
      asio::post(timer.get_executor(), [h = std::move(h)]() mutable {
        auto ex = asio::get_associated_executor(h);
        asio::dispatch(ex, [h = std::move(h)]() mutable { std::move(h)(); });
      });
    }
  };
  auto race = std::make_shared<Race>(strand);
  hold = std::shared_ptr<asio::ip::tcp::resolver>(race, &race->resolver);
  co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
      [&](auto handler) {
        race->handler.emplace(std::move(handler));
        race->timer.expires_at(deadline);
        race->timer.async_wait([race](boost::system::error_code ec) {
          if (ec) return;
          race->timed_out = true;
          race->finish();
        });
        race->resolver.async_resolve(
            host, std::to_string(port),
            [race](boost::system::error_code ec, asio::ip::tcp::resolver::results_type r) {
              race->ec = ec;
              for (const auto& entry : r) {
                race->endpoints.list.emplace_back(entry.endpoint());
                race->endpoints.texts.push_back(endpoint_text(entry.endpoint()));
              }
              race->finish();
            });
      },
      asio::use_awaitable);
  hold.reset();
  if (race->timed_out) co_return LinkFailure{errc::not_connected, "name resolution timed out"};
  if (race->ec) co_return LinkFailure{errc::not_connected, "cannot resolve host: " + race->ec.message()};
  co_return std::move(race->endpoints);
}

/// The addresses of one attempt: the unix socket, an IP literal as it is, or `host`
/// resolved (bounded by `deadline`; `hold` as in resolve()).
inline asio::awaitable<std::variant<LinkFailure, Endpoints>> endpoints_for(
    Strand strand, const std::string& unix_socket, const std::string& host, std::uint16_t port,
    Clock::time_point deadline, std::shared_ptr<asio::ip::tcp::resolver>& hold) {
  Endpoints endpoints;
  if (!unix_socket.empty()) {
    endpoints.list.emplace_back(asio::local::stream_protocol::endpoint(unix_socket));
    endpoints.texts.push_back("unix:" + unix_socket);
    co_return endpoints;
  }
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) {
    auto resolved = co_await resolve(std::move(strand), host, port, deadline, hold);
    co_return resolved;
  }
  const asio::ip::tcp::endpoint ep(address, port);
  endpoints.list.emplace_back(ep);
  endpoints.texts.push_back(endpoint_text(ep));
  co_return endpoints;
}

/// Connects `socket` to the first address that accepts, each tried for connect_timeout.
inline asio::awaitable<std::optional<LinkFailure>> connect_any(Socket& socket, const Endpoints& eps,
                                                               Duration per_address,
                                                               const std::atomic<bool>& closed) {
  using namespace asio::experimental::awaitable_operators;
  ConnectPlan plan(eps.list.size(), per_address);
  auto action = plan.start();
  while (action.step == ConnectPlan::Step::connect) {
    if (closed.load(std::memory_order_acquire)) co_return LinkFailure{errc::shut_down, "closed"};
    const auto& ep = eps.list[action.address];
    const auto& text = eps.texts[action.address];
    boost::system::error_code ec;
    socket.close(ec);
    socket.open(ep.protocol(), ec);
    if (ec) {
      action = plan.on_error(text, "socket: " + ec.message());
      continue;
    }
    asio::steady_timer timer(socket.get_executor(), saturating_add(Clock::now(), action.timeout));
    auto outcome = co_await (socket.async_connect(ep, asio::as_tuple(asio::use_awaitable)) ||
                             timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (outcome.index() == 1) {
      action = plan.on_timeout(text);
      continue;
    }
    if (auto [cec] = std::get<0>(outcome); cec) {
      action = plan.on_error(text, "connect: " + cec.message());
      continue;
    }
    action = plan.on_connected();
  }
  if (action.step == ConnectPlan::Step::failed) co_return plan.failure();
  co_return std::nullopt;
}

/// For the handshake: only ROLE's reply may outgrow the configured limits
/// (HandshakeClassifier::role_is_next). The connection's own answer returns afterwards.
class ReaderWideningScope {
 public:
  ReaderWideningScope(Reader& reader, HandshakeClassifier& classify)
      : reader_(reader), saved_(reader.widening()) {
    reader_.allow_wider(
        reader_.configured_limits().control(),
        [](void* c) { return static_cast<const HandshakeClassifier*>(c)->role_is_next(); }, &classify);
  }
  ReaderWideningScope(const ReaderWideningScope&) = delete;
  ReaderWideningScope& operator=(const ReaderWideningScope&) = delete;
  ~ReaderWideningScope() { reader_.allow_wider(saved_); }

 private:
  Reader& reader_;
  Reader::Widening saved_;
};

/// AUTH and SELECT (and ROLE with `check_role`) on a connected stream (the socket, or the
/// TLS stream after its own handshake), bounded by `deadline`.
template <class Stream>
asio::awaitable<std::optional<LinkFailure>> handshake(Stream& socket, Reader& reader,
                                                      std::vector<char>& read_buf,
                                                      const RedisOptions& options, Clock::time_point deadline,
                                                      bool check_role = false) {
  using namespace asio::experimental::awaitable_operators;
  Request hello = handshake_request(options, check_role);
  if (hello.empty()) co_return std::nullopt;
  HandshakeClassifier classify(options, check_role);
  ReaderWideningScope role_may_widen(reader, classify);
  asio::steady_timer timer(socket.get_executor(), deadline);
  auto wrote =
      co_await (asio::async_write(socket, asio::buffer(hello.bytes), asio::as_tuple(asio::use_awaitable)) ||
                timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (wrote.index() == 1) co_return LinkFailure{errc::not_connected, "handshake timed out"};
  if (auto [ec, n] = std::get<0>(wrote); ec)
    co_return LinkFailure{errc::not_connected, "handshake write: " + ec.message()};
  while (!classify.done()) {
    Reply reply;
    const auto status = reader.next(reply);
    if (status == Reader::Status::error || status == Reader::Status::too_large)
      co_return LinkFailure{errc::protocol_error, reader.error_message()};
    if (status == Reader::Status::reply) {
      auto failure = classify.on_reply(reply);
      if (failure) co_return failure;
      continue;
    }
    auto got =
        co_await (socket.async_read_some(asio::buffer(read_buf), asio::as_tuple(asio::use_awaitable)) ||
                  timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (got.index() == 1) co_return LinkFailure{errc::not_connected, "handshake timed out"};
    auto [ec, n] = std::get<0>(got);
    if (ec) co_return LinkFailure{errc::not_connected, "handshake read: " + ec.message()};
    reader.feed(read_buf.data(), n);
  }
  // More than the handshake's replies: nobody asked for them (never hand them to a caller).
  if (reader.buffered() > 0) co_return LinkFailure{errc::protocol_error, "a reply arrived for no request"};
  co_return std::nullopt;
}

/// A connected socket becomes a link: TCP options, then, with a TLS context, a new TLS
/// stream in `tls` and its handshake (verifying `host`), then AUTH/SELECT(/ROLE when
/// `check_role`), all bounded by one connect_timeout. Empty on success.
inline asio::awaitable<std::optional<LinkFailure>> open_link(Socket& socket, TlsContext* tls_context,
                                                             std::shared_ptr<TlsStream>& tls, Reader& reader,
                                                             std::vector<char>& buf,
                                                             const RedisOptions& options,
                                                             const std::string& host, bool check_role) {
  boost::system::error_code ignored;
  if (options.unix_socket.empty()) {
    socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    socket.set_option(asio::socket_base::keep_alive(true), ignored);
  }
  const auto deadline = saturating_add(Clock::now(), options.connect_timeout);
  if (!tls_context) {
    auto rejected = co_await handshake(socket, reader, buf, options, deadline, check_role);
    co_return rejected;
  }
  tls = std::make_shared<TlsStream>(socket, *tls_context);
  auto tls_failure = co_await tls_handshake(*tls, tls_peer(options.tls, host), deadline);
  if (tls_failure) co_return tls_failure;
  auto rejected = co_await handshake(*tls, reader, buf, options, deadline, check_role);
  co_return rejected;
}

}  // namespace corocache::detail::redis::link_io
