#pragma once
// The memory backend's index sets (each under its shard's leaf lock `index_mu`, see
// shard.hpp). An index set maps each member key to the version of the store that listed
// it. A member is live only if its value is live and still carries that version, which
// keeps listing correct even while a concurrent store moves the key between indices; dead
// members are removed eagerly whenever their value goes (ValueTable::drop unlists them), and
// pruned on listing (Store::index_members).

#include <corocache/memory/detail/key_map.hpp>
#include <corocache/memory/detail/shard.hpp>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corocache::detail::memory {

class IndexTable {
 public:
  using Members = std::vector<std::pair<std::string, std::uint32_t>>;

  explicit IndexTable(const ShardArray& shards) : shards_(shards) {}

  /// Adds `key` (stored as `version`) to each index set.
  void list(const std::string& key, std::uint32_t version, const std::vector<std::string>& index_keys) {
    for (const std::string& index_key : index_keys) {
      const KeyRef ik(index_key);
      Shard& is = shards_.for_hash(ik.hash);
      std::lock_guard lock(is.index_mu);
      auto set = is.indices.find(ik);
      if (set == is.indices.end()) set = is.indices.try_emplace(index_key).first;
      const auto m = set->second.find(KeyRef(key));
      if (m == set->second.end()) {
        set->second.try_emplace(key, version);
      } else {
        m->second = version;
      }
    }
  }

  /// Removes `key` from each index set that still lists it as `version`.
  void unlist(const std::string& key, std::uint32_t version, const std::vector<std::string>& index_keys) {
    const KeyRef mk(key);
    for (const std::string& index_key : index_keys) {
      const KeyRef ik(index_key);
      Shard& is = shards_.for_hash(ik.hash);
      std::lock_guard lock(is.index_mu);
      const auto set = is.indices.find(ik);
      if (set == is.indices.end()) continue;
      const auto m = set->second.find(mk);
      if (m != set->second.end() && m->second == version) set->second.erase(m);
      if (set->second.empty()) is.indices.erase(set);
    }
  }

  /// Copies (or, with `take`, removes) an index set's members.
  Members snapshot(std::string_view index_key, bool take) {
    const KeyRef ik(index_key);
    Shard& is = shards_.for_hash(ik.hash);
    Members out;
    std::lock_guard lock(is.index_mu);
    const auto set = is.indices.find(ik);
    if (set == is.indices.end()) return out;
    out.reserve(set->second.size());
    for (const auto& [member, version] : set->second) out.emplace_back(member, version);
    if (take) is.indices.erase(set);
    return out;
  }

  /// Removes the `dead` members that are still listed with the same version.
  void prune(std::string_view index_key, const Members& dead) {
    const KeyRef ik(index_key);
    Shard& is = shards_.for_hash(ik.hash);
    std::lock_guard lock(is.index_mu);
    if (const auto set = is.indices.find(ik); set != is.indices.end()) {
      for (const auto& [member, version] : dead) {
        const auto m = set->second.find(KeyRef(member));
        if (m != set->second.end() && m->second == version) set->second.erase(m);
      }
      if (set->second.empty()) is.indices.erase(set);
    }
  }

  /// Removes every index set of shard `s` whose key matches; counts the non-empty ones.
  template <class Matches>
  std::size_t erase_matching(Shard& s, const Matches& matches) {
    std::size_t removed = 0;
    std::lock_guard lock(s.index_mu);
    for (auto it = s.indices.begin(); it != s.indices.end();) {
      if (!matches(it->first)) {
        ++it;
        continue;
      }
      removed += it->second.empty() ? 0 : 1;
      it = s.indices.erase(it);
    }
    return removed;
  }

 private:
  const ShardArray& shards_;
};

}  // namespace corocache::detail::memory
