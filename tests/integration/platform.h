// Test support: an emulated platform — a swtpm DUT and a firmware model that
// measures and logs at every cold boot — and the shipped models.
#pragma once

#include <string>
#include <vector>

#include "emulated.h"
#include "harness/boot_source.h"
#include "harness/snapshot.h"

namespace tpmlab::testing {

inline const fs::path kModels = fs::path(TPMLAB_SOURCE_DIR) / "scenarios" / "firmware";
inline const std::vector<HashAlg> kBanks = {HashAlg::kSha1, HashAlg::kSha256};

inline FirmwareModel Model(const std::string& name) {
  return Require(LoadFirmwareModel(kModels / (name + ".yaml")));
}

struct EmulatedPlatform {
  explicit EmulatedPlatform(const std::string& model = "baseline", const BootOptions& options = {})
      : boot(options), firmware(Model(model), options) {
    REQUIRE_OK(dut->Startup(boot));
    REQUIRE_OK(firmware.AfterStartup(dut.tpm(), StartupType::kClear, kBanks));
  }

  // Brings the TPM down as `kind` says and boots `model` with the same
  // platform options.
  void Reboot(const std::string& model, PowerCycleKind kind = PowerCycleKind::kReset) {
    firmware.set_model(Model(model));
    REQUIRE_OK(dut->PowerCycle(kind, boot));
    REQUIRE_OK(firmware.AfterStartup(dut.tpm(), StartupAfter(kind), kBanks));
  }

  // A cold boot with other platform options (locality, H-CRTM).
  void RebootWith(const BootOptions& options) {
    boot = options;
    firmware = EmulatedFirmware(firmware.model(), options);
    REQUIRE_OK(dut->PowerCycle(PowerCycleKind::kReset, boot));
    REQUIRE_OK(firmware.AfterStartup(dut.tpm(), StartupType::kClear, kBanks));
  }

  // A snapshot with the log the OS would read now.
  Snapshot Snap(const SnapshotOptions& options = {}) {
    Snapshot s = Require(TakeSnapshot(dut.tpm(), options));
    BOOST_TEST(s.quote_check.verified(), s.quote_check.failure);
    s.eventlog = WriteEventLog(firmware.log());
    return s;
  }

  EmulatedDut dut;
  BootOptions boot;
  EmulatedFirmware firmware;
};

}  // namespace tpmlab::testing
