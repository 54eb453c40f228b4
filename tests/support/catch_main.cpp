// Catch2's main for every test executable.
// - Each case is tagged with its source file's name ([#connection_test]): several test
//   sources compile into one executable, and CTest registers each source's cases under
//   that source's own prefix by this tag (corocache_add_test_suite in tests/CMakeLists.txt).
// - `--deployment <name>` names the deployment a conformance executable runs against
//   (support/deployment.hpp).
#define CATCH_CONFIG_RUNNER
#include "support/deployment.hpp"

#include <catch2/catch.hpp>

int main(int argc, char* argv[]) {
  Catch::Session session;
  session.configData().filenamesAsTags = true;
  session.cli(session.cli() | Catch::clara::Opt(corocache::test::deployment_option(), "name")["--deployment"](
                                  "the deployment to test (conformance suites: see tests/CMakeLists.txt)"));
  const int status = session.applyCommandLine(argc, argv);
  if (status != 0) return status;
  return session.run();
}
