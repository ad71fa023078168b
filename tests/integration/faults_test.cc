// Faults injected between a real swtpm and ESAPI: each becomes the error a
// lab engineer would expect, in the layer it belongs to, and the DUT's
// session carries on afterwards.
#define BOOST_TEST_MODULE faults
#include <boost/test/unit_test.hpp>

#include "emulated.h"

namespace tpmlab::testing {
namespace {

constexpr uint32_t kCcReadClock = 0x181;

FaultRule Rule(FaultKind kind, uint32_t count = 1) {
  FaultRule r;
  r.kind = kind;
  r.count = count;
  return r;
}

BOOST_AUTO_TEST_CASE(retry_yielded_and_testing_once_are_resubmitted) {
  EmulatedDut dut;
  REQUIRE_OK(dut->Startup({}));
  for (uint32_t rc : {kTpmRcRetry, kTpmRcYielded, kTpmRcTesting}) {
    FaultRule r = Rule(FaultKind::kResponseCode);
    r.response_code = rc;
    dut->faults().Add(r);
    dut->trace().TakeRecords();
    // ESAPI sends the command again, as a TSS must: the call succeeds and
    // the trace shows both answers.
    BOOST_TEST(dut.tpm().ReadClock().ok());
    const auto records = dut->trace().TakeRecords();
    BOOST_REQUIRE(records.size() == 2u);
    BOOST_TEST(records[0].response_code == rc);
    BOOST_TEST(records[1].response_code == 0u);
  }
}

BOOST_AUTO_TEST_CASE(a_tpm_that_keeps_answering_retry_or_failure_is_a_tpm_error) {
  EmulatedDut dut;
  REQUIRE_OK(dut->Startup({}));
  for (uint32_t rc : {kTpmRcRetry, kTpmRcFailure}) {
    FaultRule r = Rule(FaultKind::kResponseCode, UINT32_MAX);
    r.response_code = rc;
    dut->faults().Add(r);
    auto clock = dut.tpm().ReadClock();
    BOOST_REQUIRE(!clock.ok());
    BOOST_TEST((clock.status().layer() == Layer::kTpm), clock.status().ToString());
    BOOST_TEST(clock.status().tpm_rc() == rc);
    dut->faults().ClearRules();
    BOOST_TEST(dut.tpm().ReadClock().ok());  // the TPM is fine again
  }
}

BOOST_AUTO_TEST_CASE(a_dropped_response_costs_one_timeout_and_the_session_survives) {
  EmulatedDut dut;
  REQUIRE_OK(dut->Startup({}));
  dut->trace().set_command_timeout(std::chrono::milliseconds(200));
  FaultRule drop = Rule(FaultKind::kDrop);
  drop.command_code = kCcReadClock;
  dut->faults().Add(drop);
  const auto start = std::chrono::steady_clock::now();
  auto clock = dut.tpm().ReadClock();
  BOOST_REQUIRE(!clock.ok());
  BOOST_TEST(clock.status().timed_out(), clock.status().ToString());
  BOOST_TEST((std::chrono::steady_clock::now() - start < std::chrono::seconds(5)));
  // ESAPI is rebuilt after the TCTI failure: the same Tpm works on.
  BOOST_TEST(dut.tpm().ReadClock().ok());
  BOOST_TEST(dut.tpm().ReadPcrs({HashAlg::kSha256}).ok());
}

BOOST_AUTO_TEST_CASE(a_disconnect_is_a_transport_error) {
  EmulatedDut dut;
  REQUIRE_OK(dut->Startup({}));
  dut->faults().Add(Rule(FaultKind::kDisconnect));
  auto clock = dut.tpm().ReadClock();
  BOOST_REQUIRE(!clock.ok());
  BOOST_TEST((clock.status().layer() == Layer::kTransport), clock.status().ToString());
  BOOST_TEST(dut.tpm().ReadClock().ok());
}

BOOST_AUTO_TEST_CASE(corrupted_responses_never_crash_the_harness) {
  EmulatedDut dut;
  REQUIRE_OK(dut->Startup({}));
  dut->faults().Add(Rule(FaultKind::kCorrupt, 40));
  // Whatever a flipped byte does to each answer, every call returns.
  for (int i = 0; i < 10; ++i) {
    auto c = dut.tpm().ReadClock();
    if (!c.ok()) BOOST_TEST_MESSAGE(c.status().ToString());
    (void)dut.tpm().ReadPcrs({HashAlg::kSha1, HashAlg::kSha256});
    (void)dut.tpm().Properties();
  }
  BOOST_TEST(dut->faults().injected().size() >= 30u);
  dut->faults().ClearRules();
  auto after = dut.tpm().ReadClock();
  BOOST_TEST(after.ok(), after.status().ToString());
}

BOOST_AUTO_TEST_CASE(latency_shows_in_the_trace) {
  EmulatedDut dut;
  REQUIRE_OK(dut->Startup({}));
  dut->trace().TakeRecords();
  FaultRule slow = Rule(FaultKind::kLatency);
  slow.latency = std::chrono::milliseconds(40);
  dut->faults().Add(slow);
  BOOST_REQUIRE(dut.tpm().ReadClock().ok());
  const auto records = dut->trace().TakeRecords();
  BOOST_REQUIRE(records.size() == 1u);
  BOOST_TEST((records[0].duration >= std::chrono::milliseconds(40)));
}

}  // namespace
}  // namespace tpmlab::testing
