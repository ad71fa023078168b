// A run's enrollment.json keeps every enrollment with the step that made it
// (harness/enrollment.h): both shapes read back, the latest stays readable by
// a reader of one enrollment, and the one in force at a step is the latest
// made before it.
#define BOOST_TEST_MODULE enrollment_history
#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include "harness/enrollment.h"

namespace tpmlab {
namespace {

using nlohmann::json;

Enrollment WithAk(uint8_t ak) {
  Enrollment e;
  e.dut = "dut0";
  e.enrolled_at = "2026-01-01T00:00:00Z";
  e.ek_name = {0x00, 0x0b, 0x01};
  e.ek_public_der = {0x30, 0x01};
  e.ak_name = {0x00, 0x0b, ak};
  e.ak_public_der = {0x30, ak};
  e.banks = {HashAlg::kSha256};
  return e;
}

BOOST_AUTO_TEST_CASE(a_history_keeps_every_enrollment_and_the_latest_on_top) {
  const json j = EnrollmentHistoryToJson({{1, WithAk(0xa1)}, {13, WithAk(0xa2)}}, {7, "/runs/tpmlab.db"});
  auto history = EnrollmentHistoryFromJson(j, "enrollment.json");
  BOOST_REQUIRE_MESSAGE(history.ok(), history.status().ToString());
  BOOST_REQUIRE_EQUAL(history->records.size(), 2u);
  BOOST_TEST(history->records[0].step == 1);
  BOOST_TEST(history->records[1].step == 13);
  BOOST_TEST(history->records[0].enrollment.ak_name == Bytes({0x00, 0x0b, 0xa1}));
  BOOST_REQUIRE(history->run.has_value());
  BOOST_TEST(history->run->run_id == 7);
  BOOST_TEST(history->run->database == "/runs/tpmlab.db");
  // A reader of one enrollment (an older tpmlab, tpmlab doctor) gets the latest.
  auto latest = EnrollmentFromJson(j, "enrollment.json");
  BOOST_REQUIRE(latest.ok());
  BOOST_TEST(latest->ak_name == Bytes({0x00, 0x0b, 0xa2}));
}

BOOST_AUTO_TEST_CASE(one_enrollment_reads_as_a_history_of_unknown_step) {
  auto history = EnrollmentHistoryFromJson(EnrollmentToJson(WithAk(0xa1)), "single.json");
  BOOST_REQUIRE_MESSAGE(history.ok(), history.status().ToString());
  BOOST_REQUIRE_EQUAL(history->records.size(), 1u);
  BOOST_TEST(history->records[0].step == -1);
  BOOST_TEST(!history->run.has_value());
  // In force from the start.
  BOOST_TEST(EnrollmentInForceAt(history->records, 0) == &history->records[0]);
}

BOOST_AUTO_TEST_CASE(the_enrollment_in_force_is_the_latest_made_before_the_step) {
  const std::vector<EnrollmentRecord> h = {{1, WithAk(0xa1)}, {13, WithAk(0xa2)}};
  BOOST_TEST(EnrollmentInForceAt(h, 0) == nullptr);  // not enrolled yet
  BOOST_TEST(EnrollmentInForceAt(h, 1) == nullptr);  // the enroll step judges nothing of its own
  BOOST_TEST(EnrollmentInForceAt(h, 2) == &h[0]);
  BOOST_TEST(EnrollmentInForceAt(h, 11) == &h[0]);
  BOOST_TEST(EnrollmentInForceAt(h, 13) == &h[0]);
  BOOST_TEST(EnrollmentInForceAt(h, 14) == &h[1]);
}

BOOST_AUTO_TEST_CASE(a_damaged_history_names_the_entry) {
  json j = EnrollmentHistoryToJson({{1, WithAk(0xa1)}, {13, WithAk(0xa2)}}, {7, "/runs/tpmlab.db"});
  j["enrollments"][1].erase("step");
  auto history = EnrollmentHistoryFromJson(j, "enrollment.json");
  BOOST_REQUIRE(!history.ok());
  BOOST_TEST(history.status().message() == "enrollment.json: enrollments[1]: 'step' is missing or not a whole number");
  j["enrollments"] = json::array();
  BOOST_TEST(!EnrollmentHistoryFromJson(j, "enrollment.json").ok());
}

}  // namespace
}  // namespace tpmlab
