#include "harness/doctor.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string_view>
#include <utility>

#include "harness/ek_certificate.h"
#include "harness/response_codes.h"
#include "harness/eventlog.h"
#include "harness/replay.h"
#include "harness/verify.h"

namespace tpmlab {
namespace {

// The checklist, in order: id and title.
constexpr std::pair<const char*, const char*> kChecklist[] = {
    {doctor::kTpmPresent, "TPM present"},
    {doctor::kTpmVersion, "TPM 2.0"},
    {doctor::kHierarchies, "TPM enabled (hierarchies)"},
    {doctor::kSha256Bank, "SHA-256 PCR bank allocated"},
    {doctor::kEkPresent, "Endorsement key"},
    {doctor::kEkCertificate, "EK certificate in NV"},
    {doctor::kClock, "Clock"},
    {doctor::kEventlog, "Event log replays to the PCRs"},
    {doctor::kAttestation, "Attestation"},
};

DoctorItem Item(const char* id) {
  DoctorItem item;
  item.id = id;
  for (const auto& [known, title] : kChecklist) {
    if (item.id == known) item.title = title;
  }
  return item;
}

DoctorItem Ok(DoctorItem item, std::string detail) {
  item.status = DoctorStatus::kOk;
  item.detail = std::move(detail);
  return item;
}

DoctorItem Skip(DoctorItem item, std::string why) {
  item.status = DoctorStatus::kSkipped;
  item.detail = std::move(why);
  return item;
}

DoctorItem Bad(DoctorItem item, DoctorStatus status, std::string detail, std::string advice) {
  item.status = status;
  item.detail = std::move(detail);
  item.advice = std::move(advice);
  return item;
}

std::string Hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

// TPM_PT_FIRMWARE_VERSION_1 and _2 as one number, as run.json, drift and
// the verifier print it.
std::string FirmwareVersion(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string BankList(const std::vector<HashAlg>& banks) {
  std::string s;
  for (HashAlg b : banks) s += std::string(s.empty() ? "" : ", ") + HashAlgName(b);
  return s.empty() ? "none" : s;
}

DoctorItem TpmVersion(const TpmProperties& p) {
  DoctorItem item = Item(doctor::kTpmVersion);
  // The TPM answered a TPM 2.0 command (a TPM 1.2 rejects the 2.0 tag), so
  // what is left is the library specification it claims.
  char spec[96];
  std::snprintf(spec, sizeof(spec), "library spec level %u, revision %u.%02u (%u, day %u)", p.spec_level,
                p.spec_revision / 100, p.spec_revision % 100, p.spec_year, p.spec_day);
  std::string vendor = p.manufacturer + (p.vendor_string.empty() ? "" : " " + p.vendor_string);
  const std::string found = std::string(spec) + "; " + vendor + ", firmware " + FirmwareVersion(p.firmware_version);
  if (p.spec_revision == 0) {
    return Bad(item, DoctorStatus::kFail, "no specification revision reported: " + found,
               "The device does not describe itself as a TPM 2.0 (TPM_PT_REVISION is 0); check that the "
               "platform exposes a TPM 2.0, not a TPM 1.2 or a stub.");
  }
  // Revision 1.16 is the first published TPM 2.0 library; earlier ones are drafts.
  if (p.spec_level != 0 || p.spec_revision < 116) {
    return Bad(item, DoctorStatus::kWarn, found,
               "The TPM implements a pre-release or unusual TPM 2.0 specification; update its firmware "
               "if the vendor offers one.");
  }
  return Ok(item, "TPM 2.0, " + found);
}

DoctorItem Hierarchies(const TpmProperties& p) {
  DoctorItem item = Item(doctor::kHierarchies);
  std::string off;
  if (!p.owner_enabled) off += " owner";
  if (!p.endorsement_enabled) off += " endorsement";
  if (!off.empty()) {
    if (!p.platform_enabled) off += " platform";
    return Bad(item, DoctorStatus::kFail, "disabled:" + off,
               "Enable the TPM in the firmware setup (Security > TPM); a hierarchy switched off with "
               "TPM2_HierarchyControl comes back at the next reboot (Startup(CLEAR)) unless the firmware "
               "turns it off again.");
  }
  if (!p.platform_enabled) {
    // Firmware may close the platform hierarchy before handing over to the OS.
    return Bad(item, DoctorStatus::kWarn, "owner and endorsement enabled; platform disabled",
               "Normal when the firmware closes the platform hierarchy at boot; platform operations "
               "(ChangeEPS, PCR_Allocate) need a reboot first.");
  }
  return Ok(item, "platform, owner and endorsement enabled");
}

DoctorItem Sha256Bank(Tpm& tpm, std::vector<HashAlg>& banks) {
  DoctorItem item = Item(doctor::kSha256Bank);
  auto got = tpm.PcrBanks();
  if (!got.ok()) {
    return Bad(item, DoctorStatus::kFail, got.status().ToString(), "The TPM would not list its PCR banks.");
  }
  banks = *got;
  if (std::find(banks.begin(), banks.end(), HashAlg::kSha256) == banks.end()) {
    return Bad(item, DoctorStatus::kFail, "banks allocated: " + BankList(banks),
               "Select SHA-256 in the firmware's TPM settings (TPM2 algorithm selection / PCR bank), "
               "or TPM2_PCR_Allocate with platform auth, then reboot.");
  }
  return Ok(item, "banks allocated: " + BankList(banks));
}

DoctorItem EkPresent(Tpm& tpm, std::optional<KeyInfo>& ek) {
  DoctorItem item = Item(doctor::kEkPresent);
  auto got = tpm.EnsureEk();
  if (!got.ok()) {
    return Bad(item, DoctorStatus::kFail, "no EK: " + got.status().ToString(),
               "The endorsement hierarchy is disabled or refuses to make the EK: enable the TPM and its "
               "endorsement hierarchy in the firmware setup and reboot.");
  }
  ek = *got;
  return Ok(item, std::string(got->created ? "created now and persisted at " : "persisted at ") +
                      Hex32(got->handle) + ", name " + ToHex(got->name));
}

// The EK certificate from NV (RSA, else ECC P-256), the key it certifies,
// and, with roots configured, its chain: judged as the verifier does.
DoctorItem EkCertificate(Tpm& tpm, const std::optional<KeyInfo>& ek, const DoctorOptions& options) {
  DoctorItem item = Item(doctor::kEkCertificate);
  const std::string both = "NV " + Hex32(kEkCertRsaIndex) + " or " + Hex32(kEkCertEccIndex);
  std::optional<Bytes> cert;
  uint32_t index = 0;
  std::string missing;
  for (uint32_t at : {kEkCertRsaIndex, kEkCertEccIndex}) {
    auto got = tpm.NvRead(at);
    if (got.ok()) {
      cert = std::move(*got);
      index = at;
      break;
    }
    missing += (missing.empty() ? "" : "; ") + Hex32(at) + ": " + got.status().ToString();
  }
  if (!cert) {
    return Bad(item, DoctorStatus::kFail, "no certificate at " + both + " (" + missing + ")",
               "Verifiers that read the EK certificate from the TPM (vSphere) cannot enroll it. TPMs whose "
               "vendor publishes certificates online (some firmware TPMs) need it provisioned into NV, "
               "or the verifier told where to fetch it.");
  }
  const std::string found = "NV " + Hex32(index) + ", " + std::to_string(cert->size()) + " bytes";
  auto spki = CertificatePublicKey(*cert);
  if (!spki.ok()) {
    return Bad(item, DoctorStatus::kFail, found + ", not a DER X.509 certificate",
               "The index holds something other than a certificate; have the vendor (or swtpm_setup "
               "--create-ek-cert) provision it again.");
  }
  std::string key;
  if (!ek) {
    key = "; not compared: no EK";
  } else if (PublicKeyKind(*spki) != PublicKeyKind(ek->public_der)) {
    key = "; certifies an " + PublicKeyKind(*spki) + " EK, not compared with the " + PublicKeyKind(ek->public_der) +
          " EK tpmlab uses";
  } else if (*spki != ek->public_der) {
    return Bad(item, DoctorStatus::kFail, found + ", certifying another key than the EK",
               "The endorsement seed changed (TPM2_ChangeEPS, a TPM clear of the seed, a swapped board) "
               "after the certificate was issued: the EK it certifies is gone. Have a new certificate "
               "provisioned for the current EK.");
  } else {
    key = ", certifies the EK";
  }
  if (options.ek_roots.empty()) return Ok(item, found + key + "; chain not checked (no --ek-roots)");
  if (Status chain = VerifyEkCertificateChain(*cert, options.ek_roots); !chain.ok()) {
    return Bad(item, DoctorStatus::kFail, found + key + "; " + chain.message(),
               "The certificate is not issued by a manufacturer CA in --ek-roots: add the vendor's root and "
               "intermediate certificates (from the TPM vendor's site), or the certificate is not genuine.");
  }
  return Ok(item, found + key + ", chains to a configured root");
}

DoctorItem Clock(Tpm& tpm) {
  DoctorItem item = Item(doctor::kClock);
  auto t = tpm.ReadClock();
  if (!t.ok()) return Bad(item, DoctorStatus::kFail, t.status().ToString(), "The TPM would not read its clock.");
  const ClockInfo& c = t->clock;
  const std::string found = "clock " + std::to_string(c.clock_ms) + " ms, resetCount " +
                            std::to_string(c.reset_count) + ", restartCount " +
                            std::to_string(c.restart_count) + ", safe " + (c.safe ? "YES" : "NO");
  if (!c.safe) {
    return Bad(item, DoctorStatus::kWarn, found,
               "The TPM lost power without TPM2_Shutdown since it last saved its clock (a power loss or "
               "a crash), so it cannot promise its clock never went back; verifiers flag CLOCK_NOT_SAFE. "
               "Make the platform shut down orderly; safe returns when the TPM next writes its clock to NV "
               "(libtpms: each time the clock passes a multiple of 4.096 s; chips choose their own, often much "
               "longer, interval), or after a TPM2_ClockSet forward.");
  }
  return Ok(item, found);
}

DoctorItem EventlogReplay(Tpm& tpm, const DoctorOptions& options, const std::vector<HashAlg>& banks) {
  DoctorItem item = Item(doctor::kEventlog);
  if (!options.eventlog) return Skip(item, options.eventlog_missing_reason);
  auto log = ParseEventLog(ByteView(*options.eventlog));
  if (!log.ok()) {
    return Bad(item, DoctorStatus::kFail, "malformed: " + log.status().ToString(),
               "The firmware wrote a log verifiers cannot read; `tpmlab eventlog show` points at the "
               "first bad byte. Update the platform firmware.");
  }
  auto replay = ReplayEventLog(*log);
  if (!replay.ok()) return Bad(item, DoctorStatus::kFail, replay.status().ToString(), "");
  std::vector<HashAlg> compared;
  for (const auto& [bank, values] : replay->pcrs) {
    if (std::find(banks.begin(), banks.end(), bank) != banks.end()) compared.push_back(bank);
  }
  std::vector<HashAlg> in_log;
  for (const auto& [bank, values] : replay->pcrs) in_log.push_back(bank);
  if (compared.empty()) {
    return Bad(item, DoctorStatus::kWarn,
               "the log has " + BankList(in_log) + " digests, the TPM allocates " + BankList(banks) +
                   ": nothing to compare",
               "The log and the TPM share no bank; a log from another machine, or banks changed since boot.");
  }
  auto pcrs = tpm.ReadPcrs(compared);
  if (!pcrs.ok()) return Bad(item, DoctorStatus::kFail, pcrs.status().ToString(), "The TPM would not read its PCRs.");
  const auto differs = CompareReplay(*replay, *pcrs);
  if (!differs.empty()) {
    std::string detail;
    for (const auto& [bank, list] : differs) {
      detail += std::string(detail.empty() ? "" : "; ") + HashAlgName(bank) + " PCRs";
      for (int p : list) detail += " " + std::to_string(p);
    }
    return Bad(item, DoctorStatus::kFail, "the replay of " + std::to_string(log->size()) + " events differs: " + detail,
               "Something extended those PCRs without logging it, or the log is from another boot. "
               "`tpmlab eventlog replay LOG` shows what the log adds up to.");
  }
  // The replay scope (harness/replay.h), as verify and runs compare it.
  std::string scope = "PCR 0-9, 11-15";
  if (replay->drtm) scope += " and the DRTM PCRs the log extends";
  return Ok(item, std::to_string(log->size()) + " events replay to the PCRs in " + BankList(compared) + " (" + scope +
                      "; PCR 10 is IMA's)");
}

DoctorItem Attestation(Tpm& tpm, const DoctorOptions& options) {
  DoctorItem item = Item(doctor::kAttestation);
  auto snapshot = TakeSnapshot(tpm, options.snapshot);
  if (!snapshot.ok()) {
    return Bad(item, DoctorStatus::kFail, "no snapshot: " + snapshot.status().ToString(),
               "The TPM failed while being quoted; see the other items.");
  }
  snapshot->eventlog = options.eventlog;
  const Enrollment* enrollment = options.enrollment ? &*options.enrollment : nullptr;
  VerifyOptions verify_options;
  verify_options.ek_roots = options.ek_roots;
  const Verdict verdict = Verify(*snapshot, nullptr, enrollment, verify_options);
  const std::string against = enrollment ? "against the enrollment of " + enrollment->dut : "no enrollment";
  if (verdict.alarms.empty()) {
    return Ok(item, "quote verifies, no alarm (" + against + "; " + std::to_string(verdict.not_run.size()) +
                        " checks not run)");
  }
  // One line per alarm code, not one per PCR per bank: a log of another boot
  // raises PCR_REPLAY_MISMATCH for every PCR in every bank.
  bool error = false;
  for (const Alarm& a : verdict.alarms) error |= a.severity == Severity::kError;
  std::string codes, advice;
  for (const std::string& code : DistinctAlarmCodes(verdict.alarms)) {
    codes += (codes.empty() ? "" : "; ") + DescribeAlarm(code, verdict.alarms);
    size_t like_it = 0;
    const Alarm* first = nullptr;
    for (const Alarm& a : verdict.alarms) {
      if (a.code != code) continue;
      if (!first) first = &a;
      ++like_it;
    }
    advice += (advice.empty() ? "" : "\n") + code + ": " + first->message +
              (like_it > 1 ? " (and " + std::to_string(like_it - 1) + " more like it)" : "") + ".";
  }
  return Bad(item, error ? DoctorStatus::kFail : DoctorStatus::kWarn, "alarms " + codes + " (" + against + ")",
             advice);
}

}  // namespace

const char* DoctorStatusName(DoctorStatus status) {
  switch (status) {
    case DoctorStatus::kOk: return "ok";
    case DoctorStatus::kWarn: return "warn";
    case DoctorStatus::kFail: return "fail";
    case DoctorStatus::kSkipped: return "skipped";
  }
  return "?";
}

std::vector<DoctorItem> RunDoctor(Tpm& tpm, const DoctorOptions& options) {
  std::vector<DoctorItem> items;
  DoctorItem present = Item(doctor::kTpmPresent);
  auto properties = tpm.Properties();
  if (!properties.ok()) {
    const Status& s = properties.status();
    std::string advice = "Check that the TPM is enabled in the firmware setup and that tpmlab reaches it "
                         "(device node, socket, emulator running).";
    if (IsTpmResponse(s, rc::kInitialize)) {
      advice = "The TPM answers but was never started: the platform must send TPM2_Startup after power-on.";
    } else if (s.layer() == Layer::kTpm) {
      advice = "The TPM answers with an error: it may be in failure mode; a power cycle, or a firmware "
               "update from its vendor, may bring it back.";
    }
    items.push_back(Bad(present, DoctorStatus::kFail, "TPM2_GetCapability failed: " + s.ToString(), advice));
    for (const auto& [id, title] : kChecklist) {
      if (std::string_view(id) != doctor::kTpmPresent) items.push_back(Skip(Item(id), "no usable answer from the TPM"));
    }
    return items;
  }
  items.push_back(Ok(present, "answers TPM2_GetCapability: " + properties->manufacturer +
                                  (properties->vendor_string.empty() ? "" : " (" + properties->vendor_string + ")")));
  items.push_back(TpmVersion(*properties));
  items.push_back(Hierarchies(*properties));
  std::vector<HashAlg> banks;
  items.push_back(Sha256Bank(tpm, banks));
  std::optional<KeyInfo> ek;
  items.push_back(EkPresent(tpm, ek));
  items.push_back(EkCertificate(tpm, ek, options));
  items.push_back(Clock(tpm));
  items.push_back(EventlogReplay(tpm, options, banks));
  items.push_back(Attestation(tpm, options));
  return items;
}

DoctorStatus DoctorOverall(const std::vector<DoctorItem>& items) {
  DoctorStatus worst = DoctorStatus::kOk;
  for (const auto& i : items) {
    if (i.status == DoctorStatus::kFail) return DoctorStatus::kFail;
    if (i.status == DoctorStatus::kWarn) worst = DoctorStatus::kWarn;
  }
  return worst;
}

bool DoctorReachedTpm(const std::vector<DoctorItem>& items) {
  const DoctorItem* present = FindDoctorItem(items, doctor::kTpmPresent);
  return present != nullptr && present->status == DoctorStatus::kOk;
}

const DoctorItem* FindDoctorItem(const std::vector<DoctorItem>& items, const std::string& id) {
  for (const auto& i : items) {
    if (i.id == id) return &i;
  }
  return nullptr;
}

nlohmann::json DoctorToJson(const std::vector<DoctorItem>& items) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& i : items) {
    list.push_back({{"id", i.id},
                    {"title", i.title},
                    {"status", DoctorStatusName(i.status)},
                    {"detail", i.detail},
                    {"advice", i.advice}});
  }
  return {{"status", DoctorStatusName(DoctorOverall(items))}, {"items", list}};
}

}  // namespace tpmlab
