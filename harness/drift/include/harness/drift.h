// Drift: what changed between two snapshots of one DUT, and why. PCR values
// are compared per bank; the two event logs are aligned event by event, per
// PCR; every PCR that moved is tied to the logged events that moved it, and
// each change is given a cause. A PCR that moved with no logged event to
// account for it is UNEXPLAINED_PCR_CHANGE (a firmware that extends without
// logging). The TPM's own state gives the causes no log shows: an ownership
// clear, a new EK, another chip, a TPM firmware update, a power loss, a bank
// allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "harness/eventlog.h"
#include "harness/snapshot.h"

namespace tpmlab {

// Cause codes (stable; reports and scripts match on them).
namespace drift {
// From the event log.
inline constexpr char kFirmwareBlob[] = "FIRMWARE_BLOB";        // platform firmware code on PCR0 (blobs, POST code, S-CRTM contents, embedded drivers)
inline constexpr char kSCrtmVersion[] = "S_CRTM_VERSION";       // EV_S_CRTM_VERSION
inline constexpr char kOptionRom[] = "OPTION_ROM";              // drivers and firmware of add-in devices (PCR2)
inline constexpr char kPlatformConfig[] = "PLATFORM_CONFIG";    // config flags, SMBIOS/handoff tables, microcode, setup variables
inline constexpr char kSecureBootVariable[] = "SECURE_BOOT_VARIABLE";  // detail: the variable (SecureBoot, PK, KEK, db, dbx, ...) or "authority"
inline constexpr char kBootOrder[] = "BOOT_ORDER";              // detail: the variable (BootOrder, Boot0001, ...)
inline constexpr char kBootLoader[] = "BOOT_LOADER";            // boot loader images, GRUB commands and files
inline constexpr char kKernel[] = "KERNEL";                     // kernel and initrd images
inline constexpr char kKernelCmdline[] = "KERNEL_CMDLINE";      // the kernel command line (PCR8 "kernel_cmdline:", PCR12)
inline constexpr char kOsBootModule[] = "OS_BOOT_MODULE";       // what the OS measures of itself (EV_EVENT_TAG; EV_IPL on 10, 11, 13)
inline constexpr char kStartupLocality[] = "STARTUP_LOCALITY";  // the StartupLocality record (PCR0's initial value)
inline constexpr char kHcrtm[] = "HCRTM";                       // the H-CRTM event
inline constexpr char kEventChange[] = "EVENT_CHANGE";          // an event of no class above (GPT, separator, other actions, ...)
// From the TPM.
inline constexpr char kBankAllocation[] = "BANK_ALLOCATION";    // a PCR bank allocated in one snapshot only
inline constexpr char kOwnershipClear[] = "OWNERSHIP_CLEAR";    // TPM2_Clear: counters back to 0, new SRK
inline constexpr char kEkChange[] = "EK_CHANGE";                // another EK name, same SRK and maker (TPM2_ChangeEPS)
// Another chip: a new EK with another manufacturer, vendor string or EK
// certificate, or with a new SRK too. It replaces the TPM causes below, which
// compare one chip's history (a new chip's low counters are not a clear).
inline constexpr char kDifferentTpm[] = "DIFFERENT_TPM";
inline constexpr char kTpmFirmwareVersion[] = "TPM_FIRMWARE_VERSION";
inline constexpr char kPowerLoss[] = "POWER_LOSS";              // resetCount up, safe NO
inline constexpr char kUnexplainedPcrChange[] = "UNEXPLAINED_PCR_CHANGE";
}  // namespace drift

// One event that differs between the two logs.
struct EventChange {
  std::string change;  // "added", "removed", "changed"
  uint32_t pcr = 0;
  uint32_t type = 0;   // the event type (both sides' for "changed")
  std::optional<size_t> before, after;  // indices into EventLog::events()
  std::string before_summary, after_summary;  // DecodeEventData summaries; "" for a side absent
};

struct Cause {
  std::string code;  // drift::k...
  int pcr = -1;      // -1 when not about one PCR
  std::string detail;
  bool operator==(const Cause&) const = default;
};

struct Drift {
  // Per bank compared, the PCRs whose values differ; banks without a
  // difference are left out.
  std::map<HashAlg, std::vector<int>> pcrs;
  // Ordered by PCR, then by position in the logs.
  std::vector<EventChange> events;
  // Each distinct (code, pcr, detail) once: event-derived causes first, in
  // the order of `events`, then the TPM's.
  std::vector<Cause> causes;
  bool empty() const { return pcrs.empty() && events.empty() && causes.empty(); }
};

/// Aligns the two logs per PCR with AlignEventLogs (harness/align.h, the
/// pairing `tpmlab eventlog diff` shows) and classifies every difference. A
/// change of data alone (the same digests: an image loaded by another path)
/// is listed, but is no cause and explains no moved PCR (EV_NO_ACTION
/// records, never extended, are causes by their data). `pcrs` stays empty.
Drift DiffEventLogs(const EventLog& before, const EventLog& after);

/// Everything: PCR values in the banks both snapshots have (a bank in one
/// only is BANK_ALLOCATION); the event logs when both snapshots carry one
/// that parses, and then every moved PCR tied to its events or reported as
/// UNEXPLAINED_PCR_CHANGE (only a PCR in the replay scope, ReplayScope in
/// harness/replay.h: PCR 10, 16, 23 and DRTM PCRs no log extends are listed
/// in `pcrs` but never unexplained); and the causes the TPM's state shows (counters, safe, clock,
/// EK/SRK names, firmware version), or DIFFERENT_TPM alone for two chips. Without both logs the PCRs
/// are listed but not explained. Counter causes need both quotes parsed.
Drift DiffSnapshots(const Snapshot& before, const Snapshot& after);

/// {"pcrs": {"sha256": [7]}, "events": [{"change", "pcr", "type" (name),
/// "before", "after" (index or null), "before_summary", "after_summary"}],
/// "causes": [{"code", "pcr", "detail"}]}
nlohmann::json DriftToJson(const Drift& drift);

}  // namespace tpmlab
