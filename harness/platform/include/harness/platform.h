// The platform's side of a TPM, as every layer speaks of it: the kinds of
// power cycle, how a boot brings the TPM up, and the bus the TPM sits on.
// Plain types with no driver in sight, so the analysis libraries (measure,
// verify, drift, store) can name them without linking swtpm, the TIS
// simulator or libusb; harness/dut does the things these words describe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "drivers/bytes.h"
#include "harness/tpm_types.h"

namespace tpmlab {

// The kinds of power cycle, which mean different things to a TPM.
enum class PowerCycleKind {
  kReset,      // Shutdown(CLEAR), _TPM_Init, Startup(CLEAR)
  kRestart,    // Shutdown(STATE), _TPM_Init, Startup(CLEAR)
  kResume,     // Shutdown(STATE), _TPM_Init, Startup(STATE)
  kPowerLoss,  // _TPM_Init with no Shutdown, Startup(CLEAR)
  kHardLoss,   // the emulator killed and relaunched on its NV state, Startup(CLEAR)
};
inline constexpr PowerCycleKind kAllPowerCycleKinds[] = {
    PowerCycleKind::kReset, PowerCycleKind::kRestart, PowerCycleKind::kResume,
    PowerCycleKind::kPowerLoss, PowerCycleKind::kHardLoss};
const char* PowerCycleKindName(PowerCycleKind kind);  // "power-loss"
std::optional<PowerCycleKind> PowerCycleKindFromName(std::string_view name);
bool IsOrderly(PowerCycleKind kind);
StartupType StartupAfter(PowerCycleKind kind);

// How the platform brings the TPM up at each boot.
struct BootOptions {
  uint8_t startup_locality = 0;      // 0, or 3 for a locality-3 Startup
  std::optional<Bytes> hcrtm_data;   // measured by an H-CRTM before Startup
};

// How the harness reaches the TPM. (Named when only emulators existed; a
// real chip's bus is kHardware, described in DutBusInfo::description.)
enum class EmulatedBus {
  kSocket,    // swtpm's command socket
  kTisSpi,    // TIS (PTP FIFO) over a simulated SPI TPM in front of swtpm
  kHardware,  // a real chip: /dev/tpmrm0, or TIS over a USB-SPI bridge
};
const char* EmulatedBusName(EmulatedBus bus);  // "socket", "tis-spi"
std::optional<EmulatedBus> EmulatedBusFromName(std::string_view name);

// The simulated SPI TPM's knobs (kTisSpi only).
struct EmulatedTisOptions {
  int wait_states = 0;      // wait states per frame: 0..wait_states, seeded
  uint16_t burst_count = 64;  // the largest burstCount the chip offers
  uint64_t seed = 1;
};

// What the bus reports of the chip (kTisSpi: read from DID_VID and RID).
struct DutBusInfo {
  EmulatedBus bus = EmulatedBus::kSocket;
  uint16_t vendor_id = 0;
  uint16_t device_id = 0;
  uint8_t revision = 0;
  std::string description;  // the transport's own
};

}  // namespace tpmlab
