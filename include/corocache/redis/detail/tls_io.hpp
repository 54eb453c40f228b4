#pragma once
// The OpenSSL side of a TLS link (Asio's SSL stream): the client context built once per
// connection from RedisTlsOptions, and the handshake on a connected socket, bounded by the
// attempt's deadline. What a failure means is decided by classify_tls_handshake (tls.hpp).
//
// Compiled in only with COROCACHE_TLS=1 (the CMake target corocache::redis defines it and
// links OpenSSL). Without it, a program that includes the Redis backend links without
// OpenSSL, and TLS options are refused by RedisTlsOptions::validate() before any I/O: the
// stand-ins at the end of this file are never constructed.

#include <corocache/redis/detail/link_fsm.hpp>
#include <corocache/redis/detail/pending.hpp>  // Clock
#include <corocache/redis/detail/tls.hpp>
#include <corocache/redis/options.hpp>

#if COROCACHE_TLS
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace corocache::detail::redis::link_io {

namespace asio = boost::asio;
/// The TLS stream over the connection's own socket (which stays the plain path's stream).
using TlsStream = asio::ssl::stream<asio::generic::stream_protocol::socket&>;
using TlsContext = asio::ssl::context;

/// The client context of `tls` (enabled): TLS 1.2 or newer, the CA file / directory (or
/// the system store), the client certificate. Throws std::invalid_argument naming the file
/// OpenSSL could not load, before any connection.
inline std::shared_ptr<TlsContext> make_tls_context(const RedisTlsOptions& tls) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  boost::system::error_code ec;
  auto check = [&](const char* what, const std::string& file) {
    if (ec)
      throw std::invalid_argument("corocache::RedisTlsOptions: cannot load " + std::string(what) + " '" +
                                  file + "': " + ec.message());
  };
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1,
                   ec);
  check("protocol options", "");
  if (!tls.ca_file.empty()) {
    ctx->load_verify_file(tls.ca_file, ec);
    check("ca_file", tls.ca_file);
  }
  if (!tls.ca_dir.empty()) {
    ctx->add_verify_path(tls.ca_dir, ec);
    check("ca_dir", tls.ca_dir);
  }
  if (tls.ca_file.empty() && tls.ca_dir.empty()) {
    ctx->set_default_verify_paths(ec);
    check("the system trust store", "");
  }
  if (!tls.cert_file.empty()) {
    ctx->use_certificate_chain_file(tls.cert_file, ec);
    check("cert_file", tls.cert_file);
    ctx->use_private_key_file(tls.key_file, asio::ssl::context::pem, ec);
    check("key_file (or it does not match cert_file)", tls.key_file);
  }
  ctx->set_verify_mode(tls.verify_peer ? asio::ssl::verify_peer : asio::ssl::verify_none, ec);
  check("verify mode", "");
  return ctx;
}

/// Sets the name checks and SNI of `peer` on `stream`, then runs the client handshake until
/// `deadline`. Empty on success.
inline asio::awaitable<std::optional<LinkFailure>> tls_handshake(TlsStream& stream, const TlsPeer& peer,
                                                                 Clock::time_point deadline) {
  using namespace asio::experimental::awaitable_operators;
  SSL* ssl = stream.native_handle();
  TlsHandshakeOutcome outcome;
  if (peer.verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int set = peer.name_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, peer.name.c_str())
                                    : X509_VERIFY_PARAM_set1_host(param, peer.name.c_str(), 0);
    if (set != 1) co_return LinkFailure{errc::tls_failed, "TLS: cannot check the name '" + peer.name + "'"};
  }
  if (!peer.sni.empty() && SSL_set_tlsext_host_name(ssl, peer.sni.c_str()) != 1)
    co_return LinkFailure{errc::tls_failed, "TLS: cannot send the server name '" + peer.sni + "'"};
  asio::steady_timer timer(stream.get_executor(), deadline);
  auto done =
      co_await (stream.async_handshake(asio::ssl::stream_base::client, asio::as_tuple(asio::use_awaitable)) ||
                timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (done.index() == 1) {
    outcome.timed_out = true;
  } else if (auto [ec] = std::get<0>(done); ec) {
    outcome.tls_error = ec.category() == asio::error::get_ssl_category();
    outcome.reason = ec.message();
    outcome.verify_result = SSL_get_verify_result(ssl);
    if (outcome.verify_result != X509_V_OK)
      outcome.verify_error = X509_verify_cert_error_string(outcome.verify_result);
  } else {
    outcome.ok = true;
  }
  co_return classify_tls_handshake(peer, outcome);
}

}  // namespace corocache::detail::redis::link_io

#else  // !COROCACHE_TLS

#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>

#include <memory>
#include <optional>
#include <stdexcept>

namespace corocache::detail::redis::link_io {

namespace asio = boost::asio;

// Stand-ins with the shape the TLS code paths need, so that they compile without OpenSSL.
// validate() refuses TLS options in this build, so none of them is ever constructed.
struct TlsContext {};

class TlsStream {
 public:
  using executor_type = asio::generic::stream_protocol::socket::executor_type;
  TlsStream(asio::generic::stream_protocol::socket& socket, TlsContext&) : socket_(socket) {}
  executor_type get_executor() noexcept { return socket_.get_executor(); }
  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    return socket_.async_read_some(buffers, std::forward<Token>(token));
  }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    return socket_.async_write_some(buffers, std::forward<Token>(token));
  }

 private:
  asio::generic::stream_protocol::socket& socket_;
};

inline std::shared_ptr<TlsContext> make_tls_context(const RedisTlsOptions&) {
  throw std::invalid_argument(tls_not_built_message);
}

inline asio::awaitable<std::optional<LinkFailure>> tls_handshake(TlsStream&, const TlsPeer&,
                                                                 Clock::time_point) {
  throw std::invalid_argument(tls_not_built_message);
  co_return std::nullopt;
}

}  // namespace corocache::detail::redis::link_io

#endif  // COROCACHE_TLS
