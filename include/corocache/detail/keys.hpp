#pragma once
// The key schema. Every key the facade hands a backend has the form
//
//     <prefix>:{<tenant>:<namespace>}:<kind>:<name>
//
// - prefix, tenant and namespace are validated "segments": they contain no ':', braces,
//   glob characters, backslash, space or control bytes, so the first ':' ends the prefix
//   and the first '}' ends the scope. That makes the mapping injective: two different
//   (prefix, tenant, namespace, kind, name) tuples never build the same key.
// - `{<tenant>:<namespace>}` is a Redis Cluster hash tag: every key of one scope lands in
//   one slot, so the multi-key scripts (a value and its indices) stay cluster-safe.
// - kind keeps key spaces apart: a user value can never alias a queue, index, lock,
//   memoized result, func_cache clear token or pending record, whatever bytes its name holds.
// - name is the last part and may hold any bytes (an index name is escaped so that its key
//   holds no '\n': make_index_key).
// Segments starting with '~' are reserved for corocache's own names (the global tenant).

#include <corocache/errors.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace corocache::detail {

/// Key spaces inside a scope.
/// `pending`: a backend's record of an operation whose outcome is not settled yet (on Redis:
/// a popped element's ledger, or the tombstone of an abandoned pop or lock attempt; see
/// docs/redis_queues.md). Built by the backend from the queue or lock key, never by the facade.
enum class Kind { value, queue, index, lock, memo, memo_epoch, pending };

constexpr std::string_view kind_tag(Kind k) noexcept {
  switch (k) {
    case Kind::value: return "v";
    case Kind::queue: return "q";
    case Kind::index: return "i";
    case Kind::lock: return "l";
    case Kind::memo: return "f";
    case Kind::memo_epoch: return "fe";
    case Kind::pending: return "p";
  }
  return "?";
}

/// The tenant segment of Cache::global(); user tenants cannot start with '~'.
inline constexpr std::string_view global_tenant = "~global";

/// Longest accepted segment: keys stay short and readable.
inline constexpr std::size_t max_segment_size = 128;

/// Why `s` cannot be a segment, or nullptr when it can.
constexpr const char* segment_problem(std::string_view s) noexcept {
  if (s.empty()) return "must not be empty";
  if (s.size() > max_segment_size) return "is longer than 128 bytes";
  if (s.front() == '~') return "must not start with '~' (reserved for corocache)";
  for (unsigned char c : s) {
    if (c < 0x21 || c == 0x7f) return "must not contain spaces or control characters";
    switch (c) {
      case ':': return "must not contain ':'";
      case '{':
      case '}': return "must not contain braces";
      case '*':
      case '?':
      case '[':
      case ']':
      case '\\': return "must not contain glob characters (* ? [ ] \\)";
      default: break;
    }
  }
  return nullptr;
}

/// Throws invalid_name naming `what` ("tenant", "namespace", ...) when `s` is no segment.
inline void validate_segment(std::string_view what, std::string_view s) {
  if (const char* problem = segment_problem(s)) {
    std::string msg = "corocache: invalid ";
    msg.append(what).append(" '");
    // Show the offending name, but not its control bytes.
    for (unsigned char c : s.substr(0, 64)) msg.push_back(c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c));
    if (s.size() > 64) msg.append("...");
    msg.append("': ").append(what).append(" ").append(problem);
    throw invalid_name(msg);
  }
}

/// `<prefix>:`: every key of a cache starts with it.
inline std::string cache_base(std::string_view prefix) {
  std::string out;
  out.reserve(prefix.size() + 1);
  out.append(prefix).push_back(':');
  return out;
}

/// `<prefix>:{<tenant>:`: every key of a tenant (all namespaces) starts with it.
inline std::string tenant_base(std::string_view prefix, std::string_view tenant) {
  std::string out = cache_base(prefix);
  out.append("{").append(tenant).push_back(':');
  return out;
}

/// `<prefix>:{<tenant>:<namespace>}:`: every key of a scope starts with it.
inline std::string scope_base(std::string_view prefix, std::string_view tenant, std::string_view ns) {
  std::string out = tenant_base(prefix, tenant);
  out.append(ns).append("}:");
  return out;
}

/// `<scope_base><kind>:`: every key of one kind in a scope starts with it.
inline std::string kind_base(std::string_view scope, Kind kind) {
  std::string out;
  const auto tag = kind_tag(kind);
  out.reserve(scope.size() + tag.size() + 1);
  out.append(scope).append(tag).push_back(':');
  return out;
}

/// `<scope_base><kind>:<name>`, built with one allocation (this is on every call's path).
inline std::string make_key(std::string_view scope, Kind kind, std::string_view name) {
  std::string out;
  const auto tag = kind_tag(kind);
  out.reserve(scope.size() + tag.size() + 1 + name.size());
  out.append(scope).append(tag).push_back(':');  // push_back: append(":") would call strlen
  out.append(name);
  return out;
}

/// `<scope_base>f:<function name>:`: every memoized result of one function in a scope
/// starts with it (detail/memo_key.hpp builds the rest); function names are segments.
inline std::string memo_prefix(std::string_view scope, std::string_view function_name) {
  std::string out = make_key(scope, Kind::memo, function_name);
  out.push_back(':');
  return out;
}

/// `<scope_base>i:<escaped name>`: the key of index `name` (any bytes, empty included). Redis
/// keeps a value's index keys in one field joined by '\n' (README, Key layout),
/// so an index key must hold no '\n': the name's '\\' is written "\\\\" and its '\n' "\\n".
/// Every other byte is kept, so names that are valid segments (neither byte allowed there)
/// keep the key they always had. The escape is a prefix code, so distinct names give distinct
/// keys, and the kind tag keeps them apart from every value, queue, lock and memo key.
inline std::string make_index_key(std::string_view scope, std::string_view name) {
  std::string out;
  const auto tag = kind_tag(Kind::index);
  out.reserve(scope.size() + tag.size() + 1 + name.size() + 2);
  out.append(scope).append(tag).push_back(':');
  for (const char c : name) {
    if (c == '\\') {
      out.append("\\\\");
    } else if (c == '\n') {
      out.append("\\n");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace corocache::detail
