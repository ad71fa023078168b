// The TIS-over-SPI engine against the simulated SPI TPM, in front of a
// scripted inner transport, on a fake clock: plain exchanges, wait states,
// small and slow burst counts, a locality held by someone else, a TPM that
// stops answering, transfer errors, and the header bytes on the wire.
#define BOOST_TEST_MODULE tis_spi
#include <boost/test/unit_test.hpp>

#include <chrono>

#include "drivers/fake_transport.h"
#include "drivers/tis_simulator.h"
#include "drivers/tis_spi.h"

namespace tpmlab {
namespace {

using std::chrono::milliseconds;

// A command of `size` bytes whose body counts up.
Bytes Command(size_t size, uint32_t cc = 0x17B) {
  ByteWriter w;
  w.U16(0x8001).U32(static_cast<uint32_t>(size)).U32(cc);
  for (size_t i = kTpmHeaderSize; i < size; ++i) w.U8(static_cast<uint8_t>(i * 7));
  return w.Take();
}

// The fake TPM answers with its command's body reversed.
Bytes Echo(ByteView command) {
  ByteWriter w;
  w.U16(0x8001).U32(static_cast<uint32_t>(command.size())).U32(0);
  for (size_t i = command.size(); i > kTpmHeaderSize; --i) w.U8(command[i - 1]);
  return w.Take();
}

std::string Joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "; ";
  return s;
}

struct Fixture {
  FakeTransport fake;
  FakeClock clock;
  TisSimulator sim{fake};
  TisSpiConfig config;

