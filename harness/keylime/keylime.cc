// Keylime's measured-boot reference state, field by field as
// create_mb_policy.py fills it from `tpm2_eventlog` output (tpm2-tools 5.2+:
// GUIDs in their text form, strings without their NUL), read here from the
// binary log instead. Where Keylime's example policy (the reader) is
// narrower than the generator, the reader wins, so what is exported is
// accepted: platform firmware blobs and the S-CRTM version are taken from
// PCR 0 only, the only PCR the example policy matches them on.
#include "harness/keylime.h"

#include <cstdio>
#include <cstring>
#include <string_view>

#include "harness/event_data.h"

namespace tpmlab::keylime {
namespace {

using nlohmann::ordered_json;

uint64_t Le(ByteView b, size_t at, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t{b[at + i]} << (8 * i);
  return v;
}

std::string Hex0x(ByteView digest) { return "0x" + ToHex(digest); }

// The event data as tpm2_eventlog's "String": the bytes up to trailing NULs.
std::string EventString(const EventLog& log, const Event& e) {
  ByteView d = log.Data(e);
  size_t n = d.size();
  while (n > 0 && d[n - 1] == 0) --n;
  return std::string(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(n));
}

// create_mb_policy's event_to_sha256: {"sha256": "0x…"}, or {} when the
// event carries no sha256 digest.
ordered_json Sha256Of(const EventLog& log, const Event& e) {
  ordered_json j = ordered_json::object();
  if (auto d = log.DigestFor(e, static_cast<uint16_t>(HashAlg::kSha256))) j["sha256"] = Hex0x(*d);
  return j;
}

// A list of EFI_SIGNATURE_LIST {GUID type; u32 list size; u32 header size;
// u32 signature size; header; {GUID owner; data}...} as Keylime's keys:
// [{"SignatureOwner": guid, "SignatureData": "0x…"}]. Stops at the first
// list that does not fit, saying so in `problem`.
ordered_json SignatureKeys(ByteView v, std::string& problem) {
  ordered_json keys = ordered_json::array();
  size_t at = 0;
  while (at < v.size()) {
    if (v.size() - at < 28) {
      problem = "EFI_SIGNATURE_LIST header truncated at byte " + std::to_string(at) + " of the variable";
      break;
    }
    const uint64_t list_size = Le(v, at + 16, 4), header_size = Le(v, at + 20, 4), sig_size = Le(v, at + 24, 4);
    if (list_size < 28 || list_size > v.size() - at || header_size > list_size - 28 || sig_size < 16 ||
        (list_size - 28 - header_size) % sig_size != 0) {
      problem = "EFI_SIGNATURE_LIST at byte " + std::to_string(at) + " of the variable does not fit (size " +
                std::to_string(list_size) + ", signatures of " + std::to_string(sig_size) + " bytes)";
      break;
    }
    for (size_t s = at + 28 + header_size; s < at + list_size; s += sig_size) {
      keys.push_back({{"SignatureOwner", GuidText(v.subspan(s, 16))},
                      {"SignatureData", Hex0x(v.subspan(s + 16, sig_size - 16))}});
    }
    at += list_size;
  }
  return keys;
}

// Whether an image load's device path opens with a firmware volume node and
// a firmware file node (MEDIA 4/7 then 4/6): an application built into the
// firmware (its boot menu, a shell), which create_mb_policy skips by
// matching "FvVol(…)/FvFile(…)" on the path's text.
bool LoadedFromFirmwareVolume(ByteView d) {
  if (d.size() < 32) return false;
  const uint64_t dp_length = Le(d, 24, 8);
  ByteView dp = d.subspan(32, std::min<uint64_t>(dp_length, d.size() - 32));
  auto node_at = [&dp](size_t at, uint8_t type, uint8_t subtype) {
    return dp.size() >= at + 4 && dp[at] == type && dp[at + 1] == subtype;
  };
  if (!node_at(0, 4, 7)) return false;
  const size_t first = Le(dp, 2, 2);
  return first >= 4 && node_at(first, 4, 6);
}

struct Variable {
  std::string name;
  ByteView data;
};
std::optional<Variable> VariableOf(const EventLog& log, const Event& e) {
  auto v = ParseUefiVariable(log.Data(e));
  if (!v.ok()) return std::nullopt;
  return Variable{v->name, v->data};
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return s;
}

bool Contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

}  // namespace

std::string RegexEscape(std::string_view text) {
  static constexpr std::string_view kSpecial = "()[]{}?*+-|^$\\.&~# \t\n\r\v\f";
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && kSpecial.find(c) == std::string_view::npos) || u >= 0x7F) {
      // Not text: the regex escape for that code point, so the JSON stays UTF-8.
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", u);
      out += buf;
      continue;
    }
    if (kSpecial.find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

Result<MbRefstate> MeasuredBootRefstate(const EventLog& log) {
  const uint16_t sha256 = static_cast<uint16_t>(HashAlg::kSha256);
  bool has_sha256 = false;
  if (log.format() == LogFormat::kCryptoAgile) {
    for (const auto& a : log.spec().algorithms) has_sha256 |= a.alg == sha256;
  }
  if (!has_sha256) {
    return Status::Parse(std::string("the event log (") + LogFormatName(log.format()) +
                         ") carries no sha256 digests: every digest of Keylime's measured-boot reference state is sha256");
  }
  MbRefstate out;
  auto& notes = out.notes;

  // has_secureboot: the first SecureBoot variable the firmware measured.
  std::optional<bool> secure_boot;
  for (const Event& e : log.events()) {
    if (e.type != ev::kEfiVariableDriverConfig) continue;
    auto v = VariableOf(log, e);
    if (v && v->name == "SecureBoot") {
      secure_boot = !v->data.empty() && v->data[0] == 1;
      break;
    }
  }
  if (!secure_boot) notes.push_back("has_secureboot: no SecureBoot variable in the log; taken as off, as Keylime does");
  const bool has_secureboot = secure_boot.value_or(false);

  // scrtm_and_bios: the S-CRTM version and the firmware blobs of PCR 0.
  ordered_json bios = ordered_json::object();
  ordered_json blobs = ordered_json::array();
  for (const Event& e : log.events()) {
    if (e.pcr != 0) continue;
    if (e.type == ev::kSCrtmVersion && !bios.contains("scrtm")) bios["scrtm"] = Sha256Of(log, e);
    if (e.type == ev::kEfiPlatformFirmwareBlob || e.type == ev::kEfiPlatformFirmwareBlob2) {
      blobs.push_back(Sha256Of(log, e));
    }
  }
  if (!bios.contains("scrtm")) notes.push_back("scrtm: no EV_S_CRTM_VERSION on PCR 0");
  if (blobs.empty()) notes.push_back("platform_firmware: no EV_EFI_PLATFORM_FIRMWARE_BLOB(2) on PCR 0");
  bios["platform_firmware"] = std::move(blobs);

  // pk, kek, db, dbx: the last measurement of each (create_mb_policy keeps the last).
  ordered_json keys = {{"pk", ordered_json::array()}, {"kek", ordered_json::array()},
                       {"db", ordered_json::array()}, {"dbx", ordered_json::array()}};
  ordered_json vendor_db = ordered_json::array();
  for (const Event& e : log.events()) {
    if (e.type != ev::kEfiVariableDriverConfig && e.type != ev::kEfiVariableAuthority) continue;
    auto v = VariableOf(log, e);
    if (!v) continue;
    const std::string name = Lower(v->name);
    if (e.type == ev::kEfiVariableDriverConfig && keys.contains(name)) {
      std::string problem;
      keys[name] = SignatureKeys(v->data, problem);
      if (!problem.empty()) notes.push_back(name + ": " + problem);
    } else if (e.type == ev::kEfiVariableAuthority && name == "vendor_db" && v->data.size() >= 16) {
      // An authority event holds one EFI_SIGNATURE_DATA: the owner, then the certificate.
      vendor_db.push_back({{"SignatureOwner", GuidText(v->data.first(16))},
                           {"SignatureData", Hex0x(v->data.subspan(16))}});
    }
  }
  for (const char* name : {"pk", "kek", "db", "dbx"}) {
    if (keys[name].empty()) notes.push_back(std::string(name) + ": not measured (or empty) in the log");
  }

  // mokdig, mokxdig: shim's EV_IPL "MokList" / "MokListX".
  ordered_json mokdig = ordered_json::array(), mokxdig = ordered_json::array();
  for (const Event& e : log.events()) {
    if (e.type != ev::kIpl) continue;
    const std::string s = EventString(log, e);
    if (s == "MokList") mokdig.push_back(Sha256Of(log, e));
    if (s == "MokListX") mokxdig.push_back(Sha256Of(log, e));
  }
  if (mokdig.empty()) notes.push_back("mokdig: no EV_IPL \"MokList\" (shim measures it into PCR 14)");

  // kernels: the boot applications loaded from disk are shim, GRUB and,
  // with Secure Boot (shim_lock verifies it), the kernel.
  std::vector<const Event*> apps;
  for (const Event& e : log.events()) {
    if (e.type == ev::kEfiBootServicesApplication && !LoadedFromFirmwareVolume(log.Data(e))) apps.push_back(&e);
  }
  ordered_json kernel = ordered_json::object();
  const bool app_count_ok = has_secureboot ? (apps.size() == 3 || apps.size() == 4) : apps.size() == 2;
  bool apps_have_sha256 = true;
  for (const Event* e : apps) apps_have_sha256 &= log.DigestFor(*e, sha256).has_value();
  if (!app_count_ok) {
    notes.push_back("kernels: " + std::to_string(apps.size()) + " boot applications from disk, not the " +
                    (has_secureboot ? "3 or 4 of shim, GRUB and a kernel" : "2 of shim and GRUB") +
                    " Keylime expects: no kernels entry");
  } else if (!apps_have_sha256) {
    notes.push_back("kernels: a boot application has no sha256 digest: no kernels entry");
  } else {
    if (has_secureboot) kernel["kernel_authcode_sha256"] = Hex0x(*log.DigestFor(*apps[2], sha256));
    kernel["shim_authcode_sha256"] = Hex0x(*log.DigestFor(*apps[0], sha256));
    kernel["grub_authcode_sha256"] = Hex0x(*log.DigestFor(*apps[1], sha256));
    auto first_ipl = [&](uint32_t pcr, auto matches) -> const Event* {
      for (const Event& e : log.events()) {
        if (e.type == ev::kIpl && e.pcr == pcr && matches(EventString(log, e))) return &e;
      }
      return nullptr;
    };
    auto with_sha256 = [&](const char* key, const Event* e, const char* missing) {
      auto d = e ? log.DigestFor(*e, sha256) : std::nullopt;
      if (d) {
        kernel[key] = Hex0x(*d);
      } else {
        notes.push_back(std::string("kernels: ") + key + ": " + missing);
      }
    };
    with_sha256("initrd_plain_sha256",
                first_ipl(9, [](const std::string& s) { return Contains(s, "initrd") || Contains(s, "initramfs"); }),
                "no EV_IPL naming an initrd on PCR 9");
    if (!has_secureboot) {
      with_sha256("vmlinuz_plain_sha256", first_ipl(9, [](const std::string& s) { return Contains(s, "vmlinuz"); }),
                  "no EV_IPL naming vmlinuz on PCR 9");
    }
    constexpr std::string_view kPrefix = "kernel_cmdline: ";
    if (const Event* e = first_ipl(8, [](const std::string& s) { return Contains(s, "kernel_cmdline"); })) {
      const std::string s = EventString(log, *e);
      kernel["kernel_cmdline"] = RegexEscape(s.size() > kPrefix.size() ? std::string_view(s).substr(kPrefix.size()) : "");
    } else {
      notes.push_back("kernels: kernel_cmdline: no EV_IPL \"kernel_cmdline: …\" on PCR 8");
    }
  }

  auto& j = out.json;
  j["has_secureboot"] = has_secureboot;
  j["scrtm_and_bios"] = ordered_json::array({std::move(bios)});
  for (const char* name : {"pk", "kek", "db", "dbx"}) j[name] = std::move(keys[name]);
  j["vendor_db"] = std::move(vendor_db);
  j["mokdig"] = std::move(mokdig);
  j["mokxdig"] = std::move(mokxdig);
  if (!kernel.empty()) j["kernels"] = ordered_json::array({std::move(kernel)});
  return out;
}

Result<ordered_json> TpmPolicy(const PcrValues& golden, uint32_t pcrs, bool with_mask) {
  if (pcrs & kTpmPolicyRefused) {
    return Status::Parse("Keylime refuses PCR 10 (IMA) and PCR 16 (its data PCR) in a tpm_policy");
  }
  ordered_json policy = ordered_json::object();
  for (int i = 0; i < kPcrCount; ++i) {
    if (!(pcrs & (1u << i))) continue;
    ordered_json values = ordered_json::array();
    for (const auto& [bank, values_of_bank] : golden) {  // std::map: TPM_ALG_ID order
      if (!values_of_bank[i].empty()) values.push_back(ToHex(values_of_bank[i]));
    }
    if (values.empty()) return Status::Parse("no golden value for PCR " + std::to_string(i) + " in any bank");
    policy[std::to_string(i)] = std::move(values);
  }
  if (with_mask) {
    char mask[16];
    std::snprintf(mask, sizeof(mask), "0x%x", pcrs);
    policy["mask"] = mask;
  }
  return policy;
}

ordered_json GoldenPcrsJson(const PcrValues& golden, const ordered_json& source) {
  ordered_json banks = ordered_json::object();
  for (const auto& [bank, values] : golden) {
    ordered_json pcrs = ordered_json::object();
    for (int i = 0; i < kPcrCount; ++i) {
      if (!values[i].empty()) pcrs[std::to_string(i)] = ToHex(values[i]);
    }
    banks[HashAlgName(bank)] = std::move(pcrs);
  }
  return {{"format", "tpmlab golden PCRs"}, {"version", 1}, {"source", source}, {"pcrs", std::move(banks)}};
}

}  // namespace tpmlab::keylime
