// SingleFlight's registry without a server or an io_context: who joins a flight and who
// starts a new one (func_cache's in-process fence against clears, detail/memo_clears.hpp).
#include <corocache/detail/single_flight.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <string>

namespace single_flight_test {

using corocache::detail::SingleFlight;

TEST_CASE("a caller joins a flight of its generation or a newer one, never an older one") {
  auto registry = std::make_shared<SingleFlight>();
  auto first = SingleFlight::join(registry, "k", 1);
  REQUIRE(first.run);  // nobody computes k yet: this caller starts it

  auto same = SingleFlight::join(registry, "k", 1);
  CHECK_FALSE(same.run);
  CHECK(same.flight == first.flight);

  // A caller that read its generation before a clear may join the newer flight.
  auto older = SingleFlight::join(registry, "k", 0);
  CHECK_FALSE(older.run);
  CHECK(older.flight == first.flight);

  // After a clear: a new flight replaces it; the old one goes on for its own callers.
  auto after_clear = SingleFlight::join(registry, "k", 2);
  REQUIRE(after_clear.run);
  CHECK(after_clear.flight != first.flight);
  auto later = SingleFlight::join(registry, "k", 2);
  CHECK(later.flight == after_clear.flight);

  // The old flight finishing does not remove the new one from the registry.
  first.run->finish(nullptr, "old");
  auto still = SingleFlight::join(registry, "k", 2);
  CHECK_FALSE(still.run);
  CHECK(still.flight == after_clear.flight);
  after_clear.run->finish(nullptr, "new");
  auto fresh = SingleFlight::join(registry, "k", 2);
  CHECK(fresh.run);  // finished flights are forgotten: the next miss starts anew
  fresh.run->finish(nullptr, "again");
}

}  // namespace single_flight_test
