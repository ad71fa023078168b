// Recorded firmware on a real swtpm: a log loaded as a firmware model boots
// an emulated DUT to exactly the PCRs the log replays to, in every bank, with
// StartupLocality 3 and an H-CRTM taken from the log; the log the DUT then
// exposes is the recorded one. A log missing a bank in one event is refused
// with that event named. On the shared fixtures (real machines' logs), each
// replays on swtpm to the PCRs an independent replay gives.
#define BOOST_TEST_MODULE recorded_firmware
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "drivers/swtpm.h"
#include "harness/replay.h"
#include "needs.h"
#include "platform.h"

namespace tpmlab::testing {
namespace {

void WriteFile(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
}

void WriteFile(const fs::path& file, const Bytes& bytes) {
  WriteFile(file, std::string(bytes.begin(), bytes.end()));
}

Bytes ReadFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<HashAlg> BanksOf(const FirmwareModel& model) {
  std::vector<HashAlg> banks;
  for (const auto& name : *model.banks) banks.push_back(*HashAlgFromName(name));
  return banks;
}

// The platform options a recorded model brings (as a scenario takes them).
BootOptions BootOf(const FirmwareModel& model) {
  BootOptions boot;
  boot.startup_locality = model.startup_locality.value_or(0);
  if (model.hcrtm) boot.hcrtm_data = Bytes(model.hcrtm->begin(), model.hcrtm->end());
  return boot;
}

// Every PCR of every bank the TPM has against the replay: "" when all equal.
std::string Differences(const Replay& replay, const PcrValues& tpm) {
  std::string out;
  for (const auto& [bank, values] : tpm) {
    auto replayed = replay.pcrs.find(bank);
    if (replayed == replay.pcrs.end()) {
      out += std::string("no replay of ") + HashAlgName(bank) + " ";
      continue;
    }
    for (int i = 0; i < kPcrCount; ++i) {
      if (values[i] != replayed->second[i]) out += std::string(HashAlgName(bank)) + ":" + std::to_string(i) + " ";
    }
  }
  return out;
}

BOOST_AUTO_TEST_CASE(a_tpmlab_log_replays_on_swtpm_with_locality_3_and_hcrtm) {
  for (bool hcrtm : {false, true}) {
    BOOST_TEST_CONTEXT("hcrtm " << hcrtm) {
      BootOptions written_with;
      written_with.startup_locality = 3;
      if (hcrtm) written_with.hcrtm_data = Bytes{'s', '-', 'c', 'r', 't', 'm', ' ', 'b', 'l', 'o', 'b'};
      const EventLog original = MeasuredBootLog(Model("baseline"), written_with, kBanks);
      const Replay replay = Require(ReplayEventLog(original));
      BOOST_REQUIRE_EQUAL(replay.startup_locality, 3);
      BOOST_REQUIRE_EQUAL(replay.hcrtm, hcrtm);

      const fs::path dir = MakeTempDir("recorded");
      WriteFile(dir / "field.bin", WriteEventLog(original));
      WriteFile(dir / "field.yaml", std::string("name: field\nrecorded: field.bin\n") +
                                        (hcrtm ? "hcrtm: s-crtm blob\n" : ""));
      const FirmwareModel model = Require(LoadFirmwareModel(dir / "field.yaml"));
      BOOST_TEST(*model.banks == (std::vector<std::string>{"sha1", "sha256"}), boost::test_tools::per_element());
      BOOST_TEST(model.startup_locality.has_value() == !hcrtm);  // an H-CRTM decides PCR0's start

      EmulatedDut dut(/*unix_sockets=*/false, *model.banks);
      const BootOptions boot = BootOf(model);
      EmulatedFirmware firmware(model, boot);
      REQUIRE_OK(dut.dut->Startup(boot));
      REQUIRE_OK(firmware.AfterStartup(dut.dut->tpm(), StartupType::kClear, BanksOf(model)));
      const PcrValues pcrs = Require(dut.dut->tpm().ReadPcrs(BanksOf(model)));
      BOOST_TEST(pcrs.size() == 2u);
      BOOST_TEST(Differences(replay, pcrs) == "");
      // The log the DUT exposes is the recorded one, event for event.
      BOOST_TEST(Require(firmware.ReadLog()) == WriteEventLog(original));
      // And again after a cold boot.
      REQUIRE_OK(dut.dut->PowerCycle(PowerCycleKind::kReset, boot));
      REQUIRE_OK(firmware.AfterStartup(dut.dut->tpm(), StartupType::kClear, BanksOf(model)));
      BOOST_TEST(Differences(replay, Require(dut.dut->tpm().ReadPcrs(BanksOf(model)))) == "");
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    }
  }
}

BOOST_AUTO_TEST_CASE(an_hcrtm_without_its_data_or_with_other_data_is_refused) {
  BootOptions boot;
  boot.hcrtm_data = Bytes{'a'};
  const fs::path dir = MakeTempDir("recorded");
  WriteFile(dir / "field.bin", WriteEventLog(MeasuredBootLog(Model("baseline"), boot, kBanks)));
  auto bare = LoadFirmwareModel(dir / "field.bin");
  BOOST_REQUIRE(!bare.ok());
  BOOST_TEST(bare.status().message().find("event 0 (PCR 0, EV_EFI_HCRTM_EVENT)") != std::string::npos,
             bare.status().message());
  WriteFile(dir / "field.yaml", "name: field\nrecorded: field.bin\nhcrtm: b\n");
  auto other = LoadFirmwareModel(dir / "field.yaml");
  BOOST_REQUIRE(!other.ok());
  BOOST_TEST(other.status().message().find("does not hash to the sha1 digest") != std::string::npos,
             other.status().message());
  std::error_code ignored;
  fs::remove_all(dir, ignored);
}

BOOST_AUTO_TEST_CASE(an_event_missing_a_bank_is_named) {
  EventLog log = EventLog::CryptoAgile(kBanks);
  auto both = [](const std::string& text) {
    std::vector<std::pair<uint16_t, Bytes>> d;
    for (HashAlg b : kBanks) d.emplace_back(static_cast<uint16_t>(b), Require(Hash(b, AsBytes(text))));
    return d;
  };
  log.Append(0, ev::kSCrtmVersion, both("v1"), AsBytes("v1"));
  log.Append(0, ev::kEfiPlatformFirmwareBlob2, both("blob"), AsBytes("blob"));
  log.Append(4, ev::kEfiAction, {{static_cast<uint16_t>(HashAlg::kSha1), Require(Hash(HashAlg::kSha1, AsBytes("x")))}},
             AsBytes("x"));
  const fs::path dir = MakeTempDir("recorded");
  WriteFile(dir / "partial.bin", WriteEventLog(log));
  auto loaded = LoadFirmwareModel(dir / "partial.bin");
  BOOST_REQUIRE(!loaded.ok());
  const std::string message = loaded.status().message();
  BOOST_TEST(message.find("event 2 (PCR 4, EV_EFI_ACTION) carries no sha256 digest") != std::string::npos, message);
  BOOST_TEST(message.find("partial.bin") != std::string::npos, message);
  BOOST_TEST((loaded.status().kind() == ErrorKind::kBadInput));

  // A SHA-1-only log replays into a sha1 TPM, and names its first event for
  // a TPM that also has sha256.
  WriteFile(dir / "sha1.bin", WriteEventLog(MeasuredBootLog(Model("baseline"), {}, {HashAlg::kSha1})));
  const FirmwareModel sha1 = Require(LoadFirmwareModel(dir / "sha1.bin"));
  BOOST_TEST(*sha1.banks == std::vector<std::string>{"sha1"}, boost::test_tools::per_element());
  auto refused = RecordedBootLog(sha1, kBanks);
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.status().message().find("event 0 (PCR 0, EV_S_CRTM_VERSION) carries no sha256 digest") !=
                 std::string::npos,
             refused.status().message());
  std::error_code ignored;
  fs::remove_all(dir, ignored);
}

const fs::path kFixtures = test::FixturesDir() / "eventlogs";

BOOST_AUTO_TEST_CASE(fixture_logs_replay_on_swtpm_to_their_replayed_pcrs,
                     TPMLAB_NEEDS("fixtures", kFixtures / "expected.json")) {
  std::ifstream in(kFixtures / "expected.json");
  const nlohmann::json expected = nlohmann::json::parse(in);
  int booted = 0;
  for (const auto& [name, want] : expected.items()) {
    if (want.at("expect") != "replays") continue;
    BOOST_TEST_CONTEXT(name) {
      auto model = LoadFirmwareModel(kFixtures / name);
      if (!model.ok()) {
        // Only what an emulated platform cannot do: an H-CRTM's unrecorded
        // data, a dynamic launch, a locality other than 0 or 3.
        BOOST_TEST_MESSAGE(name << ": " << model.status().message());
        BOOST_TEST((model.status().kind() == ErrorKind::kBadInput));
        continue;
      }
      EmulatedDut dut(/*unix_sockets=*/false, *model->banks);
      const BootOptions boot = BootOf(*model);
      EmulatedFirmware firmware(*model, boot);
      REQUIRE_OK(dut.dut->Startup(boot));
      REQUIRE_OK(firmware.AfterStartup(dut.dut->tpm(), StartupType::kClear, BanksOf(*model)));
      const PcrValues pcrs = Require(dut.dut->tpm().ReadPcrs(BanksOf(*model)));
      const Replay replay = Require(ReplayEventLog(Require(ParseEventLog(ReadFile(kFixtures / name)))));
      BOOST_TEST(Differences(replay, pcrs) == "");
      // And the independent replay the fixtures come with.
      for (const auto& [bank, values] : want.at("pcrs").items()) {
        auto alg = HashAlgFromName(bank);
        if (!alg || !pcrs.count(*alg)) continue;
        for (const auto& [pcr, hex] : values.items()) {
          BOOST_TEST(ToHex(pcrs.at(*alg)[std::stoi(pcr)]) == hex.get<std::string>(), bank << ":" << pcr);
        }
      }
      ++booted;
    }
  }
  BOOST_TEST(booted >= 25);
}

}  // namespace
}  // namespace tpmlab::testing
