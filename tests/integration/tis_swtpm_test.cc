// TIS over SPI on a real TPM: the engine over the simulated SPI TPM in front
// of a swtpm, running real TPM 2.0 commands through ESAPI, with and without
// wait states and slow burst counts; every result matches the same commands
// on a twin chip over the plain socket transport.
#define BOOST_TEST_MODULE tis_swtpm
#include <boost/test/unit_test.hpp>

#include "drivers/tis_simulator.h"
#include "drivers/tis_spi.h"
#include "emulated.h"
#include "harness/tpm.h"

namespace tpmlab::testing {
namespace {

// A swtpm on a copy of the provisioned chip (so twins share their seeds).
struct Chip {
  Chip() {
    root = MakeTempDir("tis");
    SwtpmConfig c;
    c.state_dir = root / "state";
    fs::create_directories(c.state_dir);
    fs::copy_file(ProvisionedTemplate() / "tpm2-00.permall", c.state_dir / "tpm2-00.permall");
    swtpm = Require(SwtpmProcess::Launch(c));
    socket = std::make_unique<SwtpmTransport>(*swtpm);
    socket->set_command_timeout(std::chrono::milliseconds(20000));
  }
  ~Chip() {
    socket.reset();
    swtpm.reset();
    std::error_code ignored;
    fs::remove_all(root, ignored);
  }
  fs::path root;
  std::unique_ptr<SwtpmProcess> swtpm;
  std::unique_ptr<SwtpmTransport> socket;
};

struct Observed {
  TpmProperties properties;
  std::vector<HashAlg> banks;
  PcrValues pcrs;
  Bytes ek_name;
  QuoteBlob quote;
};

Observed Run(Tpm& tpm) {
  Observed o;
  REQUIRE_OK(tpm.Startup(StartupType::kClear));
  o.properties = Require(tpm.Properties());
  o.banks = Require(tpm.PcrBanks());
  REQUIRE_OK(tpm.Extend(16, {{HashAlg::kSha256, Bytes(32, 0xA5)}, {HashAlg::kSha1, Bytes(20, 0x5A)}}));
  o.pcrs = Require(tpm.ReadPcrs(o.banks));
  o.ek_name = Require(tpm.EnsureEk()).name;
  const KeyInfo ak = Require(tpm.EnsureAk(KeyType::kEccP256));
  const Bytes nonce(20, 0x42);
  o.quote = Require(tpm.Quote(ak, HashAlg::kSha256, 0x00FFFFFF, nonce));
  return o;
}

void CompareWithSocket(TisSimulator::Options options, const std::string& label) {
  BOOST_TEST_CONTEXT(label) {
    Chip reference, dut;
    auto socket_tpm = Require(Tpm::Open(*reference.socket));
    const Observed want = Run(*socket_tpm);

    TisSimulator sim(*dut.socket, options);
    auto tis = Require(TisSpiTransport::Open(sim));
    tis->set_command_timeout(std::chrono::milliseconds(20000));
    BOOST_TEST(tis->info().description.find("IBM vid:did:rid 1014:0001:01") != std::string::npos,
               tis->info().description);
    auto tis_tpm = Require(Tpm::Open(*tis));
    const Observed got = Run(*tis_tpm);

    BOOST_TEST(got.properties.manufacturer == want.properties.manufacturer);
    BOOST_TEST(got.properties.vendor_string == want.properties.vendor_string);
    BOOST_TEST(got.properties.firmware_version == want.properties.firmware_version);
    BOOST_TEST((got.banks == want.banks));
    BOOST_TEST((got.pcrs == want.pcrs));
    BOOST_TEST(ToHex(got.ek_name) == ToHex(want.ek_name));
    BOOST_TEST(!got.quote.attest.empty());
    BOOST_TEST(got.quote.signature.size() > 8u);
    BOOST_TEST(sim.commands() >= 8u);
    std::string violations;
    for (const auto& v : sim.violations()) violations += v + "; ";
    BOOST_TEST(violations.empty(), violations);
    BOOST_TEST_MESSAGE(label << ": " << sim.commands() << " commands, " << sim.wait_states_inserted()
                             << " wait states");
  }
}

BOOST_AUTO_TEST_CASE(real_commands_over_tis_match_the_socket_transport) {
  CompareWithSocket({}, "no wait states");
}

BOOST_AUTO_TEST_CASE(with_random_wait_states_and_small_bursts) {
  TisSimulator::Options o;
  o.wait_states_min = 0;
  o.wait_states_max = 6;
  o.seed = 2024;
  o.burst_count = 32;
  CompareWithSocket(o, "random wait states 0..6, burstCount 32");
}

BOOST_AUTO_TEST_CASE(with_fixed_wait_states_and_a_slow_tpm) {
  TisSimulator::Options o;
  o.wait_states_min = o.wait_states_max = 2;
  o.burst_count = 8;
  o.burst_zero_reads = 1;
  o.ready_delay_reads = 3;
  o.execution_reads = 5;
  CompareWithSocket(o, "2 wait states, burstCount 8, slow");
}

BOOST_AUTO_TEST_CASE(a_frozen_swtpm_times_out_and_the_next_command_works) {
  Chip dut;
  TisSimulator sim(*dut.socket);
  auto tis = Require(TisSpiTransport::Open(sim));
  const Bytes startup = {0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x44, 0, 0};
  const Bytes random8 = {0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 8};
  tis->set_command_timeout(std::chrono::milliseconds(300));
  BOOST_REQUIRE(tis->Exchange(startup).ok());
  dut.swtpm->Freeze(true);
  auto r = tis->Exchange(random8);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().timed_out());
  BOOST_TEST(r.status().message().find("dataAvail not set") != std::string::npos, r.status().message());
  dut.swtpm->Freeze(false);
  tis->set_command_timeout(std::chrono::milliseconds(5000));
  auto again = tis->Exchange(random8);
  BOOST_REQUIRE_MESSAGE(again.ok(), again.status().ToString());
  BOOST_TEST(TpmHeaderCode(*again) == 0u);
  BOOST_TEST(again->size() == 20u);
}

}  // namespace
}  // namespace tpmlab::testing
