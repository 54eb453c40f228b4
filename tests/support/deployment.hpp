#pragma once
// The deployment a test executable runs against, named on its command line with
// `--deployment <name>` (support/catch_main.cpp). One executable of the conformance suite
// covers every deployment of a backend type (tests/CMakeLists.txt registers its cases once
// per deployment), so the suite's code for that type is compiled once.

#include <initializer_list>
#include <stdexcept>
#include <string>

namespace corocache::test {

/// What `--deployment` named; empty if it was not given.
inline std::string& deployment_option() {
  static std::string name;
  return name;
}

/// The named deployment, or std::invalid_argument listing `choices` when it is missing or
/// not one of them: a test must never fall back to some other deployment silently.
inline const std::string& deployment(std::initializer_list<const char*> choices) {
  const std::string& name = deployment_option();
  std::string listed;
  for (const char* choice : choices) {
    if (name == choice) return name;
    listed += listed.empty() ? "" : ", ";
    listed += choice;
  }
  throw std::invalid_argument("this test executable needs --deployment <name>, one of: " + listed +
                              (name.empty() ? std::string(" (none given)") : " (got '" + name + "')"));
}

}  // namespace corocache::test
