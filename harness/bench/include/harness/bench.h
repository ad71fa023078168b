// A bench: the physical (or emulated) setup one TPM is tested on — which
// chip, how its bytes travel, what cuts its power, where its boot log comes
// from, and which destructive operations it may undergo. Loaded from a bench
// file (hw/README.md documents the schema; hw/benches/ has examples).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "drivers/status.h"
#include "drivers/usb_device.h"
#include "harness/bench_bmc.h"
#include "harness/bench_board.h"
#include "harness/bench_flash.h"
#include "harness/bench_machine.h"
#include "harness/yaml_reader.h"

namespace tpmlab {

enum class DutTransportKind { kEmulated, kDevice, kTisSpiSim, kTisSpiFtdi, kTisSpiTpm2go, kQemu, kMachine };
enum class PowerKind { kEmulated, kNone, kUsbRelay, kUsbHubPort, kCommand, kManual, kBoard, kIpmi, kRedfish };
enum class BootLogSource { kEmulatedFirmware, kSecurityfs, kFile, kAgent };

const char* DutTransportName(DutTransportKind kind);  // as in the file: "tis-spi-ftdi"
const char* PowerKindName(PowerKind kind);
const char* BootLogSourceName(BootLogSource source);

// Which USB device: vid and pid in hex ("0403"), serial optional (a
// substring of the serial number; for the TPM2Go a pattern, as tpm2-tss has it).
struct UsbSelector {
  uint16_t vid = 0;
  uint16_t pid = 0;
  std::string serial;
  bool serial_is_pattern = false;  // the TPM2Go's: an ECMAScript regex searched in the serial
  std::string ToString() const;  // "0403:6014 serial FT1234"
  /// Same vid:pid, and the serial contains `serial` (or, as a pattern,
  /// matches somewhere in it, so "^LTT2GO" anchors the start).
  bool Matches(const UsbDeviceInfo& device) const;
};

struct BenchDut {
  DutTransportKind transport = DutTransportKind::kEmulated;
  std::string path;              // device: /dev/tpmrm0 (default) or /dev/tpm0
  std::optional<UsbSelector> usb;   // tis-spi-ftdi / tis-spi-tpm2go (defaults: 0403:6014, 365d:1337)
  uint32_t spi_clock_hz = 0;     // 0: the bridge's default
  uint32_t wait_states = 0;      // tis-spi-sim
  uint32_t burst_count = 0;      // tis-spi-sim; 0: the simulator's default
  std::optional<uint8_t> cs_gpio;  // tis-spi-tpm2go: drive CS on this GPIO (wait states) [unverified]
  SourceLocation where;
};

struct BenchPower {
  PowerKind kind = PowerKind::kEmulated;
  std::optional<UsbSelector> usb;   // usb-relay: the relay board
  std::string relay_type;        // usb-relay: dcttech | lcus
  uint32_t channel = 0;          // usb-relay: relay number (1-based)
  std::string hub;               // usb-hub-port: hub location ("1-1.4", as uhubctl -l)
  uint32_t port = 0;             // usb-hub-port: port number on that hub
  std::string on_command, off_command;  // command: run by /bin/sh
  uint32_t off_ms = 0;           // how long the power stays off in a cycle
  BenchBmc bmc;                  // ipmi / redfish: the BMC (harness/bench_bmc.h)
  SourceLocation where;
};

// Where the boot's event log comes from: what tpmlab's own firmware model
// measured (any DUT tpmlab boots), the kernel's securityfs copy of this
// machine's log (a device DUT), or a file.
struct BenchBootLog {
  BootLogSource source = BootLogSource::kEmulatedFirmware;  // kAgent: a board's OS, through tpmlab-agent
  std::string path;  // securityfs: defaults to /sys/kernel/security/tpm0/binary_bios_measurements
};

// Operations that change a chip for good (or, on this machine's own TPM,
// until it reboots), each refused on a non-emulated DUT unless allowed.
enum class Operation {
  kClear, kChangeEps, kChangePps, kNvWrite, kAllocateBanks, kFirmwareInstall,
  kClockSet,   // TPM2_ClockSet: the clock never goes back
  kHierarchy,  // TPM2_HierarchyControl disabling a hierarchy
  kExtend,     // a PCR extend on a chip this machine's platform measured (device DUTs only)
  kFlash,      // platform firmware written with flashrom (bench flash:; a dummy chip is a file)
};
inline constexpr Operation kAllOperations[] = {
    Operation::kClear,          Operation::kChangeEps, Operation::kChangePps, Operation::kNvWrite,
    Operation::kAllocateBanks,  Operation::kFirmwareInstall, Operation::kClockSet, Operation::kHierarchy,
    Operation::kExtend, Operation::kFlash};
const char* OperationKey(Operation op);   // the key under `allow:` ("change_eps")
const char* OperationTitle(Operation op); // "TPM2_ChangeEPS (new endorsement seed)"

struct BenchAllow {
  bool clear = false, change_eps = false, change_pps = false, nv_write = false,
       allocate_banks = false, firmware_install = false, clock = false, hierarchy = false, extend = false,
       flash = false;
  bool Get(Operation op) const;
  bool& At(Operation op);
};

struct Bench {
  std::string file;  // the bench file, for messages
  std::string name;
  BenchDut dut;
  BenchPower power;
  std::optional<std::string> firmware_model;  // firmware_control.model, resolved against the file
  BenchBootLog boot_log;
  BenchAllow allow;
  std::optional<BenchBoard> board;  // dut transport qemu: the virtual board
  std::optional<BenchFlash> flash;  // the platform firmware chip, written with flashrom
  std::optional<BenchMachine> machine;  // dut transport machine: a whole machine (bench_machine.h)

