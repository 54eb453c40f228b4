#pragma once
// The I/O-free decisions of a TLS link: which name the server certificate is checked
// against and sent as SNI (TlsPeer), and what a failed TLS handshake means for the
// connection (classify_tls_handshake): a certificate that does not verify, or a server
// that refuses the handshake, is errc::tls_failed, which the connection treats like a
// rejected AUTH (fail waiting requests at once, reconnect only every reconnect_max); a
// timeout or a dropped TCP connection is an ordinary connect failure. tls_io.hpp performs
// the handshake with OpenSSL; docs/redis_topology.md (TLS) has the design.

#include <corocache/errors.hpp>
#include <corocache/redis/detail/link_fsm.hpp>
#include <corocache/redis/options.hpp>

#include <boost/asio/ip/address.hpp>

#include <optional>
#include <string>

namespace corocache::detail::redis {

/// Who the server must prove to be.
struct TlsPeer {
  std::string name;  ///< checked against the certificate (server_name, else the host)
  bool name_is_ip;   ///< checked as an IP address SAN, not a DNS name
  std::string sni;   ///< sent as SNI; empty for an IP address (RFC 6066 allows no IP literal)
  bool verify;       ///< chain and name verification on (RedisTlsOptions::verify_peer)
};

/// The peer of a link to `host` (the configured host, a cluster node's or the primary
/// a sentinel named) under `tls`.
inline TlsPeer tls_peer(const RedisTlsOptions& tls, const std::string& host) {
  TlsPeer p{tls.server_name.empty() ? host : tls.server_name, false, {}, tls.verify_peer};
  boost::system::error_code ec;
  (void)boost::asio::ip::make_address(p.name, ec);
  p.name_is_ip = !ec;
  if (!p.name_is_ip) p.sni = p.name;
  return p;
}

/// What the TLS handshake of one attempt ended with, as the I/O layer observed it.
struct TlsHandshakeOutcome {
  bool ok = false;
  bool timed_out = false;
  /// The error came from the TLS layer (OpenSSL: bad certificate, alert, not a TLS
  /// server), not from the transport (reset, end of stream).
  bool tls_error = false;
  std::string reason;        ///< the error's message
  long verify_result = 0;    ///< X509_V_OK (0) or OpenSSL's verification error code
  std::string verify_error;  ///< its text, e.g. "unable to get local issuer certificate"
};

/// The failure of the attempt (empty when the handshake succeeded). The connection puts
/// the server's host:port in front of the message.
inline std::optional<LinkFailure> classify_tls_handshake(const TlsPeer& peer, const TlsHandshakeOutcome& o) {
  if (o.ok) return std::nullopt;
  if (o.timed_out) return LinkFailure{errc::not_connected, "TLS handshake timed out"};
  if (peer.verify && o.verify_result != 0)
    return LinkFailure{errc::tls_failed, "TLS: the server certificate does not verify for '" + peer.name +
                                             "': " + o.verify_error};
  if (o.tls_error) return LinkFailure{errc::tls_failed, "TLS handshake failed: " + o.reason};
  return LinkFailure{errc::not_connected, "TLS handshake: " + o.reason};
}

/// Failures that retrying soon cannot fix (credentials, database, certificates): waiting
/// requests fail at once and the next attempt waits reconnect_max.
inline bool is_rejection(errc code) noexcept { return code == errc::auth_failed || code == errc::tls_failed; }

}  // namespace corocache::detail::redis
