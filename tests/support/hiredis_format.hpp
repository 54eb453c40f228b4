#pragma once
// A command encoded by hiredis' own formatter: the reference that Request's encoder is
// compared with (tests only; the library encodes without it).

#include <hiredis/hiredis.h>

#include <cstddef>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace corocache::test {

inline std::string format_with_hiredis(std::span<const std::string_view> argv) {
  std::vector<const char*> ptrs;
  std::vector<std::size_t> lens;
  for (const auto& a : argv) {
    ptrs.push_back(a.data() ? a.data() : "");
    lens.push_back(a.size());
  }
  char* encoded = nullptr;
  const int n = redisFormatCommandArgv(&encoded, static_cast<int>(argv.size()), ptrs.data(), lens.data());
  if (n < 0 || encoded == nullptr) throw std::bad_alloc();
  std::string out(encoded, static_cast<std::size_t>(n));
  redisFreeCommand(encoded);
  return out;
}

}  // namespace corocache::test
