#pragma once
// Redis Cluster's key space, I/O-free: the hash slot of a key (CRC16 of the key, or of its
// hash tag, modulo 16384, as the cluster specification defines it), node addresses, and
// the slot map built from a CLUSTER SHARDS or CLUSTER SLOTS reply. Nothing here does I/O;
// the topology layer asks a node, hands the reply to these functions and routes with the
// map (docs/redis_topology.md).

#include <corocache/redis/detail/reply.hpp>

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace corocache::detail::redis::cluster {

inline constexpr int slot_count = 16384;

/// CRC16 as Redis Cluster uses it: CCITT/XMODEM (polynomial 0x1021, initial value 0, no
/// reflection, no final xor); crc16("123456789") == 0x31C3.
constexpr std::uint16_t crc16(std::string_view data) noexcept {
  std::uint16_t crc = 0;
  for (unsigned char byte : data) {
    crc ^= static_cast<std::uint16_t>(byte << 8);
    for (int bit = 0; bit < 8; ++bit)
      crc = (crc & 0x8000) ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<std::uint16_t>(crc << 1);
  }
  return crc;
}

/// The part of `key` that is hashed: the bytes between the first '{' and the first '}'
/// after it, when that is non-empty; otherwise the whole key ("{}x" and "x{" hash whole).
constexpr std::string_view hashed_part(std::string_view key) noexcept {
  const auto open = key.find('{');
  if (open == std::string_view::npos) return key;
  const auto close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

/// The hash slot of `key`, in [0, 16384).
constexpr int key_slot(std::string_view key) noexcept { return crc16(hashed_part(key)) & (slot_count - 1); }

/// host:port of a node. `host` is what the server reports (an IP, or a host name when the
/// cluster announces them); IPv6 is kept without brackets.
struct NodeAddress {
  std::string host;
  std::uint16_t port = 0;

  friend bool operator==(const NodeAddress&, const NodeAddress&) = default;
  friend auto operator<=>(const NodeAddress&, const NodeAddress&) = default;
  /// "host:port", "[v6]:port" for IPv6.
  std::string to_string() const {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }
};

/// Parses "host:port", "[v6]:port" or a bare "v6:port" (the last ':' splits); nullopt when
/// the host is empty or the port is not in [1, 65535]. Used for MOVED/ASK targets, seeds and
/// sentinel addresses.
inline std::optional<NodeAddress> parse_address(std::string_view text) {
  std::string_view host, port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || port.empty() || ec != std::errc{} || end != port.data() + port.size() || value == 0 ||
      value > 65535)
    return std::nullopt;
  return NodeAddress{std::string(host), static_cast<std::uint16_t>(value)};
}

/// One primary and its replicas.
struct Shard {
  NodeAddress primary;
  std::string primary_id;  ///< node id when the reply gave one
  std::vector<NodeAddress> replicas;
};

/// Which shard owns each of the 16384 slots, and every primary of the cluster: a primary
/// may own no slot (a node just added, the target of a reshard onto it, a node resharded
/// empty) and still hold keys (those MIGRATEd onto it while its first slot is IMPORTING),
/// so commands sent to every primary reach it too. Copyable value; the topology layer swaps
/// in a new one after each refresh.
class SlotMap {
 public:
  static constexpr std::uint16_t unassigned = 0xFFFF;

  SlotMap() { owner_.fill(unassigned); }

  const std::vector<Shard>& shards() const noexcept { return shards_; }
  /// The shard owning `slot`; nullptr when it is unassigned or out of range.
  const Shard* shard_of(int slot) const noexcept {
    if (slot < 0 || slot >= slot_count || owner_[static_cast<std::size_t>(slot)] == unassigned)
      return nullptr;
    return &shards_[owner_[static_cast<std::size_t>(slot)]];
  }
  const NodeAddress* primary_of(int slot) const noexcept {
    const auto* s = shard_of(slot);
    return s ? &s->primary : nullptr;
  }
  const NodeAddress* primary_of_key(std::string_view key) const noexcept { return primary_of(key_slot(key)); }
  /// Slots with an owner.
  std::size_t assigned() const noexcept {
    std::size_t n = 0;
    for (auto o : owner_) n += o != unassigned;
    return n;
  }
  bool complete() const noexcept { return assigned() == static_cast<std::size_t>(slot_count); }
  /// No slot has an owner (no usable map yet), even if slot-less primaries are listed.
  bool empty() const noexcept { return !has_owner_; }

  /// Adds a shard (or returns the index of the one with the same primary).
  std::size_t add_shard(Shard shard) {
    for (std::size_t i = 0; i < shards_.size(); ++i)
      if (shards_[i].primary == shard.primary) return i;
    shards_.push_back(std::move(shard));
    return shards_.size() - 1;
  }
  /// Gives slots [first, last] to shard `index`. Returns false for a bad range or index.
  bool assign(int first, int last, std::size_t index) {
    if (first < 0 || last >= slot_count || first > last || index >= shards_.size()) return false;
    for (int s = first; s <= last; ++s)
      owner_[static_cast<std::size_t>(s)] = static_cast<std::uint16_t>(index);
    has_owner_ = true;
    return true;
  }

  /// A MOVED redirect: `slot` now belongs to the primary at `to`. Returns true when `to`
  /// was a known primary (the map stays consistent), false when it was new to the map (it
  /// is added as a shard without replicas; the caller should schedule a full refresh: the
  /// topology changed more than one slot shows).
  bool apply_moved(int slot, const NodeAddress& to) {
    if (slot < 0 || slot >= slot_count) return false;
    bool known = false;
    for (const auto& s : shards_) known = known || s.primary == to;
    const auto index = add_shard(Shard{to, {}, {}});
    owner_[static_cast<std::size_t>(slot)] = static_cast<std::uint16_t>(index);
    has_owner_ = true;
    return known;
  }

  /// Every primary in the map (for commands sent to all primaries: SCAN, SCRIPT LOAD):
  /// those owning slots first, in map order, then those without. A key being MIGRATEd goes
  /// from its owner to a node IMPORTING the slot, and a node without slots can only import:
  /// a walk that visits it last sees a key moved onto it during the walk either at its
  /// source or there.
  std::vector<NodeAddress> primaries() const {
    std::vector<bool> owns(shards_.size(), false);
    for (auto o : owner_)
      if (o != unassigned) owns[o] = true;
    std::vector<NodeAddress> out;
    for (std::size_t i = 0; i < shards_.size(); ++i)
      if (owns[i]) out.push_back(shards_[i].primary);
    for (std::size_t i = 0; i < shards_.size(); ++i)
      if (!owns[i]) out.push_back(shards_[i].primary);
    return out;
  }

 private:
  std::vector<Shard> shards_;
  std::array<std::uint16_t, slot_count> owner_;
  bool has_owner_ = false;
};

/// A parsed map, or why the reply could not be used (the map is then empty).
struct SlotMapResult {
  SlotMap map;
  std::string error;
  bool ok() const noexcept { return error.empty(); }
};

namespace slots_detail {

inline SlotMapResult failed(std::string why) {
  return SlotMapResult{SlotMap{}, "corocache: " + std::move(why)};
}

/// An endpoint as the server reports it: "" means "the node you asked", "?" or nil means
/// unknown (the node cannot be reached by a client: it is left out).
inline std::optional<std::string> endpoint_host(const Reply& r, const NodeAddress& origin) {
  if (r.is_nil()) return std::nullopt;
  if (!r.is_string() && !r.is_status()) return std::nullopt;
  if (r.str == "?") return std::nullopt;
  if (r.str.empty()) return origin.host;
  return r.str;
}

inline bool valid_port(long long p) { return p > 0 && p <= 65535; }

}  // namespace slots_detail

/// Builds the map from a CLUSTER SLOTS reply: [[first, last, [host, port, id, ...],
/// [replica host, port, id, ...]...]...]. `origin` is the node that answered (an empty
/// host in the reply means that node).
inline SlotMapResult parse_cluster_slots(const Reply& reply, const NodeAddress& origin) {
  namespace d = slots_detail;
  if (reply.is_error()) return d::failed("CLUSTER SLOTS failed: " + reply.str);
  if (!reply.is_array()) return d::failed("CLUSTER SLOTS reply is not an array");
  SlotMapResult out;
  for (const auto& range : reply.elements) {
    if (!range.is_array() || range.elements.size() < 3 || !range.elements[0].is_integer() ||
        !range.elements[1].is_integer())
      return d::failed("malformed CLUSTER SLOTS range");
    std::optional<Shard> shard;
    for (std::size_t i = 2; i < range.elements.size(); ++i) {
      const auto& node = range.elements[i];
      if (!node.is_array() || node.elements.size() < 2 || !node.elements[1].is_integer() ||
          !d::valid_port(node.elements[1].integer))
        return d::failed("malformed CLUSTER SLOTS node");
      const auto host = d::endpoint_host(node.elements[0], origin);
      NodeAddress addr{host.value_or(""), static_cast<std::uint16_t>(node.elements[1].integer)};
      if (i == 2) {
        if (!host) break;  // unreachable primary: leave the range unassigned
        shard = Shard{
            addr, node.elements.size() > 2 && node.elements[2].is_string() ? node.elements[2].str : "", {}};
      } else if (host) {
        shard->replicas.push_back(addr);
      }
    }
    if (!shard) continue;
    const long long first = range.elements[0].integer, last = range.elements[1].integer;
    const auto index = out.map.add_shard(std::move(*shard));
    if (first < 0 || last >= slot_count || first > last ||
        !out.map.assign(static_cast<int>(first), static_cast<int>(last), index))
      return d::failed("CLUSTER SLOTS range out of bounds");
  }
  return out;
}

/// Builds the map from a CLUSTER SHARDS reply (Redis >= 7): [["slots", [first, last, ...],
/// "nodes", [[key, value, ...]...]]...]. Nodes use "endpoint" (or "ip"), and "tls-port"
/// instead of "port" when `tls`. The primary is the node with role master whose health is
/// online (else the first master not failed); replicas are those not failed (a fresh
/// replica reports "loading" until data has flowed). A shard without slots keeps its
/// primary in the map (see SlotMap). CLUSTER SLOTS lists only slot ranges: a map built from
/// it has no slot-less primaries.
inline SlotMapResult parse_cluster_shards(const Reply& reply, const NodeAddress& origin, bool tls = false) {
  namespace d = slots_detail;
  if (reply.is_error()) return d::failed("CLUSTER SHARDS failed: " + reply.str);
  if (!reply.is_array()) return d::failed("CLUSTER SHARDS reply is not an array");
  auto field = [](const Reply& map, std::string_view key) -> const Reply* {
    if (!map.is_array()) return nullptr;
    for (std::size_t i = 0; i + 1 < map.elements.size(); i += 2)
      if ((map.elements[i].is_string() || map.elements[i].is_status()) && map.elements[i].str == key)
        return &map.elements[i + 1];
    return nullptr;
  };
  SlotMapResult out;
  for (const auto& entry : reply.elements) {
    const Reply* slots = field(entry, "slots");
    const Reply* nodes = field(entry, "nodes");
    if (!slots || !nodes || !slots->is_array() || !nodes->is_array() || slots->elements.size() % 2 != 0)
      return d::failed("malformed CLUSTER SHARDS entry");
    std::optional<Shard> primary, fallback;
    std::vector<NodeAddress> replicas;
    for (const auto& node : nodes->elements) {
      const Reply* role = field(node, "role");
      const Reply* port = field(node, tls ? "tls-port" : "port");
      const Reply* endpoint = field(node, "endpoint");
      if (!endpoint) endpoint = field(node, "ip");
      const Reply* health = field(node, "health");
      const Reply* id = field(node, "id");
      if (!role || !port || !endpoint)
        return d::failed(tls && !port ? "CLUSTER SHARDS node has no tls-port"
                                      : "malformed CLUSTER SHARDS node");
      if (!port->is_integer() || !d::valid_port(port->integer))
        return d::failed("bad port in CLUSTER SHARDS");
      const auto host = d::endpoint_host(*endpoint, origin);
      if (!host) continue;
      NodeAddress addr{*host, static_cast<std::uint16_t>(port->integer)};
      // "loading": a replica still syncing (or whose offset is still 0); "fail" (Redis 7.0;
      // the documentation spells it "failed"): gone.
      const bool online = !health || health->str == "online";
      const bool failed = health && (health->str == "fail" || health->str == "failed");
      if (role->str == "master") {
        Shard s{addr, id && id->is_string() ? id->str : "", {}};
        if (online && !primary)
          primary = std::move(s);
        else if (!failed && !fallback)
          fallback = std::move(s);
      } else if (!failed) {
        replicas.push_back(addr);
      }
    }
    if (!primary) primary = std::move(fallback);
    if (!primary) continue;  // no reachable primary
    primary->replicas = std::move(replicas);
    const auto index = out.map.add_shard(std::move(*primary));
    for (std::size_t i = 0; i < slots->elements.size(); i += 2) {
      const auto& a = slots->elements[i];
      const auto& b = slots->elements[i + 1];
      if (!a.is_integer() || !b.is_integer() || a.integer < 0 || b.integer >= slot_count ||
          a.integer > b.integer)
        return d::failed("CLUSTER SHARDS slot range out of bounds");
      out.map.assign(static_cast<int>(a.integer), static_cast<int>(b.integer), index);
    }
  }
  return out;
}

}  // namespace corocache::detail::redis::cluster
