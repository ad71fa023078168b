// Dut: one TPM under test — its transport (with a command trace), its power
// switch, and the TPM session on top — and what a power cycle means to it.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "drivers/fault_transport.h"
#include "drivers/power.h"
#include "drivers/swtpm.h"
#include "drivers/tis_simulator.h"
#include "drivers/tis_spi.h"
#include "drivers/trace.h"
#include "harness/board.h"
#include "harness/platform.h"
#include "harness/tpm.h"

namespace tpmlab {

struct EmulatedDutConfig {
  std::string name = "dut0";
  std::filesystem::path state_dir;   // swtpm state and log; provisioned if empty
  std::vector<std::string> banks = {"sha1", "sha256"};
  bool unix_sockets = false;
  std::string swtpm_binary = "swtpm";
  std::string library_dir;           // libtpms loaded from here first (a firmware image)
  std::filesystem::path initial_state;  // start from a copy of this state (a bundle's)
  std::chrono::milliseconds command_timeout{30000};
  std::map<uint32_t, std::chrono::milliseconds> command_timeouts;  // by command code
  bool trace_bytes = true;           // keep command/response bytes in the trace
  uint64_t fault_seed = 1;           // seeds the fault injector's probability draws
  EmulatedBus bus = EmulatedBus::kSocket;
  EmulatedTisOptions tis;
};

// A chip tpmlab does not emulate (a TPM on a USB-SPI bridge, this machine's
// /dev/tpmrm0): its transport, its power switch, and what must happen after
// the power returns before the chip can be talked to again.
struct HardwareDutConfig {
  std::string name = "dut0";
  std::string kind;                         // as a bench file names it: "tis-spi-ftdi", "device"
  std::unique_ptr<Transport> transport;     // to the chip
  std::unique_ptr<PowerControl> power;      // null: the power cannot be switched
  std::string no_power_reason;              // why, for the error a power cycle gets
  // After each power-on: find the bridge again (it may re-enumerate) and
  // reset the host's TIS engine. The chip is powered when it runs.
  std::function<Status()> after_power_on;
  // This machine's firmware and kernel started and measured the chip (a
  // device DUT): tpmlab never sends Startup, it attests what it finds.
  bool platform_started = false;
  std::chrono::milliseconds command_timeout{30000};
  std::map<uint32_t, std::chrono::milliseconds> command_timeouts;
  bool trace_bytes = true;
  uint64_t fault_seed = 1;
  // What the chip said it is when it was opened (TIS DID_VID, RID).
  std::optional<DutBusInfo> bus_info;
  std::vector<std::string> warnings;  // a ganged hub, CS not held, ...
  // What the transport and the switch use and must outlive them (the USB context).
  std::shared_ptr<void> keep_alive;
  // A whole board around the chip (QEMU + OVMF): it boots, cycles and logs;
  // its firmware sends Startup (set platform_started too).
  std::unique_ptr<Board> board;
};

class Dut {
 public:
  /// Provisions the state folder when it is new, launches swtpm and opens
  /// ESAPI on it. The TPM is powered but not started: call Boot().
  static Result<std::unique_ptr<Dut>> LaunchEmulated(const EmulatedDutConfig& config);
  /// Opens ESAPI on a real chip. Its power is left as it is: Boot() decides.
  static Result<std::unique_ptr<Dut>> OpenHardware(HardwareDutConfig config);
  ~Dut();

  /// Delivers _TPM_Init (power on): relaunches a dead emulator first; a
  /// real chip's power is cycled (off, wait, on), since it may still be on;
  /// one without a switch is taken as powered.
  Status PowerOn();
  /// Power-on sequence after _TPM_Init: locality, H-CRTM, then Startup.
  Status Startup(const BootOptions& boot, StartupType type = StartupType::kClear);
  /// Brings the TPM down as `kind` says and up again (ending with Startup).
  Status PowerCycle(PowerCycleKind kind, const BootOptions& boot);
  /// Orderly end: Shutdown(CLEAR) if the TPM answers, then stop the emulator.
  void Close();

  /// Whether the power can be switched (a power cycle is possible).
  bool can_switch_power() const { return power_ != nullptr || board_ != nullptr; }
  /// The board around the chip, when the DUT is a whole platform; null otherwise.
  Board* board() { return board_.get(); }
  /// Why not, when it cannot: "bench 'host' has power: none".
  const std::string& no_power_reason() const { return no_power_reason_; }
  /// This machine's platform started and measured the chip (a device DUT).
  bool platform_started() const { return platform_started_; }
  /// "swtpm" for an emulated DUT, the bench's transport kind otherwise.
  const std::string& kind() const { return kind_; }
  bool emulated() const { return swtpm_ != nullptr; }
  /// What the bench's parts warned about when opened.
  const std::vector<std::string>& warnings() const { return warnings_; }

  const std::string& name() const { return name_; }
  Tpm& tpm() { return *tpm_; }
  TraceTransport& trace() { return *trace_; }
  // Faults injected between the TPM and the trace (none until a rule is added),
  // so the trace records what the harness saw.
  FaultTransport& faults() { return *faults_; }
  SwtpmProcess* emulator() { return swtpm_.get(); }
  DutBusInfo bus_info() const;
  /// The simulated SPI TPM (kTisSpi), for its counters and violations; null otherwise.
  const TisSimulator* tis_simulator() const { return tis_sim_.get(); }

  // Emulated DUTs only: what a bench cannot do to a real chip on demand.
  /// Freezes (SIGSTOP) or thaws the emulator: a TPM that stops answering.
  Status Hang(bool hung);
  /// Cuts the power (kills the emulator) while a command runs: the command
  /// that `match` selects reaches the TPM, then the power goes. `match`'s
  /// kind and action are set here.
  Status CutPowerDuring(FaultRule match);
  /// A TPM firmware update: orderly shutdown, stop, switch to the image,
  /// record its version in the chip's persistent data (as the update would),
  /// relaunch on the same state and deliver _TPM_Init. Startup is the caller's.
  Status SwapImage(const std::string& binary, const std::string& library_dir, uint64_t from_version,
                   uint64_t to_version);
  /// Saves the NV state (a vTPM snapshot) / reverts to one: the power is cut,
  /// the state replaced and the power restored (_TPM_Init; Startup is the caller's).
  Status SaveState(const std::filesystem::path& to);
  Status RestoreState(const std::filesystem::path& from);
  /// Ok while the DUT's emulator runs; otherwise how it ended, with its log.
  Status Health();

 private:
  Dut() = default;

  Status NoPower(const std::string& what) const;

  std::shared_ptr<void> keep_alive_;  // destroyed last
  std::unique_ptr<Board> board_;      // outlives the transport to its agent
  std::string name_;
  std::string kind_ = "swtpm";
  std::vector<std::string> warnings_;
  std::string no_power_reason_;
  bool platform_started_ = false;
  std::optional<DutBusInfo> hardware_bus_;
  std::unique_ptr<SwtpmProcess> swtpm_;
  EmulatedBus bus_ = EmulatedBus::kSocket;
  std::unique_ptr<Transport> transport_;     // to the emulator (the socket)
  std::unique_ptr<TisSimulator> tis_sim_;    // kTisSpi: the chip's SPI side...
  std::unique_ptr<TisSpiTransport> tis_;     // ...and the host's TIS engine on it
  std::unique_ptr<FaultTransport> faults_;
  std::unique_ptr<TraceTransport> trace_;
  std::unique_ptr<PowerControl> power_;
  std::unique_ptr<Tpm> tpm_;
  bool closed_ = false;
};

}  // namespace tpmlab
