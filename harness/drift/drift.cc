#include "harness/drift.h"

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <set>
#include <string_view>
#include <utility>

#include "harness/align.h"
#include "harness/event_data.h"
#include "harness/replay.h"

namespace tpmlab {
namespace {

using json = nlohmann::json;

// --- Classification -----------------------------------------------------------

struct Class {
  std::string code;
  std::string detail;
};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool Contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

bool StartsWith(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

// The emulated firmware (harness/boot) loads shim, GRUB and systemd-boot from
// named files but logs the kernel's image load with a PCI device path and no
// file name, so a boot application is a boot loader when its device path
// names one, and the kernel (or a UKI) otherwise.
bool NamesBootLoader(const std::string& path) {
  const std::string p = Lower(path);
  for (std::string_view name : {"shim", "grub", "systemd-boot", "sd-boot", "\\efi\\boot\\boot", "bootmgfw",
                                "bootmgr", "refind"}) {
    if (Contains(p, name)) return true;
  }
  return false;
}

std::string VariableName(ByteView data, const std::string& summary) {
  auto var = ParseUefiVariable(data);
  if (var.ok() && !var->name.empty()) return var->name;
  return summary;
}

Class Classify(uint32_t pcr, uint32_t type, ByteView data, const std::string& summary) {
  using namespace drift;
  auto other = [&] { return Class{kEventChange, EventTypeName(type) + ": " + summary}; };
  switch (type) {
    case ev::kNoAction:
      if (StartsWith(summary, "StartupLocality")) return {kStartupLocality, summary};
      return other();
    case ev::kEfiHcrtmEvent:
      return {kHcrtm, summary};
    case ev::kSCrtmVersion:
      return {kSCrtmVersion, summary};
    case ev::kSCrtmContents:
    case ev::kPostCode:
    case ev::kEfiPlatformFirmwareBlob:
    case ev::kEfiPlatformFirmwareBlob2:
    case ev::kNonhostCode:
    case ev::kEfiSpdmFirmwareBlob:
      return {pcr == 2 ? kOptionRom : kFirmwareBlob, summary};
    case ev::kEfiBootServicesDriver:
    case ev::kEfiRuntimeServicesDriver:
      return {pcr == 0 ? kFirmwareBlob : kOptionRom, summary};
    case ev::kEfiBootServicesApplication:
      if (pcr == 0) return {kFirmwareBlob, summary};
      if (pcr == 2) return {kOptionRom, summary};
      return {NamesBootLoader(summary) ? kBootLoader : kKernel, summary};
    case ev::kPlatformConfigFlags:
    case ev::kTableOfDevices:
    case ev::kCpuMicrocode:
    case ev::kEfiHandoffTables:
    case ev::kEfiHandoffTables2:
    case ev::kNonhostConfig:
    case ev::kNonhostInfo:
    case ev::kOmitBootDeviceEvents:
    case ev::kEfiSpdmFirmwareConfig:
      return {kPlatformConfig, summary};
    case ev::kEfiVariableDriverConfig:
      // PCR7 holds the Secure Boot policy; elsewhere (PCR1, 3) these are setup variables.
      return {pcr == 7 ? kSecureBootVariable : kPlatformConfig, VariableName(data, summary)};
    case ev::kEfiVariableBoot:
    case ev::kEfiVariableBoot2:
      return {kBootOrder, VariableName(data, summary)};
    case ev::kEfiVariableAuthority:
      // The db entry (or shim's certificate) that let an image run: Secure
      // Boot policy in action, on PCR7, so a Secure Boot cause.
      return {kSecureBootVariable, "authority"};
    case ev::kEventTag:
      return {kOsBootModule, summary};
    case ev::kIpl:
      switch (pcr) {
        case 4: return {kBootLoader, summary};  // a legacy BIOS's IPL code
        case 8: return {StartsWith(summary, "kernel_cmdline") ? kKernelCmdline : kBootLoader, summary};
        case 9: return {Contains(Lower(summary), "grub") ? kBootLoader : kKernel, summary};
        case 12: return {kKernelCmdline, summary};   // systemd-boot / systemd-stub
        case 14: return {kSecureBootVariable, summary};  // shim's MokList, MokListX, MokSBState
        case 10:
        case 11:
        case 13: return {kOsBootModule, summary};
        default: return pcr >= 15 ? Class{kOsBootModule, summary} : other();
      }
    case ev::kAction:
    case ev::kEfiAction:
      if (pcr == 4) return {kBootLoader, summary};
      if (pcr == 7) return {kSecureBootVariable, summary};  // "UEFI Debug Mode", "DMA Protection Disabled"
      return other();
    default:
      return other();
  }
}

void AddCause(Drift& drift, Cause cause) {
  if (std::find(drift.causes.begin(), drift.causes.end(), cause) == drift.causes.end()) {
    drift.causes.push_back(std::move(cause));
  }
}

// --- The log diff ----------------------------------------------------------

// The first 12 hex digits of a digest: enough to tell two apart at a glance.
std::string ShortHex(ByteView bytes) {
  std::string hex = ToHex(bytes);
  return hex.size() > 12 ? hex.substr(0, 12) + "..." : hex;
}

// Two events whose decoded summaries read the same (a firmware volume with
// new contents at the same address): each side gets what tells it apart, the
// digest of the bank both logs prefer (SHA-256 first), else where the data
// first differs.
void ShowWhatDiffers(const EventLog& a, const Event& x, const EventLog& b, const Event& y, std::string& before,
                     std::string& after) {
  for (HashAlg alg : {HashAlg::kSha256, HashAlg::kSha384, HashAlg::kSha512, HashAlg::kSha1}) {
    const auto dx = a.DigestFor(x, static_cast<uint16_t>(alg));
    const auto dy = b.DigestFor(y, static_cast<uint16_t>(alg));
    if (!dx || !dy) continue;
    if (std::equal(dx->begin(), dx->end(), dy->begin(), dy->end())) break;
    before += " (" + std::string(HashAlgName(alg)) + " " + ShortHex(*dx) + ")";
    after += " (" + std::string(HashAlgName(alg)) + " " + ShortHex(*dy) + ")";
    return;
  }
  const ByteView da = a.Data(x), db = b.Data(y);
  size_t at = 0;
  while (at < da.size() && at < db.size() && da[at] == db[at]) ++at;
  auto from = [at](ByteView d) {
    if (at >= d.size()) return std::string("ends");
    return "0x" + ShortHex(ByteView(d.data() + at, std::min<size_t>(6, d.size() - at)));
  };
  before += " (data at byte " + std::to_string(at) + ": " + from(da) + ")";
  after += " (data at byte " + std::to_string(at) + ": " + from(db) + ")";
}

struct LogDiff {
  Drift drift;
  std::set<uint32_t> extended_changes;  // PCRs with a changed event that extends
};

LogDiff DiffLogs(const EventLog& a, const EventLog& b) {
  LogDiff out;
  // The events as AlignEventLogs (harness/align.h) pairs them, the same
  // pairing `tpmlab eventlog diff` shows.
  for (const EventDifference& d : AlignEventLogs(a, b).differences) {
    switch (d.kind) {
      case EventDifference::Kind::kRemoved: {
        const Event& e = a.events()[*d.before];
        out.drift.events.push_back({"removed", d.pcr, e.type, d.before, std::nullopt, DecodeEventData(a, e).summary, ""});
        break;
      }
      case EventDifference::Kind::kAdded: {
        const Event& e = b.events()[*d.after];
        out.drift.events.push_back({"added", d.pcr, e.type, std::nullopt, d.after, "", DecodeEventData(b, e).summary});
        break;
      }
      case EventDifference::Kind::kChanged: {
        const Event& x = a.events()[*d.before];
        const Event& y = b.events()[*d.after];
        std::string before = DecodeEventData(a, x).summary, after = DecodeEventData(b, y).summary;
        if (before == after) ShowWhatDiffers(a, x, b, y, before, after);
        out.drift.events.push_back({"changed", d.pcr, x.type, d.before, d.after, std::move(before), std::move(after)});
        break;
      }
    }
    // A change of data alone (the same digests) measured nothing new: it is
    // listed, but it neither explains a moved PCR nor is a cause. EV_NO_ACTION
    // records are never extended and count by their data (StartupLocality).
    const uint32_t type = d.before ? a.events()[*d.before].type : b.events()[*d.after].type;
    const bool measured = d.kind != EventDifference::Kind::kChanged || d.digest_differs;
    if (measured && type != ev::kNoAction) out.extended_changes.insert(d.pcr);
    if (!measured && type != ev::kNoAction) continue;
    // A changed event is one cause, named by what it is now (both, if the
    // two sides classify differently); a removed one by what it was.
    const EventChange& c = out.drift.events.back();
    std::optional<Class> was, now;
    if (c.before) was = Classify(c.pcr, c.type, a.Data(a.events()[*c.before]), c.before_summary);
    if (c.after) now = Classify(c.pcr, c.type, b.Data(b.events()[*c.after]), c.after_summary);
    const int pcr = c.pcr < static_cast<uint32_t>(kPcrCount) ? static_cast<int>(c.pcr) : -1;
    if (now) AddCause(out.drift, {now->code, pcr, now->detail});
    if (was && (!now || was->code != now->code)) AddCause(out.drift, {was->code, pcr, was->detail});
  }
  return out;
}

// --- The TPM's own state -------------------------------------------------------

std::string Hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%016" PRIx64, v);
  return buf;
}

std::vector<HashAlg> BanksOf(const Snapshot& s) {
  std::vector<HashAlg> banks = s.banks;
  if (banks.empty()) {
    for (const auto& [bank, values] : s.pcrs) banks.push_back(bank);
  }
  std::sort(banks.begin(), banks.end());
  banks.erase(std::unique(banks.begin(), banks.end()), banks.end());
  return banks;
}

std::optional<EventLog> LogOf(const Snapshot& s) {
  if (!s.eventlog) return std::nullopt;
  auto parsed = ParseEventLog(*s.eventlog);
  if (!parsed.ok()) return std::nullopt;
  return std::move(parsed).value();
}

// Why `before` and `after` are two chips rather than one chip at two times,
// or "" when nothing says so. A new EK alone is TPM2_ChangeEPS on the same
// chip; a new EK together with another maker, another EK certificate (the
// one in NV is the vendor's, which ChangeEPS leaves alone) or a new SRK too
// is another chip.
std::string OtherChipEvidence(const Snapshot& before, const Snapshot& after) {
  const bool ek_changed = !before.ek.name.empty() && !after.ek.name.empty() && before.ek.name != after.ek.name;
  if (!ek_changed) return "";
  const TpmProperties& pb = before.properties;
  const TpmProperties& pa = after.properties;
  std::vector<std::string> evidence;
  if (!pb.manufacturer.empty() && !pa.manufacturer.empty() && pb.manufacturer != pa.manufacturer) {
    evidence.push_back("manufacturer '" + pb.manufacturer + "' -> '" + pa.manufacturer + "'");
  }
  if (!pb.vendor_string.empty() && !pa.vendor_string.empty() && pb.vendor_string != pa.vendor_string) {
    evidence.push_back("vendor '" + pb.vendor_string + "' -> '" + pa.vendor_string + "'");
  }
  if (before.ek_certificate && after.ek_certificate && *before.ek_certificate != *after.ek_certificate) {
    evidence.push_back("another EK certificate");
  }
  const bool srk_changed = !before.srk.name.empty() && !after.srk.name.empty() && before.srk.name != after.srk.name;
  if (evidence.empty() && !srk_changed) return "";  // ChangeEPS: EK_CHANGE
  std::string detail = "EK name " + ToHex(before.ek.name) + " -> " + ToHex(after.ek.name);
  for (const auto& e : evidence) detail += ", " + e;
  if (evidence.empty()) detail += " and a new SRK (another chip, or ChangeEPS and Clear together)";
  return detail;
}

void TpmCauses(const Snapshot& before, const Snapshot& after, Drift& drift) {
  using namespace drift;
  if (const std::string other = OtherChipEvidence(before, after); !other.empty()) {
    // Counters, keys, clock and firmware version of two chips are no history:
    // a fresh chip's low counters are not a clear, its clock not a power loss.
    const uint64_t fb = before.properties.firmware_version, fa = after.properties.firmware_version;
    AddCause(drift, {kDifferentTpm, -1,
                     other + (fb != fa && fb != 0 && fa != 0 ? ", firmware " + Hex64(fb) + " -> " + Hex64(fa) : "")});
    return;
  }
  const bool srk_known = !before.srk.name.empty() && !after.srk.name.empty();
  const bool srk_changed = srk_known && before.srk.name != after.srk.name;
  const bool clocks = before.quote_check.parsed && after.quote_check.parsed;
  const ClockInfo& cb = before.clock();
  const ClockInfo& ca = after.clock();
  auto counters = [&] {
    return "resetCount " + std::to_string(cb.reset_count) + " -> " + std::to_string(ca.reset_count) +
           ", restartCount " + std::to_string(cb.restart_count) + " -> " + std::to_string(ca.restart_count);
  };

  // TPM2_Clear zeroes resetCount and restartCount and draws a new storage
  // seed (a new SRK). After more boots the counters may have climbed again,
  // so a reset counter that went back counts too; the SRK decides when known.
  const bool counters_reset =
      clocks && ((ca.reset_count == 0 && ca.restart_count == 0 && (cb.reset_count > 0 || cb.restart_count > 0)) ||
                 ca.reset_count < cb.reset_count);
  if (counters_reset && (srk_changed || !srk_known)) {
    AddCause(drift, {kOwnershipClear, -1,
                     counters() + (srk_changed ? ", SRK name changed" : ", SRK not compared")});
  } else if (srk_changed) {
    AddCause(drift, {kOwnershipClear, -1,
                     "SRK name changed" + (clocks ? " (" + counters() + ")" : std::string())});
  }

  if (!before.ek.name.empty() && !after.ek.name.empty() && before.ek.name != after.ek.name) {
    AddCause(drift, {kEkChange, -1, "EK name " + ToHex(before.ek.name) + " -> " + ToHex(after.ek.name)});
  }
  const uint64_t fb = before.properties.firmware_version, fa = after.properties.firmware_version;
  if (fb != 0 && fa != 0 && fb != fa) {
    AddCause(drift, {kTpmFirmwareVersion, -1, Hex64(fb) + " -> " + Hex64(fa)});
  }
  // An unorderly shutdown: the next Startup(CLEAR) counts a reset and the
  // TPM reports safe NO. A TPM that was already unsafe shows it only by a
  // clock that went back (the last NV write of the clock was lost).
  if (clocks && ca.reset_count > cb.reset_count && !ca.safe && (cb.safe || ca.clock_ms < cb.clock_ms)) {
    std::string detail = "resetCount " + std::to_string(cb.reset_count) + " -> " + std::to_string(ca.reset_count) +
                         ", safe " + (cb.safe ? "YES" : "NO") + " -> NO";
    if (ca.clock_ms < cb.clock_ms) {
      detail += ", clock " + std::to_string(cb.clock_ms) + " -> " + std::to_string(ca.clock_ms) + " ms";
    }
    AddCause(drift, {kPowerLoss, -1, detail});
  }
}

}  // namespace

Drift DiffEventLogs(const EventLog& before, const EventLog& after) { return DiffLogs(before, after).drift; }

Drift DiffSnapshots(const Snapshot& before, const Snapshot& after) {
  Drift drift;
  // PCR values, in the banks both snapshots read.
  const std::vector<HashAlg> banks_b = BanksOf(before), banks_a = BanksOf(after);
  for (HashAlg bank : banks_b) {
    if (std::find(banks_a.begin(), banks_a.end(), bank) == banks_a.end()) {
      AddCause(drift, {drift::kBankAllocation, -1, std::string(HashAlgName(bank)) + " removed"});
    }
  }
  for (HashAlg bank : banks_a) {
    if (std::find(banks_b.begin(), banks_b.end(), bank) == banks_b.end()) {
      AddCause(drift, {drift::kBankAllocation, -1, std::string(HashAlgName(bank)) + " added"});
    }
  }
  std::map<int, std::vector<HashAlg>> moved;  // PCR -> banks it moved in
  for (const auto& [bank, values] : before.pcrs) {
    auto it = after.pcrs.find(bank);
    if (it == after.pcrs.end()) continue;
    for (int i = 0; i < kPcrCount; ++i) {
      if (values[static_cast<size_t>(i)] != it->second[static_cast<size_t>(i)]) {
        drift.pcrs[bank].push_back(i);
        moved[i].push_back(bank);
      }
    }
  }

  // The logs, and every moved PCR tied to its events.
  const std::optional<EventLog> log_b = LogOf(before), log_a = LogOf(after);
  std::vector<Cause> bank_causes = std::move(drift.causes);
  drift.causes.clear();
  if (log_b && log_a) {
    LogDiff diff = DiffLogs(*log_b, *log_a);
    drift.events = std::move(diff.drift.events);
    drift.causes = std::move(diff.drift.causes);
    // PCR0's initial value comes from the startup locality or the H-CRTM,
    // not from an extend: a change there moves PCR0 with no extended event.
    bool pcr0_start_changed = false;
    auto rb = ReplayEventLog(*log_b);
    auto ra = ReplayEventLog(*log_a);
    // Only a PCR in the replay scope (harness/replay.h) is the firmware log's
    // to explain: IMA's PCR 10 moves on every boot with no firmware event.
    uint32_t scope = kMeasuredBootPcrs;
    if (rb.ok() && ra.ok()) {
      pcr0_start_changed = rb->startup_locality != ra->startup_locality || rb->hcrtm != ra->hcrtm;
      for (const auto& [bank, values] : ra->pcrs) scope |= ReplayScope(*ra, bank);
      for (const auto& [bank, values] : rb->pcrs) scope |= ReplayScope(*rb, bank);
    }
    for (const auto& [pcr, banks] : moved) {
      if ((scope & (1u << pcr)) == 0) continue;
      if (diff.extended_changes.count(static_cast<uint32_t>(pcr)) != 0) continue;
      if (pcr == 0 && pcr0_start_changed) continue;
      std::string names;
      for (HashAlg bank : banks) names += (names.empty() ? "" : ", ") + std::string(HashAlgName(bank));
      AddCause(drift, {drift::kUnexplainedPcrChange, pcr,
                       "PCR" + std::to_string(pcr) + " moved (" + names + ") but no logged event on it changed"});
    }
  }
  for (Cause& c : bank_causes) AddCause(drift, std::move(c));
  TpmCauses(before, after, drift);
  return drift;
}

json DriftToJson(const Drift& drift) {
  json pcrs = json::object();
  for (const auto& [bank, list] : drift.pcrs) pcrs[HashAlgName(bank)] = list;
  json events = json::array();
  auto index = [](const std::optional<size_t>& i) { return i ? json(*i) : json(nullptr); };
  for (const EventChange& e : drift.events) {
    events.push_back({{"change", e.change},
                      {"pcr", e.pcr},
                      {"type", EventTypeName(e.type)},
                      {"before", index(e.before)},
                      {"after", index(e.after)},
                      {"before_summary", e.before_summary},
                      {"after_summary", e.after_summary}});
  }
  json causes = json::array();
  for (const Cause& c : drift.causes) causes.push_back({{"code", c.code}, {"pcr", c.pcr}, {"detail", c.detail}});
  return {{"pcrs", std::move(pcrs)}, {"events", std::move(events)}, {"causes", std::move(causes)}};
}

}  // namespace tpmlab
