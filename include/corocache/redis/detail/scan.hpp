#pragma once
// The one SCAN walk behind prefix removal (erase_prefix) and conditional removal (erase_if):
// SCAN MATCH <prefix with its glob characters escaped>* COUNT 1000, batch after batch, never
// KEYS. Parsing a step's reply is pure (parse_scan_reply); the walk only sends the steps.

#include <corocache/redis/detail/commands.hpp>
#include <corocache/redis/detail/glob.hpp>
#include <corocache/redis/detail/reply.hpp>
#include <corocache/redis/detail/request.hpp>

#include <boost/asio/awaitable.hpp>

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corocache::detail::redis {

namespace asio = boost::asio;

/// One SCAN step: where the next step starts and the keys found.
struct ScanBatch {
  std::string cursor;             ///< "0": the walk is over
  std::vector<std::string> keys;  ///< may repeat keys of earlier steps (SCAN's guarantee)
};

/// The batch in a SCAN reply, keeping only true prefix matches (a defence in depth behind
/// the escaping). Throws protocol_error for a reply of another shape.
inline ScanBatch parse_scan_reply(Reply& reply, std::string_view prefix) {
  if (!reply.is_array() || reply.elements.size() != 2 || !reply.elements[0].is_string() ||
      !reply.elements[1].is_array())
    throw_unexpected("SCAN");
  ScanBatch batch;
  batch.keys.reserve(reply.elements[1].elements.size());
  for (auto& e : reply.elements[1].elements) {
    if (!e.is_string()) throw_unexpected("SCAN");
    if (std::string_view(e.str).starts_with(prefix)) batch.keys.push_back(std::move(e.str));
  }
  batch.cursor = std::move(reply.elements[0].str);
  return batch;
}

/// Walks every key starting with `prefix` (not empty). `exec(Request) -> awaitable<Reply>`
/// sends one request (error replies thrown); `on_keys(std::vector<std::string>&) ->
/// awaitable<bool>` gets each non-empty batch and returns false to end the walk early.
template <class Exec, class OnKeys>
asio::awaitable<void> walk_prefix(Exec& exec, std::string_view prefix, OnKeys& on_keys) {
  const std::string pattern = prefix_match_pattern(prefix);
  std::string cursor = "0";
  do {
    Request step;
    step.add("SCAN", cursor, "MATCH", pattern, "COUNT", "1000");
    step.control = true;  // a page of keys, not a value: max_reply_bytes is for values
    Reply reply = co_await exec(std::move(step));
    ScanBatch batch = parse_scan_reply(reply, prefix);
    cursor = std::move(batch.cursor);
    if (batch.keys.empty()) continue;
    const bool more = co_await on_keys(batch.keys);
    if (!more) break;
  } while (cursor != "0");
}

}  // namespace corocache::detail::redis
