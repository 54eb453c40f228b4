#pragma once
// Reading values for erase_if without consuming reads (the peek script), in as many replies
// as it takes for none to exceed what the client reads (max_reply_bytes): the script stops
// at its byte budget and the rest of the keys are peeked again.

#include <corocache/backend.hpp>
#include <corocache/redis/detail/commands.hpp>
#include <corocache/redis/detail/connection.hpp>
#include <corocache/redis/detail/reply.hpp>
#include <corocache/redis/detail/request.hpp>
#include <corocache/redis/detail/script_runner.hpp>
#include <corocache/redis/detail/scripts.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corocache::detail::redis {

/// What one element of a peek reply may cost besides its bytes (generous for any decoder).
inline constexpr long long peek_element_overhead = 256;

/// The values of `keys` (nil for missing keys and non-values), one Reply per key, in order.
template <class Target>
asio::awaitable<std::vector<Reply>> peek_values(Target& conn, const std::vector<std::string>& keys,
                                                std::size_t max_reply_bytes, Deadline deadline) {
  const Decimal budget(static_cast<long long>(max_readable_value(max_reply_bytes)));
  const Decimal per_element(peek_element_overhead);
  std::vector<Reply> values;
  values.reserve(keys.size());
  while (values.size() < keys.size()) {
    const std::size_t from = values.size();
    const Decimal numkeys(static_cast<long long>(keys.size() - from));
    auto encode = [&](Request& r, std::string_view verb, std::string_view id) {
      std::vector<std::string_view> argv;
      argv.reserve(keys.size() - from + 5);
      argv.insert(argv.end(), {verb, id, numkeys.view()});
      argv.insert(argv.end(), keys.begin() + static_cast<std::ptrdiff_t>(from), keys.end());
      argv.insert(argv.end(), {budget.view(), per_element.view()});
      r.add_argv(argv);
    };
    Reply reply = co_await run_script(conn, scripts::peek, deadline, encode);
    if (!reply.is_array() || reply.elements.empty() || reply.elements.size() > keys.size() - from)
      throw_unexpected("the peek script");
    for (auto& e : reply.elements) values.push_back(std::move(e));
  }
  co_return values;
}

}  // namespace corocache::detail::redis
