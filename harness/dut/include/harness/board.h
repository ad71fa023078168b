// Board: a whole platform around the TPM (a QEMU + OVMF virtual board, later a
// real machine). Its own firmware starts and measures the chip at every
// boot, and an agent on its OS carries the harness's TPM commands; tpmlab
// only powers, resets and suspends it, and reads what the firmware logged.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "drivers/bytes.h"
#include "drivers/status.h"
#include "harness/platform.h"

namespace tpmlab {

// One command that reached the chip from someone other than the harness (the
// firmware, the kernel), seen on the board's side of the TPM.
struct BusCommand {
  Bytes command;
  Bytes response;
  bool tpm_init = false;  // not a command: _TPM_Init, the chip's power-on or reset signal
};

// How long the last boot took, by stage (0 when a stage was not seen).
struct BootTimes {
  std::chrono::milliseconds firmware{0};  // power on to the kernel's first line
  std::chrono::milliseconds kernel{0};    // kernel to the agent's first line
  std::chrono::milliseconds agent{0};     // agent start to its hello
  std::chrono::milliseconds total{0};
  // When the chip's Startup was first seen on its bus (polled, so at most a
  // poll late): how long the chip has run is at least now minus this.
  std::chrono::steady_clock::time_point startup_seen{};
};

class Board {
 public:
  virtual ~Board() = default;

  /// A cold boot: powers the board on (off first when it runs) and waits
  /// until the agent on its OS says hello. The firmware sent Startup.
  virtual Status Boot() = 0;
  /// Brings the board down as `kind` says and up again, to the agent's hello.
  virtual Status PowerCycle(PowerCycleKind kind) = 0;
  /// Why the board cannot do `kind`, or "" when it can.
  virtual std::string Refuses(PowerCycleKind kind) const = 0;
  /// The firmware's event log as the board's OS exposes it now.
  virtual Result<Bytes> ReadEventLog() = 0;
  /// The platform firmware image named `name` from the next cold boot on.
  virtual Status SelectFirmware(const std::string& name) = 0;
  /// What the firmware, bootloader and OS sent the chip during the last boot
  /// or power cycle (taken: each command is handed over once).
  virtual std::vector<BusCommand> TakeBusCommands() = 0;
  virtual BootTimes last_boot() const = 0;
  /// For run.json: the machine, accelerator, images, kernel, agent hello.
  virtual nlohmann::json Describe() const = 0;
  /// Ok while the board runs; otherwise how it ended, with its output's tail.
  virtual Status Health() = 0;
  /// Powers the board off in order (the OS sends Shutdown) and stops it.
  virtual void Close() = 0;
};

}  // namespace tpmlab
