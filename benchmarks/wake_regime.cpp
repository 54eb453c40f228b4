// Prints this machine's thread wake-up time and regime (wake_regime.hpp) once, e.g. before
// and after a run of another harness (benchmarks/peers.sh brackets ../shared/peerbench).
#include "wake_regime.hpp"

int main(int argc, char** argv) {
  corocache::bench::print_wake_regime(argc > 1 ? argv[1] : "now");
  return 0;
}