  Fixture() {
    fake.set_responder([](ByteView c) -> FakeTransport::Reply { return Echo(c); });
    config.clock = &clock;
  }
  std::unique_ptr<TisSpiTransport> Open() {
    auto t = TisSpiTransport::Open(sim, config);
    BOOST_REQUIRE_MESSAGE(t.ok(), t.status().ToString());
    return std::move(*t);
  }
  void ExchangeOk(Transport& t, size_t size) {
    const Bytes command = Command(size);
    auto r = t.Exchange(command);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    BOOST_TEST((*r == Echo(command)));
    BOOST_TEST((fake.commands().back() == command));
  }
  void NoViolations() { BOOST_TEST(sim.violations().empty(), Joined(sim.violations())); }
  milliseconds Elapsed(Clock::TimePoint since) {
    return std::chrono::duration_cast<milliseconds>(clock.Now() - since);
  }
};

BOOST_FIXTURE_TEST_CASE(plain_exchange_and_chip_identity, Fixture) {
  auto t = Open();
  BOOST_TEST(t->chip().vendor_id == 0x1014);
  BOOST_TEST(t->chip().device_id == 0x0001);
  BOOST_TEST(t->chip().revision == 0x01);
  BOOST_TEST(t->info().name == "tis-spi");
  BOOST_TEST(t->info().description.find("IBM vid:did:rid 1014:0001:01, locality 0") != std::string::npos,
             t->info().description);
  ExchangeOk(*t, 10);
  ExchangeOk(*t, 300);   // several 64-byte frames each way
  ExchangeOk(*t, 4096);  // the largest message
  BOOST_TEST(sim.commands() == 3u);
  NoViolations();
  t.reset();  // releases the locality
  BOOST_TEST(!sim.active_locality().has_value());
}

BOOST_FIXTURE_TEST_CASE(header_bytes_on_the_wire_follow_the_spec, Fixture) {
  auto t = Open();
  // Open read DID_VID first: 83 D4 0F 00, then requested locality 0: 00 D4 00 00 02.
  BOOST_REQUIRE(sim.frames().size() >= 3u);
  BOOST_TEST((sim.frames()[0].mosi == Bytes{0x83, 0xD4, 0x0F, 0x00, 0, 0, 0, 0}));
  bool saw_request = false;
  for (const auto& f : sim.frames()) saw_request |= f.mosi == Bytes{0x00, 0xD4, 0x00, 0x00, 0x02};
  BOOST_TEST(saw_request);
  sim.clear_frames();
  std::array<uint8_t, 4> sts{};
  BOOST_REQUIRE(t->ReadRegister(tis::kSts, sts).ok());
  BOOST_TEST((sim.frames().back().mosi == Bytes{0x83, 0xD4, 0x00, 0x18, 0, 0, 0, 0}));
  const uint8_t ready = tis::kStsCommandReady;
  BOOST_REQUIRE(t->WriteRegister(tis::kSts, {&ready, 1}).ok());
  BOOST_TEST((sim.frames().back().mosi == Bytes{0x00, 0xD4, 0x00, 0x18, 0x40}));
  // A 64-byte FIFO write: byte0 = 0x3F.
  sim.clear_frames();
  ExchangeOk(*t, 200);
  size_t fifo_writes = 0;
  for (const auto& f : sim.frames()) {
    if (!f.read && f.reg == tis::kDataFifo) {
      ++fifo_writes;
      BOOST_TEST(f.mosi[0] == f.length - 1);
      BOOST_TEST((Bytes(f.mosi.begin() + 1, f.mosi.begin() + 4) == Bytes{0xD4, 0x00, 0x24}));
    }
  }
  BOOST_TEST(fifo_writes == 5u);  // 64 + 64 + 64 + 7, then the last byte alone
  NoViolations();
}

BOOST_FIXTURE_TEST_CASE(locality_is_in_the_address, Fixture) {
  config.locality = 2;
  auto t = Open();
  sim.clear_frames();
  ExchangeOk(*t, 20);
  for (const auto& f : sim.frames()) {
    BOOST_TEST(f.mosi[1] == 0xD4);
    BOOST_TEST((f.mosi[2] & 0xF0) == 0x20);
  }
  BOOST_TEST(fake.locality() == 2);  // the simulator passed it on to the inner TPM
  BOOST_REQUIRE(t->SetLocality(3).ok());
  ExchangeOk(*t, 20);
  BOOST_TEST(fake.locality() == 3);
  BOOST_TEST(sim.active_locality().value() == 3);
  NoViolations();
}

BOOST_FIXTURE_TEST_CASE(wait_states_hold_chip_select_and_are_polled, Fixture) {
  sim.options().wait_states_min = sim.options().wait_states_max = 3;
  auto t = Open();
  sim.clear_frames();
  std::array<uint8_t, 4> sts{};
  BOOST_REQUIRE(t->ReadRegister(tis::kSts, sts).ok());
  // Header, three single-byte polls under the same CS, then the data.
  BOOST_TEST((sim.frames().back().mosi == Bytes{0x83, 0xD4, 0x00, 0x18, 0, 0, 0, 0, 0, 0, 0}));
  BOOST_TEST(sim.frames().back().wait_states == 3);
  BOOST_TEST(((sts[0] & tis::kStsValid) != 0));
  for (size_t size : {10u, 64u, 65u, 1000u}) ExchangeOk(*t, size);
  NoViolations();
}

BOOST_FIXTURE_TEST_CASE(random_wait_states_from_a_seed, Fixture) {
  sim.options().wait_states_min = 0;
  sim.options().wait_states_max = 12;
  sim.options().seed = 7;
  auto t = Open();
  for (size_t i = 0; i < 40; ++i) ExchangeOk(*t, 10 + i * 37);
  BOOST_TEST(sim.wait_states_inserted() > 100u);
  NoViolations();
}

BOOST_FIXTURE_TEST_CASE(too_many_wait_states_fail_the_frame_then_recover, Fixture) {
  auto t = Open();
  sim.set_silence(TisSimulator::Silence::kNeverReady);
  auto r = t->Exchange(Command(30));
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().message().find("wait state not released after 256 polls") != std::string::npos,
             r.status().message());
  sim.set_silence(TisSimulator::Silence::kNone);
  ExchangeOk(*t, 30);
}

BOOST_FIXTURE_TEST_CASE(burst_count_one_and_small_bursts, Fixture) {
  for (uint16_t burst : {1, 7, 33}) {
    BOOST_TEST_CONTEXT("burstCount " << burst) {
      sim.options().burst_count = burst;
      auto t = Open();
      sim.clear_frames();
      ExchangeOk(*t, 150);
      for (const auto& f : sim.frames()) {
        if (f.reg == tis::kDataFifo) BOOST_TEST(f.length <= burst);
      }
      NoViolations();
    }
  }
}

