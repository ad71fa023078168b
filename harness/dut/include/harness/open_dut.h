// One way to get the DUT a bench describes: the embedded default (no bench)
// and an emulated bench launch swtpm (behind the simulated SPI TPM for
// tis-spi-sim); a real chip's bench opens it (/dev/tpmrm0, a USB-SPI bridge).
// The scenario Session and `tpmlab doctor` both open their DUT here; a new
// kind of DUT is one more case in OpenDut.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "harness/bench.h"
#include "harness/bench_dut.h"
#include "harness/dut.h"

namespace tpmlab {

struct DutRequest {
  std::string name = "dut0";
  std::chrono::milliseconds command_timeout{30000};
  std::map<uint32_t, std::chrono::milliseconds> command_timeouts;  // by command code
  // Seeds the fault injector's draws and the simulated SPI TPM's wait states.
  uint64_t fault_seed = 1;
  // An emulated DUT's state folder, banks, bus and starting state; its name,
  // timeouts and seeds are the ones above, and an emulated bench's shape
  // (the simulated SPI TPM) is applied on top.
  EmulatedDutConfig emulated;
  // An emulated DUT: remove what emulator state its folder holds first, so
  // the chip is newly manufactured.
  bool manufacture_new = false;
  // A real chip: this machine's parts (a seam for tests).
  BenchHardware hardware;
  // A board bench (qemu): its work folder, its chip's banks, its first image.
  QemuBoardOptions board;
};

/// Launches the emulated DUT (no bench, or an emulated one) or opens the
/// bench's chip, with its power on but the TPM not started. A real chip
/// persists tpmlab's keys (and evicts others at their handles) only when the
/// bench allows NV writes.
/// @returns kEmulator when old emulator state cannot be removed (naming the
///          folder), or the launch's or the bench part's error.
Result<std::unique_ptr<Dut>> OpenDut(const std::optional<Bench>& bench, const DutRequest& request);

/// The configuration OpenDut launches an emulated DUT with: `request.emulated`
/// with the request's name, timeouts and seeds, and the bench's shape.
EmulatedDutConfig EmulatedConfigOf(const std::optional<Bench>& bench, const DutRequest& request);

}  // namespace tpmlab
