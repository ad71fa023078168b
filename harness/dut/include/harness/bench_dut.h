// A DUT from a bench file's real parts: /dev/tpmrm0, or a TPM on a USB-SPI
// bridge (FTDI MPSSE, TPM2Go) reached with TIS, behind a relay, a hub port,
// a command or the operator. Emulated benches (emulated, tis-spi-sim) are
// launched with Dut::LaunchEmulated instead; OpenDut (open_dut.h) opens either kind.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "drivers/spi_bus.h"
#include "drivers/transport.h"
#include "drivers/usb_device.h"
#include "harness/bench.h"
#include "harness/dut.h"
#include "harness/qemu_board.h"

namespace tpmlab {

// This machine's parts, as a seam: tests hand in a fake USB context (with
// simulated bridges, relays and hubs) and a fake TPM character device.
struct BenchHardware {
  UsbContext* usb = nullptr;  // null: libusb, opened when the bench needs USB
  // Opens a TPM character device; null: DeviceTransport::Open.
  std::function<Result<std::unique_ptr<Transport>>(const std::string& path)> open_device;
  Clock* clock = nullptr;  // DefaultClock() when null
  // How long a bridge may take to come back after its power returned.
  std::chrono::milliseconds reenumerate_timeout{10000};
  // Where hub ports' `disable` files and USB ttys are found; "" skips sysfs
  // (tests: only the fake USB context is touched).
  std::filesystem::path sysfs_usb_devices = "/sys/bus/usb/devices";
};

struct BenchDutOptions {
  std::string name = "dut0";
  std::chrono::milliseconds command_timeout{30000};
  std::map<uint32_t, std::chrono::milliseconds> command_timeouts;
  uint64_t fault_seed = 1;
  QemuBoardOptions board;  // a qemu bench: where the board works, its chip's banks, its first image
};

/// Opens the bench's chip and power switch. A chip with a switch is powered
/// on first; the TPM is not started (the runner's boot does that, or, on a
/// device DUT, this machine's platform did).
/// @returns kScenario for a bench this cannot build (an emulated one), the
///          transport's or the switch's error naming the part otherwise.
Result<std::unique_ptr<Dut>> OpenBenchDut(const Bench& bench, const BenchDutOptions& options,
                                          BenchHardware hardware = {});

/// An emulated bench's shape on an emulated DUT's config: the simulated SPI
/// TPM's bus, wait states and burstCount (nothing for `emulated`).
void ApplyEmulatedBench(const Bench& bench, EmulatedDutConfig& config);

/// The drivers' match for a bench's USB selector: the same devices
/// UsbSelector::Matches accepts (serial a substring, or a TPM2Go's regex).
UsbMatch UsbMatchFor(const UsbSelector& selector);

}  // namespace tpmlab
