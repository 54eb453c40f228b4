#pragma once
#include "conformance/backend_factory.hpp"

#include <corocache/memory/backend.hpp>

namespace corocache::test {
template <>
struct BackendFactory<MemoryBackend> {
  static MemoryBackend make(boost::asio::any_io_executor ex) { return MemoryBackend(std::move(ex)); }
};
}  // namespace corocache::test
