#pragma once
// Error model (DESIGN.md): a miss is std::nullopt, never an error; bad input throws an
// exception deriving from std::invalid_argument before any backend work; backend failures
// throw boost::system::system_error carrying a corocache::errc code.

#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <stdexcept>
#include <string>
#include <type_traits>

namespace corocache {

/// Failures a backend reports. Compared against `boost::system::error_code` as usual:
/// `catch (const boost::system::system_error& e) { if (e.code() == corocache::errc::timeout) ... }`
enum class errc {
  timeout = 1,        ///< the request's deadline passed before its reply arrived
  connection_lost,    ///< the link dropped after the request was written: it may have run
  not_connected,      ///< never sent: no usable connection (server down; a Redis Cluster with
                      ///< no slot map) before the deadline; the request did not run
  protocol_error,     ///< the server sent something that is not valid RESP (the link is reset)
  overloaded,         ///< too many requests pending; the call failed fast without I/O
  server_error,       ///< the server answered with an error reply (message in what())
  auth_failed,        ///< AUTH/SELECT rejected; not retried in a loop
  capacity_exceeded,  ///< full: a memory backend that rejects writes, a Redis at maxmemory (OOM)
  shut_down,          ///< the backend was destroyed while the request was pending
  reply_too_large,    ///< this call's reply exceeded max_reply_bytes / max_reply_elements; the
                      ///< reply was skipped and the link kept (other callers are unaffected)
  tls_failed,         ///< TLS handshake failed: the server certificate did not verify (the
                      ///< message names the host and OpenSSL's reason) or the server refused
                      ///< ours; like auth_failed, not retried in a loop
};

namespace detail {
class error_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "corocache"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::timeout: return "request timed out";
      case errc::connection_lost: return "connection lost while the request was in flight";
      case errc::not_connected: return "not connected to the server";
      case errc::protocol_error: return "protocol error";
      case errc::overloaded: return "too many pending requests";
      case errc::server_error: return "server replied with an error";
      case errc::auth_failed: return "authentication or database selection failed";
      case errc::capacity_exceeded: return "cache is full";
      case errc::shut_down: return "backend shut down";
      case errc::reply_too_large: return "reply exceeds the configured size limits";
      case errc::tls_failed: return "TLS handshake or certificate verification failed";
    }
    return "unknown corocache error";
  }
};
}  // namespace detail

inline const boost::system::error_category& error_category() noexcept {
  static const detail::error_category_impl category;
  return category;
}

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// Throws `boost::system::system_error` for `e`, with `what` as context (never secrets).
[[noreturn]] inline void throw_error(errc e, const std::string& what = {}) {
  throw boost::system::system_error(make_error_code(e), what);
}

namespace detail {
/// The context a system_error was thrown with, without the ": <message> [category:value]"
/// Boost appends to what(): for quoting one failure inside another's message.
inline std::string context_of(const boost::system::system_error& e) {
  std::string text = e.what();
  const std::string suffix = std::string(": ") + e.code().what();
  if (text.size() > suffix.size() && text.ends_with(suffix)) text.resize(text.size() - suffix.size());
  return text;
}
}  // namespace detail

/// A tenant, namespace, prefix, index or function name that would break key isolation.
class invalid_name : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// An argument a backend operation does not accept (docs/backend_contract.md). Every
/// backend checks the same rules (detail/backend_contract.hpp) and throws this, with the same
/// message, when the operation is awaited and before any I/O. A backend's own documented
/// limits (e.g. RedisBackend: a value too large to read back) use it too.
class invalid_backend_argument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// A stored value that cannot be decoded as the type the caller asked for.
class decode_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

}  // namespace corocache

template <>
struct boost::system::is_error_code_enum<corocache::errc> : std::true_type {};
