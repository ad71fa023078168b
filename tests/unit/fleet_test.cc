// A fleet's names and verdicts (harness/fleet.h, harness/cli/exit_codes.h):
// each DUT's folder name is unique and safe, and the fleet's status and exit
// code are the worst of its DUTs' in the documented order.
#define BOOST_TEST_MODULE fleet
#include <boost/test/unit_test.hpp>

#include "exit_codes.h"
#include "harness/fleet.h"

namespace tpmlab {
namespace {

using Names = std::vector<std::string>;

BOOST_AUTO_TEST_CASE(emulated_duts_are_numbered_from_zero) {
  BOOST_TEST(FleetDutNames(3, {}) == (Names{"dut0", "dut1", "dut2"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(bench_names_become_unique_safe_folder_names) {
  // A repeated name gets -2, -3; a name another bench already made unique is
  // skipped over; what a folder name cannot hold becomes '_'.
  BOOST_TEST(FleetDutNames(0, {"lab", "lab", "lab-2", "a/b c", "..", ""}) ==
                 (Names{"lab", "lab-2", "lab-2-2", "a_b_c", "bench", "bench-2"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(worst_status_order) {
  BOOST_TEST(RunStatusSeverity(RunStatus::kPassed) < RunStatusSeverity(RunStatus::kFailed));
  BOOST_TEST(RunStatusSeverity(RunStatus::kFailed) < RunStatusSeverity(RunStatus::kError));
  BOOST_TEST(RunStatusSeverity(RunStatus::kError) < RunStatusSeverity(RunStatus::kInterrupted));
}

BOOST_AUTO_TEST_CASE(worst_exit_code_order) {
  using namespace cli;
  const int order[] = {kExitPassed, kExitFailed, kExitRunError, kExitEnvironment, kExitUsage, kExitInterrupted};
  for (size_t i = 0; i < std::size(order); ++i) {
    for (size_t j = 0; j < std::size(order); ++j) {
      BOOST_TEST(WorstExit(order[i], order[j]) == order[std::max(i, j)]);
    }
  }
  BOOST_TEST(WorstExit(kExitPassed, 77) == 77);  // an unknown code counts as a run error
  BOOST_TEST(WorstExit(77, kExitUsage) == kExitUsage);
}

}  // namespace
}  // namespace tpmlab
