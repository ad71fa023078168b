// Where a DUT's event log comes from. An emulated platform's firmware is
// tpmlab itself: after each Startup it measures the firmware model into the
// TPM and writes the log. A real platform's firmware already did both, and
// the harness only reads the log its OS exposes.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "harness/dut.h"
#include "harness/eventlog.h"
#include "harness/firmware_model.h"

namespace tpmlab {

class BootSource {
 public:
  virtual ~BootSource() = default;

  /// Called right after every Startup of the DUT.
  virtual Status AfterStartup(Tpm& tpm, StartupType type, const std::vector<HashAlg>& banks) = 0;
  /// The log as the OS would read it now (binary_bios_measurements).
  virtual Result<Bytes> ReadLog() = 0;
};

// tpmlab acting as the platform firmware of an emulated DUT.
class EmulatedFirmware final : public BootSource {
 public:
  EmulatedFirmware(FirmwareModel model, BootOptions boot)
      : model_(std::move(model)), boot_(std::move(boot)) {}

  /// Startup(CLEAR) starts a new log and measures the whole boot; a resume
  /// (Startup(STATE)) measures nothing and keeps the log of the last boot.
  Status AfterStartup(Tpm& tpm, StartupType type, const std::vector<HashAlg>& banks) override;
  Result<Bytes> ReadLog() override { return WriteEventLog(log_); }

  const EventLog& log() const { return log_; }
  const FirmwareModel& model() const { return model_; }
  /// Switches the model for the next cold boot (a firmware update).
  void set_model(FirmwareModel model) { model_ = std::move(model); }
  /// A measurement after boot: extends H(data) into `pcr` of every bank and,
  /// when `logged`, appends the event; unlogged models a firmware bug.
  Status Measure(Tpm& tpm, const std::vector<HashAlg>& banks, int pcr, uint32_t type,
                 const std::string& data, bool logged);

 private:
  FirmwareModel model_;
  BootOptions boot_;
  EventLog log_;
};

// The events a model produces at a cold boot, in PC Client order, with their
// digests for `banks`; Boot() extends them. Not for a recorded model
// (RecordedBootLog). Exposed for tests and tools.
EventLog MeasuredBootLog(const FirmwareModel& model, const BootOptions& boot,
                         const std::vector<HashAlg>& banks);

// A recorded model's boot: its log's events in order, with their recorded
// digests for `banks` (EV_NO_ACTION with zeros). An event that carries no
// digest for one of `banks` is an error naming it (index, PCR, type, bank).
Result<EventLog> RecordedBootLog(const FirmwareModel& model, const std::vector<HashAlg>& banks);

// A real platform: the log its firmware wrote, read from a file.
class PlatformLog final : public BootSource {
 public:
  static constexpr const char* kSecurityFs = "/sys/kernel/security/tpm0/binary_bios_measurements";
  explicit PlatformLog(std::filesystem::path file = kSecurityFs) : file_(std::move(file)) {}

  Status AfterStartup(Tpm&, StartupType, const std::vector<HashAlg>&) override { return Status::Ok(); }
  Result<Bytes> ReadLog() override;

 private:
  std::filesystem::path file_;
};

}  // namespace tpmlab