BOOST_FIXTURE_TEST_CASE(slow_burst_counts_ready_and_execution, Fixture) {
  sim.options().burst_count = 16;
  sim.options().burst_zero_reads = 3;
  sim.options().ready_delay_reads = 5;
  sim.options().execution_reads = 20;
  auto t = Open();
  for (int i = 0; i < 5; ++i) ExchangeOk(*t, 100);
  NoViolations();
}

BOOST_FIXTURE_TEST_CASE(locality_held_by_someone_else_is_a_clear_error_within_timeout_a, Fixture) {
  sim.HoldLocality(2);
  const auto start = clock.Now();
  auto t = TisSpiTransport::Open(sim, config);
  BOOST_REQUIRE(!t.ok());
  const std::string m = t.status().message();
  BOOST_TEST(m.find("locality not granted within TIMEOUT_A (750 ms): locality 2 holds the TPM") !=
                 std::string::npos, m);
  BOOST_TEST(m.find("(locality 0)") != std::string::npos, m);
  BOOST_TEST(Elapsed(start) >= milliseconds(750));
  BOOST_TEST(Elapsed(start) < milliseconds(800));
  // Our request was withdrawn: releasing the other holder hands it to nobody.
  sim.ReleaseHeldLocality();
  BOOST_TEST(!sim.active_locality().has_value());
  auto again = Open();
  ExchangeOk(*again, 40);
  NoViolations();
}

BOOST_FIXTURE_TEST_CASE(a_tpm_that_stops_answering_times_out_within_budget_and_recovers, Fixture) {
  auto t = Open();
  ExchangeOk(*t, 20);

  // Nothing drives MISO: every byte reads 0xFF.
  sim.set_silence(TisSimulator::Silence::kAllOnes);
  auto start = clock.Now();
  auto r = t->Exchange(Command(20));
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().message().find("TPM_STS=0xffffffff (reads all ones") != std::string::npos,
             r.status().message());
  BOOST_TEST(r.status().message().find("TIMEOUT_B") != std::string::npos, r.status().message());
  BOOST_TEST(Elapsed(start) <= milliseconds(2 * 2000 + 10));  // commandReady asked twice
  sim.set_silence(TisSimulator::Silence::kNone);
  ExchangeOk(*t, 20);

  // Hung in execution: the response never comes; the caller's timeout bounds it.
  t->set_command_timeout(milliseconds(5000));
  BOOST_REQUIRE(t->Transmit(Command(20)).ok());
  sim.set_silence(TisSimulator::Silence::kStuck);
  start = clock.Now();
  auto late = t->Receive(milliseconds(5000));
  BOOST_REQUIRE(!late.ok());
  BOOST_TEST(late.status().timed_out());
  BOOST_TEST(late.status().message().find("TPM_STS.dataAvail not set") != std::string::npos,
             late.status().message());
  BOOST_TEST(Elapsed(start) >= milliseconds(5000));
  BOOST_TEST(Elapsed(start) < milliseconds(5010));
  t->AbandonResponse();
  sim.set_silence(TisSimulator::Silence::kNone);
  ExchangeOk(*t, 20);
  ExchangeOk(*t, 500);
}

BOOST_FIXTURE_TEST_CASE(a_response_owed_after_a_short_timeout_can_still_be_read, Fixture) {
  sim.options().execution_reads = 40;  // STS reads 0.5 ms apart: about 20 ms
  auto t = Open();
  const Bytes command = Command(40);
  BOOST_REQUIRE(t->Transmit(command).ok());
  auto early = t->Receive(milliseconds(10));
  BOOST_REQUIRE(!early.ok());
  BOOST_TEST(early.status().timed_out());
  auto r = t->Receive(milliseconds(100));
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  BOOST_TEST((*r == Echo(command)));
}

BOOST_FIXTURE_TEST_CASE(cancel_reaches_the_tpm, Fixture) {
  auto t = Open();
  BOOST_REQUIRE(t->Transmit(Command(20)).ok());
  BOOST_REQUIRE(t->Cancel().ok());
  BOOST_TEST(fake.cancels() == 1);
  auto r = t->Receive(milliseconds(100));
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  NoViolations();
}

