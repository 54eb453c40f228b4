#pragma once
// How the conformance suite gets a fresh backend of each type:
//   template <> struct BackendFactory<X> { static X make(boost::asio::any_io_executor ex); };
// One specialization per backend, in <backend>_factory.hpp next to this file.

#include <boost/asio/any_io_executor.hpp>

namespace corocache::test {
template <class B>
struct BackendFactory;
}  // namespace corocache::test
