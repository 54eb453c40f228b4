#pragma once
// What a connection reports: its counters, and the message of a failed call (endpoint and
// reason, never the password). I/O-free; the I/O layer (connection_impl.hpp) fills in the
// facts it knows when a call fails.

#include <corocache/errors.hpp>

#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace corocache::detail::redis {

/// Counters for tests and monitoring (monotonic since construction).
struct ConnectionStats {
  std::uint64_t connect_attempts = 0;  ///< connect attempts started
  std::uint64_t connects = 0;          ///< links that completed the handshake
  std::uint64_t writes = 0;            ///< write operations (each carries a batch)
  std::uint64_t requests = 0;          ///< requests accepted into the queue
  std::uint64_t link_drops = 0;        ///< established links that were lost or reset
  std::uint64_t stalls = 0;            ///< ... of which dropped by stall detection
  std::uint64_t health_checks = 0;     ///< PINGs sent by the idle health check
  std::uint64_t polled_waits = 0;      ///< waits for replies that polled the socket (busy_poll)
  std::uint64_t slept_waits = 0;       ///< waits for replies that slept in the reactor
};

/// What the I/O layer knows when a call fails.
struct FailureFacts {
  std::string_view endpoint;      // "host:port", "unix:path", the Sentinel master
  std::string_view last_error;    // why the last link dropped or the last attempt failed
  std::string_view auth_error;    // the whole message of a rejected AUTH/SELECT/certificate
  std::string_view reader_error;  // the reader's message for a reply over the limits
  std::size_t in_use = 0;         // requests counting against max_pending
  std::size_t max_pending = 0;
};

/// The message of a call that failed with `ec`.
inline std::string failure_message(boost::system::error_code ec, const FailureFacts& f) {
  const std::string base = "corocache redis: ";
  const std::string endpoint(f.endpoint);
  if (ec == errc::timeout) return base + endpoint + ": no reply before the request's deadline";
  if (ec == errc::not_connected) {
    std::string m = base + "not connected to " + endpoint;
    if (!f.last_error.empty()) m += " (" + std::string(f.last_error) + ")";
    return m;
  }
  if (ec == errc::connection_lost || ec == errc::protocol_error)
    return base + endpoint + ": " + std::string(f.last_error);
  if (ec == errc::auth_failed || ec == errc::tls_failed) return std::string(f.auth_error);
  if (ec == errc::overloaded)
    return base + std::to_string(f.in_use) + " requests pending (max_pending " +
           std::to_string(f.max_pending) + ")";
  if (ec == errc::reply_too_large) return base + endpoint + ": " + std::string(f.reader_error);
  if (ec == errc::shut_down) return base + "the connection was closed";
  if (ec == boost::asio::error::operation_aborted) return base + "request cancelled";
  return base + ec.message();
}

}  // namespace corocache::detail::redis
