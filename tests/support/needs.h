// Test cases that need something from outside the repository: the shared
// fixtures (../shared/fixtures beside the source tree, or the folder
// $TPMLAB_FIXTURES_DIR names) or a device such as /dev/tpmrm0.
//
// Such a case carries TPMLAB_NEEDS(label, path): a Boost.Test label, and a
// precondition that skips it, naming the path, when the path is absent. The
// tests/CMakeLists.txt function tpmlab_add_test(... NEEDS label) runs those
// cases as their own ctest, NAME_label, which ctest reports "Skipped" rather
// than "Passed" when they were skipped; NAME runs the rest.
#pragma once

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace tpmlab::test {

inline std::filesystem::path FixturesDir() {
  const char* named = std::getenv("TPMLAB_FIXTURES_DIR");
  return named != nullptr && *named != '\0' ? std::filesystem::path(named) : std::filesystem::path(TPMLAB_FIXTURES_DIR);
}

// A precondition: true when the path exists; else the reason the case is skipped.
struct PathPresent {
  std::filesystem::path path;
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    std::error_code ec;
    boost::test_tools::assertion_result present(std::filesystem::exists(path, ec));
    present.message() << "skipped: " << path.string() << " is absent";
    return present;
  }
};

}  // namespace tpmlab::test

// The words "is absent" after "precondition failed" are what the NAME_label
// ctest looks for (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt).
#define TPMLAB_NEEDS(test_label, needed_path)  \
  *boost::unit_test::label(test_label) *        \
      boost::unit_test::precondition(::tpmlab::test::PathPresent{needed_path})
