#include "harness/findings.h"

#include <algorithm>
#include <map>
#include <optional>

#include "harness/event_data.h"

namespace tpmlab {
namespace {

std::string Where(size_t index, const Event& e) {
  return "event " + std::to_string(index) + " (PCR" + std::to_string(e.pcr) + " " + EventTypeName(e.type) + ")";
}

Finding Make(const char* code, std::string message, size_t index, const Event& e) {
  return {code, std::move(message), index, e.pcr, e.type, e.log_offset};
}

bool Equal(ByteView a, ByteView b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

bool IsText(ByteView data, std::string_view text) {
  while (!data.empty() && data.back() == 0) data = data.first(data.size() - 1);
  return Equal(data, AsBytes(text));
}

// What an event's digest may have been computed over, when the log carries
// it; empty when the digest covers something the log does not (a PE image,
// a firmware region, a file grub read).
std::vector<ByteView> DigestInputs(const Event& e, ByteView data) {
  switch (e.type) {
    case ev::kSeparator:
    case ev::kAction:
    case ev::kEfiAction:
    case ev::kSCrtmVersion:
    case ev::kEfiVariableDriverConfig:
    case ev::kEfiGptEvent:
      return {data};
    case ev::kEfiVariableBoot:
    case ev::kEfiVariableBoot2: {
      // The PFP says H(UEFI_VARIABLE_DATA); edk2 and many firmwares hash only VariableData.
      std::vector<ByteView> in{data};
      if (auto v = ParseUefiVariable(data); v.ok()) in.push_back(v->data);
      return in;
    }
    case ev::kIpl: {
      // PCR 9 (files grub and sd-boot read) and 14 (shim's MOK lists) hash
      // what the log does not carry. PCR 8 and 12 hold command lines:
      // grub logs "grub_cmd: <cmd>\0" or "kernel_cmdline: <line>\0" and
      // hashes what follows the first space, with or without the NUL;
      // sd-boot hashes the whole data. Accept any of these.
      if (e.pcr != 8 && e.pcr != 12) return {};
      std::vector<ByteView> in{data};
      if (data.empty() || data.back() != 0) return in;
      in.push_back(data.first(data.size() - 1));
      auto space = std::find(data.begin(), data.end(), uint8_t{' '});
      if (space != data.end()) {
        ByteView rest = data.subspan(static_cast<size_t>(space - data.begin()) + 1);
        in.push_back(rest);
        in.push_back(rest.first(rest.size() - 1));
      }
      return in;
    }
    default:
      return {};
  }
}

void CheckDigests(const EventLog& log, size_t index, const Event& e, std::vector<Finding>& out) {
  const std::vector<ByteView> inputs = DigestInputs(e, log.Data(e));
  if (inputs.empty()) return;
  std::string banks, detail;
  for (uint32_t k = 0; k < e.digest_count; ++k) {
    const auto& d = log.DigestAt(e, k);
    auto alg = HashAlgFromId(d.alg);
    if (!alg) continue;
    const ByteView logged = log.DigestBytes(d);
    bool match = false;
    Bytes first;
    for (ByteView in : inputs) {
      auto h = Hash(*alg, in);
      if (!h.ok()) {  // a bank this OpenSSL cannot compute (SM3) is not checked
        match = true;
        break;
      }
      if (first.empty()) first = *h;
      if (Equal(*h, logged)) {
        match = true;
        break;
      }
    }
    if (match) continue;
    banks += (banks.empty() ? "" : ", ") + std::string(HashAlgName(*alg));
    if (detail.empty()) {
      detail = std::string(HashAlgName(*alg)) + " logged " + ToHex(logged).substr(0, 16) +
               "..., the data hashes to " + ToHex(first).substr(0, 16) + "...";
    }
  }
  if (banks.empty()) return;
  out.push_back(Make("EVENT_DIGEST_MISMATCH",
                     Where(index, e) + ": the " + banks + " digest does not match its payload (" + detail + ")",
                     index, e));
}

// Which events may follow their PCR's separator. Decided from the 33 good
// fixture logs, none of which may be flagged, plus the legacy BIOS order:
//   PCR1  Boot####/BootOrder (OVMF and other firmware measure them when the
//         boot manager runs), the SMBIOS handoff table and platform config
//         flags (Lenovo and gdc-host measure them at ReadyToBoot);
//   PCR4  boot applications and "Calling EFI Application from Boot Option";
//         a BIOS logs its IPL (EV_IPL, EV_ACTION) after the separators;
//   PCR5  the GPT and the ExitBootServices actions; a BIOS's partition data;
//   PCR7  the authorities that verified boot images, and shim's SBAT and
//         MOK variables.
// PCR 0, 2, 3 and 6: nothing may follow.
bool AllowedAfterSeparator(uint32_t pcr, uint32_t type) {
  switch (pcr) {
    case 1:
      return type == ev::kEfiVariableBoot || type == ev::kEfiVariableBoot2 || type == ev::kEfiHandoffTables ||
             type == ev::kEfiHandoffTables2 || type == ev::kPlatformConfigFlags;
    case 4:
      return type == ev::kEfiBootServicesApplication || type == ev::kEfiAction || type == ev::kAction ||
             type == ev::kIpl;
    case 5:
      return type == ev::kEfiGptEvent || type == ev::kEfiAction || type == ev::kAction ||
             type == ev::kIplPartitionData;
    case 7:
      return type == ev::kEfiVariableAuthority || type == ev::kEfiVariableDriverConfig;
    default:
      return false;
  }
}

std::string SeparatorNote(ByteView data) {
  if (IsText(data, "WBCL")) return "'WBCL', the separator Windows writes to PCR 12-14";
  if (data.size() == 4 && data[0] == 0xFF && data[1] == 0xFF && data[2] == 0xFF && data[3] == 0xFF) {
    return "FFFFFFFF, which firmware writes to signal a measurement error";
  }
  return "not one of the known vendor forms ('WBCL', FFFFFFFF)";
}

}  // namespace

std::vector<Finding> CheckEventLog(const EventLog& log) {
  std::vector<Finding> out;
  std::map<uint32_t, size_t> separator_of;  // PCR -> its first separator
  std::optional<size_t> crtm_version;
  bool boot_application = false, exit_boot_services = false;
  static constexpr uint8_t kZeros[4] = {};

  const auto& events = log.events();
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    const ByteView data = log.Data(e);

    if (!IsKnownEventType(e.type)) {
      out.push_back(Make("UNKNOWN_EVENT_TYPE", Where(i, e) + ": the TCG tables do not name this event type", i, e));
    }
    CheckDigests(log, i, e, out);
    if (DecodedEvent d = DecodeEventData(e.type, data); !d.problem.empty()) {
      out.push_back(Make("EVENT_DATA_UNDECODABLE", Where(i, e) + ": " + d.problem, i, e));
    }

    if (e.type == ev::kSeparator) {
      if (auto first = separator_of.find(e.pcr); first != separator_of.end()) {
        out.push_back(Make("DUPLICATE_SEPARATOR",
                           Where(i, e) + ": a second separator on PCR" + std::to_string(e.pcr) +
                               " (the first is event " + std::to_string(first->second) + ")",
                           i, e));
      } else {
        separator_of[e.pcr] = i;
      }
      if (!Equal(data, kZeros)) {
        out.push_back(Make("SEPARATOR_VALUE",
                           Where(i, e) + ": separator data is " + ToHex(data.first(std::min<size_t>(data.size(), 16))) +
                               ", not 00000000: " + SeparatorNote(data),
                           i, e));
      }
    } else if (e.type != ev::kNoAction && e.pcr < 8 && separator_of.count(e.pcr) != 0 &&
               !AllowedAfterSeparator(e.pcr, e.type)) {
      out.push_back(Make("EVENT_AFTER_SEPARATOR",
                         Where(i, e) + ": measured after PCR" + std::to_string(e.pcr) + "'s separator (event " +
                             std::to_string(separator_of[e.pcr]) + "), where firmware should have stopped",
                         i, e));
    }

    if (e.type == ev::kSCrtmVersion) {
      if (crtm_version) {
        const Event& first = events[*crtm_version];
        const bool same = Equal(log.Data(first), data);
        out.push_back(Make("DUPLICATE_S_CRTM_VERSION",
                           Where(i, e) + ": a second S-CRTM version (the first is event " +
                               std::to_string(*crtm_version) + ", with " + (same ? "the same" : "different") +
                               " data); PCR0 then depends on how often firmware measured it",
                           i, e));
      } else {
        crtm_version = i;
      }
    }
    if (e.pcr == 4 && e.type == ev::kEfiBootServicesApplication) boot_application = true;
    if (e.pcr == 5 && e.type == ev::kEfiAction &&
        (IsText(data, "Exit Boot Services Invocation") || IsText(data, "Exit Boot Services Returned with Success"))) {
      exit_boot_services = true;
    }
  }

  // Only a UEFI boot that ran a boot application reaches ExitBootServices;
  // a BIOS log or a log cut before the boot manager has no reason to.
  if (auto pcr5 = separator_of.find(5); boot_application && !exit_boot_services && pcr5 != separator_of.end()) {
    const size_t i = pcr5->second;
    out.push_back(Make("MISSING_EXIT_BOOT_SERVICES",
                       Where(i, events[i]) +
                           ": PCR5 has no \"Exit Boot Services Invocation\" or \"...Returned with Success\" "
                           "action; firmware that extends them without logging them makes PCR5 replay wrong",
                       i, events[i]));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Finding& a, const Finding& b) { return a.event_index < b.event_index; });
  return out;
}

}  // namespace tpmlab
