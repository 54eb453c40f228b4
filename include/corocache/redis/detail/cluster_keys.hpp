#pragma once
// The Redis Cluster rule for one call of the Backend concept, checked before any I/O: every
// key the call touches lies in one hash slot. The facade's keys always keep it (a scope's
// keys share the hash tag `{<tenant>:<ns>}`); code calling the backend directly may not.
// Without the check such a call failed only at the server (-CROSSSLOT, after I/O), and a
// batch's erase_prefix whose prefix has no hash tag scanned one node and silently missed the
// keys on the others. I/O-free; docs/backend_contract.md, "Limits of one backend".

#include <corocache/backend.hpp>
#include <corocache/detail/backend_contract.hpp>
#include <corocache/redis/detail/cluster_slots.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace corocache::detail::redis::cluster {

namespace keys_detail {

[[noreturn, gnu::cold, gnu::noinline]] inline void fail_slot(contract::Where where, std::string_view what,
                                                             int slot, std::string_view other,
                                                             int other_slot) {
  contract::fail(where,
                 std::string(what) + " is in hash slot " + std::to_string(slot) + ", " + std::string(other) +
                     " in slot " + std::to_string(other_slot) +
                     ": on a Redis Cluster the keys of one call must share a slot (one {hash tag}, as the "
                     "facade's keys of a scope do)");
}

/// The slot every key of a call must share, set by the first key seen.
struct OneSlot {
  int slot = -1;
  std::size_t first_op = 0;

  /// `key` (described by `what`, numbered by `nth` unless npos) joins the call's keys.
  void add(contract::Where where, std::string_view what, std::string_view key,
           std::size_t nth = std::string::npos) {
    const int s = key_slot(key);
    if (slot < 0) {
      slot = s;
      first_op = where.index;
      return;
    }
    if (s == slot) [[likely]]
      return;
    const std::string first = where.kind.empty() ? std::string("the key")
                                                 : "operation " + std::to_string(first_op) + "'s first key";
    fail_slot(where,
              nth == std::string::npos ? std::string(what) : std::string(what) + " " + std::to_string(nth), s,
              first, slot);
  }
};

inline void add_store(OneSlot& one, contract::Where where, std::string_view key, const StoreParams& params) {
  one.add(where, "the key", key);
  for (std::size_t i = 0; i < params.index_keys.size(); ++i)
    one.add(where, "index key", params.index_keys[i], i);
}

}  // namespace keys_detail

/// A store's value key and index keys in one slot.
inline void require_one_slot(std::string_view key, const StoreParams& params) {
  keys_detail::OneSlot one;
  keys_detail::add_store(one, {"set"}, key, params);
}

/// Every key of a batch in one slot. An erase_prefix's prefix must hold a complete hash tag:
/// only then do all the keys under it share its slot (on its own, erase_prefix walks every
/// node instead).
inline void require_one_slot(const std::vector<BatchOp>& ops) {
  keys_detail::OneSlot one;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    std::visit(
        [&](const auto& o) {
          using Op = std::decay_t<decltype(o)>;
          if constexpr (std::is_same_v<Op, batch_op::Store>) {
            keys_detail::add_store(one, {"commit", i, "store"}, o.key, o.params);
          } else if constexpr (std::is_same_v<Op, batch_op::Erase>) {
            one.add({"commit", i, "erase"}, "the key", o.key);
          } else if constexpr (std::is_same_v<Op, batch_op::Expire>) {
            one.add({"commit", i, "expire"}, "the key", o.key);
          } else if constexpr (std::is_same_v<Op, batch_op::Push>) {
            one.add({"commit", i, "push"}, "the queue key", o.queue_key);
          } else if constexpr (std::is_same_v<Op, batch_op::EraseIndex>) {
            one.add({"commit", i, "erase_index"}, "the index key", o.index_key);
          } else {
            static_assert(std::is_same_v<Op, batch_op::ErasePrefix>,
                          "a new batch operation needs its rule here");
            if (hashed_part(o.prefix).size() == o.prefix.size()) [[unlikely]]
              contract::fail(
                  {"commit", i, "erase_prefix"},
                  "the prefix has no {hash tag}: on a Redis Cluster the keys under it span every node, "
                  "and a batch runs on one (erase_prefix on its own walks them all)");
            one.add({"commit", i, "erase_prefix"}, "the prefix's hash tag", o.prefix);
          }
        },
        ops[i]);
  }
}

}  // namespace corocache::detail::redis::cluster