  /// An emulated DUT (swtpm, also behind the simulated SPI TPM) may undergo anything.
  bool emulated() const {
    return dut.transport == DutTransportKind::kEmulated || dut.transport == DutTransportKind::kTisSpiSim;
  }
  /// Whether tpmlab plays the platform: it powers the chip, sends Startup and
  /// measures the scenario's firmware model. Not for a device DUT, which this
  /// machine's own firmware and kernel started and measured.
  bool harness_boots() const { return dut.transport != DutTransportKind::kDevice && !is_board() && !is_machine(); }
  /// A whole board (QEMU + OVMF): its firmware starts and measures the chip,
  /// tpmlab powers, resets and suspends the board.
  bool is_board() const { return dut.transport == DutTransportKind::kQemu; }
  /// A whole machine with its own firmware and TPM, reached through tpmlab-agent.
  bool is_machine() const { return dut.transport == DutTransportKind::kMachine; }
  /// Whether a part is a USB device (a bridge, a relay, a hub port), so that
  /// checking the bench means enumerating USB.
  bool uses_usb() const { return dut.usb.has_value() || power.usb.has_value() || power.kind == PowerKind::kUsbHubPort; }
};

/// Parses bench text; errors (Layer::kScenario) name file:line:column, and
/// unknown keys are rejected.
Result<Bench> ParseBench(const std::string& text, const std::string& file);
/// Reads and parses a bench file.
Result<Bench> LoadBench(const std::filesystem::path& file);

/// Safety: refuses `op` on a non-emulated DUT unless the bench allows it.
/// @returns Ok, or a kScenario error naming the bench file and the key to set.
Status CheckAllowed(const Bench& bench, Operation op);

// One part of a bench as found (or not) on this machine.
enum class ProbeState { kPresent, kMissing, kUnknown };
struct ProbeItem {
  std::string part;    // "dut", "power", "boot_log", "firmware_control"
  ProbeState state = ProbeState::kPresent;
  std::string detail;  // what was found, or exactly what is missing
};

/// Looks for every part of the bench on this machine, without sending a TPM
/// command or switching anything. USB parts are looked for in `usb`: bridges
/// and relays are only enumerated, never opened, so nothing reaches the DUT;
/// a hub is opened to read its hub descriptor (port count, power switching).
/// @param usb null when USB cannot be enumerated on this machine; every USB
///            part is then missing, and `usb_unavailable` says why.
std::vector<ProbeItem> ProbeBench(const Bench& bench, UsbContext* usb, const std::string& usb_unavailable);
/// ProbeBench with this machine's USB (libusb), opened only when the bench has USB parts.
std::vector<ProbeItem> ProbeBenchHere(const Bench& bench);

/// What a bench file says, as JSON (name, file, dut, power, boot_log, allow,
/// emulated), for results and for Python.
std::string BenchSummaryJson(const Bench& bench);

}  // namespace tpmlab