BOOST_FIXTURE_TEST_CASE(a_transfer_error_anywhere_fails_one_exchange_then_recovers, Fixture) {
  sim.options().burst_count = 16;
  sim.options().wait_states_max = 2;
  auto t = Open();
  int failed = 0;
  // Each transfer of a whole exchange in turn: the error lands in headers,
  // wait-state polls, FIFO writes, tpmGo, the response read, commandReady.
  for (int nth = 1; nth <= 120; ++nth) {
    BOOST_TEST_CONTEXT("transfer " << nth) {
      sim.FailTransfer(nth);
      const Bytes command = Command(60);
      auto r = t->Exchange(command);
      if (!r.ok()) {
        ++failed;
        BOOST_TEST(r.status().message().find("simulated SPI transfer error") != std::string::npos,
                   r.status().message());
        BOOST_TEST(r.status().message().rfind("TIS: ", 0) == 0u, r.status().message());
      } else {
        BOOST_TEST((*r == Echo(command)));  // a success is never a wrong answer
      }
      sim.FailTransfer(0);
      ExchangeOk(*t, 60);
    }
  }
  BOOST_TEST(failed > 20);
}

BOOST_FIXTURE_TEST_CASE(random_transfer_errors_never_give_a_wrong_response, Fixture) {
  sim.options().seed = 99;
  sim.options().wait_states_max = 3;
  auto t = Open();
  sim.set_transfer_error_rate(0.01);
  int ok = 0;
  for (int i = 0; i < 200; ++i) {
    const Bytes command = Command(10 + static_cast<size_t>(i) * 13 % 700);
    auto r = t->Exchange(command);
    if (r.ok()) {
      ++ok;
      BOOST_TEST((*r == Echo(command)));
    }
  }
  // How many succeed depends on how often the engine polls, which follows
  // real time in the simulator (a loaded host polls more, so more transfers
  // draw an error); that none is ever wrong does not.
  BOOST_TEST(ok > 20);
  BOOST_TEST(sim.injected_errors() > 10u);
  sim.set_transfer_error_rate(0);
  ExchangeOk(*t, 100);
}

// _TPM_Init resets the TIS registers: no locality, state idle, and a locality
// the inner transport was given is set again. A host told of the reset
// re-takes its locality and carries on without a protocol violation.
BOOST_FIXTURE_TEST_CASE(power_on_resets_the_tis_and_a_told_host_carries_on, Fixture) {
  auto t = Open();
  ExchangeOk(*t, 30);
  BOOST_REQUIRE(t->SetLocality(3).ok());
  ExchangeOk(*t, 30);
  BOOST_TEST(sim.active_locality().value_or(0xFF) == 3);
  BOOST_TEST(fake.locality() == 3);

  // The TPM behind comes back at locality 0 (a relaunched emulator).
  BOOST_REQUIRE(fake.SetLocality(0).ok());
  sim.PowerOn();
  BOOST_TEST(!sim.active_locality().has_value());
  BOOST_TEST((sim.state() == TisSimulator::State::kIdle));
  t->ChipReset();
  ExchangeOk(*t, 50);
  BOOST_TEST(sim.active_locality().value_or(0xFF) == 3);
  BOOST_TEST(fake.locality() == 3);  // set again, not assumed
  BOOST_REQUIRE(t->SetLocality(0).ok());
  ExchangeOk(*t, 40);
  NoViolations();
}

// A host not told of the reset writes to a locality it no longer has: the
// simulator records it (and the exchange fails or recovers, but not silently).
BOOST_FIXTURE_TEST_CASE(a_host_unaware_of_a_reset_is_caught, Fixture) {
  auto t = Open();
  ExchangeOk(*t, 30);
  sim.PowerOn();
  (void)t->Exchange(Command(30));
  BOOST_TEST(!sim.violations().empty());
}

BOOST_FIXTURE_TEST_CASE(no_tpm_on_the_bus_is_reported_at_open, Fixture) {
  sim.set_silence(TisSimulator::Silence::kAllOnes);
  const auto start = clock.Now();
  auto t = TisSpiTransport::Open(sim, config);
  BOOST_REQUIRE(!t.ok());
  BOOST_TEST(t.status().message().find("TPM_DID_VID reads 0xffffffff: no TPM answering") !=
                 std::string::npos, t.status().message());
  BOOST_TEST(Elapsed(start) <= milliseconds(1000));  // 100 probes, 10 ms apart
}

}  // namespace
}  // namespace tpmlab
