// Measured boot on a real swtpm: for every shipped firmware model, after a
// cold boot and after every kind of power cycle, the log the emulated
// firmware wrote replays to the PCRs the TPM reports, in every bank. And each
// variant model moves exactly the PCRs its one change should move.
#define BOOST_TEST_MODULE measured_boot
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <set>

#include "harness/replay.h"
#include "platform.h"

namespace tpmlab::testing {
namespace {

std::vector<std::string> ModelNames() {
  std::vector<std::string> names;
  for (const auto& f : fs::directory_iterator(kModels)) {
    if (f.path().extension() == ".yaml") names.push_back(f.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The replay of the firmware's log against the TPM's PCRs: "" when equal.
std::string Mismatch(EmulatedDut& dut, const EmulatedFirmware& firmware) {
  const Replay replay = Require(ReplayEventLog(firmware.log()));
  const PcrValues pcrs = Require(dut.tpm().ReadPcrs(kBanks));
  std::string out;
  for (const auto& [bank, differ] : CompareReplay(replay, pcrs)) {
    for (int pcr : differ) out += std::string(HashAlgName(bank)) + ":" + std::to_string(pcr) + " ";
  }
  return out;
}

BOOST_AUTO_TEST_CASE(every_model_replays_after_every_power_cycle_kind) {
  const auto names = ModelNames();
  BOOST_REQUIRE(names.size() >= 7u);
  for (const auto& name : names) {
    EmulatedDut dut;
    EmulatedFirmware firmware(Model(name), BootOptions{});
    REQUIRE_OK(dut->Startup({}));
    REQUIRE_OK(firmware.AfterStartup(dut.tpm(), StartupType::kClear, kBanks));
    BOOST_TEST(firmware.log().size() > 30u, name);
    BOOST_TEST(Mismatch(dut, firmware) == "", name << " after the first boot");
    for (PowerCycleKind kind : kAllPowerCycleKinds) {
      REQUIRE_OK(dut->PowerCycle(kind, {}));
      REQUIRE_OK(firmware.AfterStartup(dut.tpm(), StartupAfter(kind), kBanks));
      BOOST_TEST(Mismatch(dut, firmware) == "", name << " after " << PowerCycleKindName(kind));
    }
  }
}

BOOST_AUTO_TEST_CASE(locality_3_and_hcrtm_boots_replay) {
  BootOptions boot;
  boot.startup_locality = 3;
  for (bool hcrtm : {false, true}) {
    if (hcrtm) boot.hcrtm_data = Bytes{'h', 'c', 'r', 't', 'm'};
    EmulatedDut dut;
    EmulatedFirmware firmware(Model("baseline"), boot);
    REQUIRE_OK(dut->Startup(boot));
    REQUIRE_OK(firmware.AfterStartup(dut.tpm(), StartupType::kClear, kBanks));
    BOOST_TEST(Mismatch(dut, firmware) == "");
    const Replay replay = Require(ReplayEventLog(firmware.log()));
    BOOST_TEST(replay.startup_locality == 3);
    BOOST_TEST(replay.hcrtm == hcrtm);
    for (PowerCycleKind kind : {PowerCycleKind::kResume, PowerCycleKind::kHardLoss}) {
      REQUIRE_OK(dut->PowerCycle(kind, boot));
      REQUIRE_OK(firmware.AfterStartup(dut.tpm(), StartupAfter(kind), kBanks));
      BOOST_TEST(Mismatch(dut, firmware) == "", PowerCycleKindName(kind));
    }
  }
}

// PCRs whose replayed value differs between two models.
std::set<int> MovedPcrs(const std::string& a, const std::string& b) {
  const Replay ra = Require(ReplayEventLog(MeasuredBootLog(Model(a), {}, kBanks)));
  const Replay rb = Require(ReplayEventLog(MeasuredBootLog(Model(b), {}, kBanks)));
  std::set<int> moved;
  for (HashAlg bank : kBanks) {
    for (int i = 0; i < kPcrCount; ++i) {
      if (ra.pcrs.at(bank)[i] != rb.pcrs.at(bank)[i]) moved.insert(i);
    }
  }
  return moved;
}

BOOST_AUTO_TEST_CASE(each_variant_moves_only_its_pcrs) {
  BOOST_TEST((MovedPcrs("baseline", "firmware-blob") == std::set<int>{0}));
  BOOST_TEST((MovedPcrs("baseline", "option-rom") == std::set<int>{2}));
  BOOST_TEST((MovedPcrs("baseline", "secure-boot-off") == std::set<int>{7}));
  BOOST_TEST((MovedPcrs("baseline", "dbx-update") == std::set<int>{7}));
  BOOST_TEST((MovedPcrs("baseline", "boot-order") == std::set<int>{1}));
  BOOST_TEST((MovedPcrs("baseline", "kernel-cmdline") == std::set<int>{8}));
  // Another boot loader chain: other images (4), one Secure Boot authority
  // instead of two (7), no GRUB commands (8), the command line on 12.
  BOOST_TEST((MovedPcrs("baseline", "systemd-boot") == std::set<int>{4, 7, 8, 9, 12}));
  BOOST_TEST(MovedPcrs("baseline", "baseline").empty());
}

BOOST_AUTO_TEST_CASE(generated_logs_round_trip_through_the_writer) {
  for (const auto& name : ModelNames()) {
    const EventLog log = MeasuredBootLog(Model(name), {}, kBanks);
    const Bytes bytes = WriteEventLog(log);
    const EventLog parsed = Require(ParseEventLog(bytes));
    BOOST_TEST((parsed == log), name);
    BOOST_TEST((WriteEventLog(parsed) == bytes), name);
  }
}

BOOST_AUTO_TEST_CASE(a_real_platform_log_is_read_from_its_file) {
  const fs::path dir = MakeTempDir("platformlog");
  const Bytes bytes = WriteEventLog(MeasuredBootLog(Model("baseline"), {}, kBanks));
  {
    std::ofstream out(dir / "binary_bios_measurements", std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  PlatformLog platform(dir / "binary_bios_measurements");
  BOOST_TEST((Require(platform.ReadLog()) == bytes));

  PlatformLog missing(dir / "nope");
  auto none = missing.ReadLog();
  BOOST_REQUIRE(!none.ok());
  BOOST_TEST((none.status().layer() == Layer::kEnvironment));
  BOOST_TEST(none.status().message().find("nope") != std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tpmlab::testing
