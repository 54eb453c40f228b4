#pragma once
// The order in which a SCAN walk visits a Redis Cluster's primaries, I/O-free. A key being
// MIGRATEd leaves its source and appears on the importing node at once; a walk that visits
// the importing node first and the source after can miss a key moved in between. Visiting
// every source before the nodes it migrates to closes that. Each node reports only its own
// migrations, in its own line of CLUSTER NODES ("myself"): `[slot->-target-id]` while it
// migrates a slot away, `[slot-<-source-id]` while it imports one.
// docs/redis_topology.md, "Per-node operations".

#include <corocache/redis/detail/cluster_slots.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corocache::detail::redis::cluster {

/// A slot moving from the node `from` to the node `to` (node ids).
struct Migration {
  std::string from;
  std::string to;
  friend bool operator==(const Migration&, const Migration&) = default;
};

/// The migrations in the "myself" line of a CLUSTER NODES reply (the only line that carries
/// them). Lines of other nodes, and anything unparsable, are skipped.
inline std::vector<Migration> parse_own_migrations(std::string_view nodes) {
  std::vector<Migration> out;
  while (!nodes.empty()) {
    const auto eol = nodes.find('\n');
    std::string_view line = nodes.substr(0, eol);
    nodes = eol == std::string_view::npos ? std::string_view{} : nodes.substr(eol + 1);
    std::vector<std::string_view> fields;
    for (std::size_t start = 0; start < line.size();) {
      const auto space = line.find(' ', start);
      const auto end = space == std::string_view::npos ? line.size() : space;
      if (end > start) fields.push_back(line.substr(start, end - start));
      start = end + 1;
    }
    if (fields.size() < 3) continue;
    bool myself = false;
    for (std::size_t start = 0; start <= fields[2].size();) {
      const auto comma = fields[2].find(',', start);
      const auto end = comma == std::string_view::npos ? fields[2].size() : comma;
      myself = myself || fields[2].substr(start, end - start) == "myself";
      start = end + 1;
    }
    if (!myself) continue;
    const std::string self(fields[0]);
    for (std::size_t i = 8; i < fields.size(); ++i) {
      std::string_view f = fields[i];
      if (f.size() < 2 || f.front() != '[' || f.back() != ']') continue;
      f = f.substr(1, f.size() - 2);
      if (const auto to = f.find("->-"); to != std::string_view::npos && to + 3 < f.size())
        out.push_back(Migration{self, std::string(f.substr(to + 3))});
      else if (const auto from = f.find("-<-"); from != std::string_view::npos && from + 3 < f.size())
        out.push_back(Migration{std::string(f.substr(from + 3)), self});
    }
  }
  return out;
}

/// The map's primaries in walk order: slot owners first, then slot-less ones (as
/// SlotMap::primaries()), with every node that imports from another moved after it. Nodes
/// not involved keep their place relative to each other. Two nodes migrating slots to each
/// other at once, or a longer cycle, cannot both come first: the cycle is broken at its
/// first node in map order, and that node is visited once more at the end, after its
/// sources, so no edge is left unprotected. Only then does a node appear twice.
inline std::vector<NodeAddress> walk_order(const SlotMap& map, const std::vector<Migration>& migrations) {
  const std::vector<NodeAddress> base = map.primaries();
  std::vector<std::string> ids(base.size());
  for (std::size_t i = 0; i < base.size(); ++i)
    for (const auto& shard : map.shards())
      if (shard.primary == base[i]) ids[i] = shard.primary_id;
  auto index_of = [&](const std::string& id) -> std::size_t {
    for (std::size_t i = 0; i < ids.size(); ++i)
      if (!id.empty() && ids[i] == id) return i;
    return base.size();
  };
  // must_follow[i]: the nodes i imports from (they are visited before i).
  std::vector<std::vector<std::size_t>> must_follow(base.size());
  for (const auto& m : migrations) {
    const auto from = index_of(m.from), to = index_of(m.to);
    if (from < base.size() && to < base.size() && from != to) must_follow[to].push_back(from);
  }
  auto ready = [&](std::size_t i, const std::vector<bool>& placed) {
    for (auto s : must_follow[i])
      if (!placed[s]) return false;
    return true;
  };
  std::vector<NodeAddress> out;
  // Each step places the first unplaced node in map order whose sources are all placed, or
  // that is on a cycle (which breaks it there). One always exists: if no node were ready,
  // following sources through unplaced nodes would come back to one of them. Quadratic and
  // more: a cluster has few primaries and fewer migrations.
  auto on_cycle = [&](std::size_t start, const std::vector<bool>& placed) {  // of unplaced nodes
    std::vector<std::size_t> stack = must_follow[start];
    std::vector<bool> seen(base.size(), false);
    while (!stack.empty()) {
      const auto n = stack.back();
      stack.pop_back();
      if (n == start) return true;
      if (seen[n] || placed[n]) continue;
      seen[n] = true;
      stack.insert(stack.end(), must_follow[n].begin(), must_follow[n].end());
    }
    return false;
  };
  std::vector<bool> placed(base.size(), false);
  std::vector<std::size_t> again;  // placed to break a cycle, before one of their sources
  while (out.size() < base.size()) {
    std::size_t next = base.size();
    for (std::size_t i = 0; i < base.size() && next == base.size(); ++i)
      if (!placed[i] && (ready(i, placed) || on_cycle(i, placed))) next = i;
    if (!ready(next, placed)) again.push_back(next);
    placed[next] = true;
    out.push_back(base[next]);
  }
  for (auto i : again) out.push_back(base[i]);
  return out;
}

}  // namespace corocache::detail::redis::cluster
