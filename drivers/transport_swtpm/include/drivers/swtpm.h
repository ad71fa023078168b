// The swtpm DUT backend: a supervised swtpm process, its data-channel
// Transport, its control-channel PowerControl, and first-time provisioning.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "drivers/power.h"
#include "drivers/process.h"
#include "drivers/socket.h"
#include "drivers/swtpm_control.h"
#include "drivers/transport.h"

namespace tpmlab {

struct SwtpmConfig {
  std::filesystem::path state_dir;        // one per DUT; created if missing
  std::string binary = "swtpm";           // the "TPM firmware image" of an emulated DUT:
  std::string library_dir;                // with the libtpms found here first, when set
  bool unix_sockets = false;              // TCP on loopback otherwise
  uint16_t port = 0;                      // preferred data port (ctrl = port+1); another
                                          // free pair is used when it is taken; 0 = any
  std::chrono::milliseconds start_timeout{10000};
  int log_level = 1;
  // QEMU mode: when set, swtpm serves only this control socket (absolute;
  // QEMU's `-tpmdev emulator` chardev) and gets its data channel from QEMU
  // (CMD_SET_DATAFD); no TCP ports, no --server. QEMU sends CMD_INIT at
  // start, reset and wake, and CMD_SHUTDOWN on quit, after which swtpm exits.
  // The process dies with the harness (PR_SET_PDEATHSIG). SwtpmTransport
  // cannot be used in this mode.
  std::filesystem::path qemu_ctrl_socket;
};

// What `swtpm socket --print-capabilities` says this binary can do.
struct SwtpmCapabilities {
  std::string version;
  bool disable_auto_shutdown = false;  // flags-opt-disable-auto-shutdown (>= 0.8)
  std::string raw_json;
};

Result<SwtpmCapabilities> ProbeSwtpm(const std::string& binary);

// A swtpm process this object launched, watches and stops.
class SwtpmProcess final {
 public:
  static Result<std::unique_ptr<SwtpmProcess>> Launch(SwtpmConfig config);
  ~SwtpmProcess();
  SwtpmProcess(const SwtpmProcess&) = delete;
  SwtpmProcess& operator=(const SwtpmProcess&) = delete;

  /// Starts swtpm again on the same state (after Kill or a crash). Keeps the
  /// ports when they are still free; otherwise finds new ones.
  Status Relaunch();
  /// Kills the process with `signal` and reaps it (SIGKILL: a hard power loss).
  void Kill(int signal);
  /// Freezes or thaws the process (SIGSTOP/SIGCONT): a TPM that stops answering.
  void Freeze(bool frozen);
  /// Stops swtpm cleanly: CMD_SHUTDOWN, then signals if it does not exit.
  void Stop();
  /// Another TPM firmware image for the next (re)launch: a swtpm executable
  /// and the folder its libtpms is loaded from (empty: the system's).
  Status SetImage(const std::string& binary, const std::string& library_dir);

  bool alive();
  bool qemu_mode() const { return !config_.qemu_ctrl_socket.empty(); }
  /// True when the process has ended or ends within `grace` (a connection
  /// reset often arrives a moment before the kernel reports the exit).
  bool EndedWithin(std::chrono::milliseconds grace) { return child_.Wait(grace); }
  /// Ok while alive; otherwise says how it ended, with the tail of its log.
  Status CheckAlive();
  std::string LogTail(size_t lines = 15) const;

  SwtpmControl control() const { return SwtpmControl(ctrl_); }
  const Endpoint& data_endpoint() const { return data_; }
  const Endpoint& ctrl_endpoint() const { return ctrl_; }
  const SwtpmConfig& config() const { return config_; }
  const SwtpmCapabilities& capabilities() const { return caps_; }
  std::filesystem::path log_file() const { return config_.state_dir / "swtpm.log"; }
  pid_t pid() const { return child_.pid(); }
  // Increases with every launch, so connections know they are stale.
  uint64_t generation() const { return generation_; }

 private:
  explicit SwtpmProcess(SwtpmConfig config) : config_(std::move(config)) {}
  Status Start(bool keep_ports);
  Status StartOnce();
  std::vector<std::string> CommandLine() const;

  SwtpmConfig config_;
  SwtpmCapabilities caps_;
  ChildProcess child_;
  Endpoint data_, ctrl_;
  uint64_t generation_ = 0;
};

// The data channel: raw TPM commands over one kept connection.
class SwtpmTransport final : public Transport {
 public:
  explicit SwtpmTransport(SwtpmProcess& process) : process_(process) {}

 private:
  Status DoTransmit(ByteView command) override;
  Result<Bytes> DoReceive(Duration timeout) override;
  // A short control timeout: the TPM that needs cancelling may be hung.
  Status DoCancel() override {
    return SwtpmControl(process_.ctrl_endpoint(), std::chrono::milliseconds(1000)).CancelTpmCommand();
  }
  Status DoSetLocality(uint8_t locality) override {
    return process_.control().SetLocality(locality);
  }
  Info DoInfo() const override {
    return {"swtpm", process_.data_endpoint().ToString()};
  }
  // Adds how the process ended, when it did, to an I/O error.
  Status Explain(Status error);

  SwtpmProcess& process_;
  Socket socket_;
  uint64_t connected_generation_ = 0;
};

// Power through the control channel; a hard cut kills the process.
class SwtpmPower final : public PowerControl {
 public:
  explicit SwtpmPower(SwtpmProcess& process) : process_(process) {}

 private:
  Status DoOff(PowerCut cut) override;
  Status DoOn() override;
  // A soft cycle is one CMD_INIT: swtpm terminates and re-inits the TPM.
  Status DoCycle(PowerCut cut) override;

  SwtpmProcess& process_;
};

// Manufactures a new emulated chip the way swtpm_setup does for a vTPM: EK
// (RSA 2048 at 0x81010001, ECC at 0x81010016) with certificates in NV
// (0x1c00002, 0x1c00016), a platform certificate, and the chosen PCR banks.
struct ProvisionOptions {
  std::vector<std::string> banks = {"sha1", "sha256"};
  bool ek_certificates = true;
  std::string swtpm_binary = "swtpm";
  std::chrono::milliseconds timeout{120000};
};
Status ProvisionSwtpmState(const std::filesystem::path& state_dir,
                           const ProvisionOptions& options);
// True when the folder already holds a manufactured chip.
bool SwtpmStateExists(const std::filesystem::path& state_dir);

// Copies the chip's NV state files (tpm2-*) from one folder to another,
// replacing what `to` held: a vTPM snapshot, or its revert.
Status CopySwtpmState(const std::filesystem::path& from, const std::filesystem::path& to);

// Builds a TPM firmware image for tests: a copy of the installed libtpms in
// `out_dir` whose firmware version constant (TPM_PT_FIRMWARE_VERSION_1/_2)
// reads `firmware_version` — two builds of one source, as a vendor's update
// would be. Returns the folder to load it from.
// `current_version` is what the installed build reports.
// (libtpms records the version in the chip's persistent data when it is
// manufactured and reports that one; a vendor's field upgrade rewrites it,
// which WriteSwtpmFirmwareVersion does for a stopped emulator's state.)
Result<std::filesystem::path> DeriveLibtpmsImage(const std::filesystem::path& out_dir,
                                                 uint64_t current_version, uint64_t firmware_version);
Status WriteSwtpmFirmwareVersion(const std::filesystem::path& state_dir, uint64_t current_version,
                                 uint64_t firmware_version);

}  // namespace tpmlab
