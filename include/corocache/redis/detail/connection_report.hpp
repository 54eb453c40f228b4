#pragma once
// What a connection reports: its counters, and the message of a failed call (endpoint and
// reason, never the password). I/O-free; the I/O layer (connection_impl.hpp) fills in the
// facts it knows when a call fails.

#include <corocache/errors.hpp>
#include <corocache/redis/options.hpp>

#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
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

  /// Sums (the counters of several connections).
  ConnectionStats& operator+=(const ConnectionStats& o) noexcept {
    connect_attempts += o.connect_attempts;
    connects += o.connects;
    writes += o.writes;
    requests += o.requests;
    link_drops += o.link_drops;
    stalls += o.stalls;
    health_checks += o.health_checks;
    polled_waits += o.polled_waits;
    slept_waits += o.slept_waits;
    return *this;
  }
};

/// The counters behind ConnectionStats: bumped by the I/O layer on its strand, read from
/// any thread.
struct ConnectionCounters {
  using Counter = std::atomic<std::uint64_t>;
  Counter connect_attempts{0}, connects{0}, writes{0}, requests{0}, link_drops{0}, stalls{0},
      health_checks{0}, polled_waits{0}, slept_waits{0};

  /// Only ever called on the connection's strand: one writer at a time, so a load and a
  /// store do it, without the locked read-modify-write of fetch_add (one per request).
  static void bump(Counter& c) noexcept {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  ConnectionStats snapshot() const noexcept {
    auto get = [](const Counter& c) { return c.load(std::memory_order_relaxed); };
    return {get(connect_attempts), get(connects),      get(writes),       get(requests),   get(link_drops),
            get(stalls),           get(health_checks), get(polled_waits), get(slept_waits)};
  }
};

/// How a connection names its server in messages: "host:port", "unix:path", or (with
/// Sentinel) the master's name and, once known, the address of its current primary.
inline std::string endpoint_text(const RedisOptions& options, std::string_view sentinel_master,
                                 std::string_view target) {
  if (options.sentinel)
    return "Sentinel master '" + std::string(sentinel_master) + "'" +
           (target.empty() ? std::string() : " at " + std::string(target));
  return options.unix_socket.empty() ? options.host + ":" + std::to_string(options.port)
                                     : "unix:" + options.unix_socket;
}

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
