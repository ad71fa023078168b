// FaultTransport over a scripted transport: each fault kind does what it
// says, rules target the next N commands, one command code, or a seeded
// probability, and the transport stays usable after every fault.
#define BOOST_TEST_MODULE fault_transport
#include <boost/test/unit_test.hpp>

#include <chrono>

#include "drivers/fake_transport.h"
#include "drivers/fault_transport.h"

namespace tpmlab {
namespace {

constexpr uint32_t kCcGetRandom = 0x17B;
constexpr uint32_t kCcReadClock = 0x181;

Bytes Command(uint32_t cc) { return ByteWriter().U16(0x8001).U32(10).U32(cc).Take(); }
Bytes Ok(Bytes body = {}) {
  ByteWriter w;
  w.U16(0x8001).U32(static_cast<uint32_t>(10 + body.size())).U32(0).Append(body);
  return w.Take();
}

FaultRule Rule(FaultKind kind, uint32_t count = UINT32_MAX) {
  FaultRule r;
  r.kind = kind;
  r.count = count;
  return r;
}

struct Fixture {
  FakeTransport fake;
  FaultTransport fault{fake, 42};
  Fixture() {
    fake.set_responder([](ByteView) -> FakeTransport::Reply { return Ok({1, 2, 3, 4, 5, 6, 7, 8}); });
  }
};

BOOST_FIXTURE_TEST_CASE(no_rule_passes_everything_through, Fixture) {
  auto r = fault.Exchange(Command(kCcGetRandom));
  BOOST_REQUIRE(r.ok());
  BOOST_TEST((*r == Ok({1, 2, 3, 4, 5, 6, 7, 8})));
  BOOST_TEST(fault.injected().empty());
}

BOOST_FIXTURE_TEST_CASE(response_code_answers_without_reaching_the_tpm, Fixture) {
  FaultRule retry = Rule(FaultKind::kResponseCode, 1);
  retry.response_code = kTpmRcRetry;
  fault.Add(retry);
  auto r = fault.Exchange(Command(kCcGetRandom));
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(TpmHeaderCode(*r) == kTpmRcRetry);
  BOOST_TEST(fake.commands().empty());
  // count 1: the next command goes through.
  auto next = fault.Exchange(Command(kCcGetRandom));
  BOOST_REQUIRE(next.ok());
  BOOST_TEST(TpmHeaderCode(*next) == 0u);
  BOOST_TEST(fake.commands().size() == 1u);
  BOOST_REQUIRE(fault.injected().size() == 1u);
  BOOST_TEST((fault.injected()[0].kind == FaultKind::kResponseCode));
}

BOOST_FIXTURE_TEST_CASE(disconnect_is_a_transport_error_and_sends_nothing, Fixture) {
  fault.Add(Rule(FaultKind::kDisconnect, 1));
  auto r = fault.Exchange(Command(kCcGetRandom));
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST((r.status().layer() == Layer::kTransport));
  BOOST_TEST(fake.commands().empty());
  BOOST_TEST(fault.Exchange(Command(kCcGetRandom)).ok());
}

BOOST_FIXTURE_TEST_CASE(drop_runs_the_command_and_times_out, Fixture) {
  fault.set_command_timeout(std::chrono::milliseconds(50));
  fault.Add(Rule(FaultKind::kDrop, 1));
  const auto start = std::chrono::steady_clock::now();
  auto r = fault.Exchange(Command(kCcReadClock));
  const auto took = std::chrono::steady_clock::now() - start;
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().timed_out());
  BOOST_TEST(fake.commands().size() == 1u);  // the TPM did run it
  BOOST_TEST((took >= std::chrono::milliseconds(50)));
  BOOST_TEST((took < std::chrono::seconds(5)));
  BOOST_TEST(fault.Exchange(Command(kCcReadClock)).ok());  // and the link recovers
}

BOOST_FIXTURE_TEST_CASE(corrupt_flips_one_byte_after_the_header, Fixture) {
  fault.Add(Rule(FaultKind::kCorrupt, 1));
  auto r = fault.Exchange(Command(kCcGetRandom));
  BOOST_REQUIRE(r.ok());
  const Bytes good = Ok({1, 2, 3, 4, 5, 6, 7, 8});
  BOOST_REQUIRE(r->size() == good.size());
  int differ = 0;
  for (size_t i = 0; i < good.size(); ++i) differ += (*r)[i] != good[i];
  BOOST_TEST(differ == 1);
  BOOST_TEST((Bytes(r->begin(), r->begin() + 10) == Bytes(good.begin(), good.begin() + 10)));
}

BOOST_FIXTURE_TEST_CASE(latency_delays_the_response, Fixture) {
  FaultRule slow = Rule(FaultKind::kLatency, 1);
  slow.latency = std::chrono::milliseconds(30);
  fault.Add(slow);
  const auto start = std::chrono::steady_clock::now();
  BOOST_TEST(fault.Exchange(Command(kCcGetRandom)).ok());
  BOOST_TEST((std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(30)));
}

BOOST_FIXTURE_TEST_CASE(a_rule_can_target_one_command_code, Fixture) {
  FaultRule failure = Rule(FaultKind::kResponseCode);
  failure.command_code = kCcReadClock;
  failure.response_code = kTpmRcFailure;
  fault.Add(failure);
  BOOST_TEST(TpmHeaderCode(*fault.Exchange(Command(kCcGetRandom))) == 0u);
  BOOST_TEST(TpmHeaderCode(*fault.Exchange(Command(kCcReadClock))) == kTpmRcFailure);
  BOOST_TEST(TpmHeaderCode(*fault.Exchange(Command(kCcGetRandom))) == 0u);
  BOOST_TEST(TpmHeaderCode(*fault.Exchange(Command(kCcReadClock))) == kTpmRcFailure);
}

// Which commands a probability rule hits, as a bit string.
std::string Hits(uint64_t seed) {
  FakeTransport fake;
  fake.set_responder([](ByteView) -> FakeTransport::Reply { return Ok(); });
  FaultTransport fault(fake, seed);
  FaultRule yielded = Rule(FaultKind::kResponseCode);
  yielded.probability = 0.3;
  yielded.response_code = kTpmRcYielded;
  fault.Add(yielded);
  std::string hits;
  for (int i = 0; i < 200; ++i) hits += TpmHeaderCode(*fault.Exchange(Command(kCcGetRandom))) ? '1' : '0';
  return hits;
}

BOOST_AUTO_TEST_CASE(probability_follows_the_seed) {
  const std::string a = Hits(7);
  BOOST_TEST(a == Hits(7));
  BOOST_TEST(a != Hits(8));
  const auto ones = std::count(a.begin(), a.end(), '1');
  BOOST_TEST(ones > 30);  // about 60 of 200
  BOOST_TEST(ones < 90);
}

}  // namespace
}  // namespace tpmlab
