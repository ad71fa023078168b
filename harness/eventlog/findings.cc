#include "harness/findings.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <iterator>
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
// it; none when the digest covers something the log does not (a PE image,
// a firmware region, a file grub read). `in` keeps the candidates in their
// documented order (in[0] is the data itself, which a mismatch message
// hashes); `order` is the order to try them in, the likeliest first.
struct DigestInputs {
  ByteView in[4];
  uint8_t order[4] = {0, 1, 2, 3};
  size_t n = 0;
};

// UEFI_VARIABLE_DATA's VariableData, framed as ParseUefiVariable frames it.
bool VariableDataOf(ByteView d, ByteView& value) {
  if (d.size() < 32) return false;
  uint64_t name_length = 0, data_length = 0;
  for (int i = 7; i >= 0; --i) {
    name_length = name_length << 8 | d[16 + i];
    data_length = data_length << 8 | d[24 + i];
  }
  const size_t left = d.size() - 32;
  if (name_length > left / 2) return false;
  const size_t after_name = left - 2 * static_cast<size_t>(name_length);
  if (data_length > after_name) return false;
  value = d.subspan(32 + 2 * static_cast<size_t>(name_length), static_cast<size_t>(data_length));
  return true;
}

DigestInputs InputsOf(const Event& e, ByteView data) {
  DigestInputs r;
  switch (e.type) {
    case ev::kSeparator:
    case ev::kAction:
    case ev::kEfiAction:
    case ev::kSCrtmVersion:
    case ev::kEfiVariableDriverConfig:
    case ev::kEfiGptEvent:
      r.in[r.n++] = data;
      return r;
    case ev::kEfiVariableBoot:
    case ev::kEfiVariableBoot2: {
      // The PFP says H(UEFI_VARIABLE_DATA); edk2 and many firmwares hash only VariableData.
      r.in[r.n++] = data;
      if (ByteView value; VariableDataOf(data, value)) r.in[r.n++] = value;
      return r;
    }
    case ev::kIpl: {
      // PCR 9 (files grub and sd-boot read) and 14 (shim's MOK lists) hash
      // what the log does not carry. PCR 8 and 12 hold command lines:
      // grub logs "grub_cmd: <cmd>\0" or "kernel_cmdline: <line>\0" and
      // hashes what follows the first space, with or without the NUL;
      // sd-boot hashes the whole data. Accept any of these.
      if (e.pcr != 8 && e.pcr != 12) return r;
      r.in[r.n++] = data;
      if (data.empty() || data.back() != 0) return r;
      r.in[r.n++] = data.first(data.size() - 1);
      auto space = std::find(data.begin(), data.end(), uint8_t{' '});
      if (space != data.end()) {
        ByteView rest = data.subspan(static_cast<size_t>(space - data.begin()) + 1);
        r.in[r.n++] = rest;
        r.in[r.n++] = rest.first(rest.size() - 1);
        // grub's form first (what nearly every PCR 8 event is), then sd-boot's.
        static constexpr uint8_t kGrubFirst[4] = {3, 0, 1, 2};
        std::copy(std::begin(kGrubFirst), std::end(kGrubFirst), r.order);
      }
      return r;
    }
    default:
      return r;
  }
}

// Hashes for the digest checks: each algorithm fetched from the provider
// once (tpmlab::Hash fetches it again for every input) and given its own
// EVP_MD_CTX, reused for every hash of that algorithm. One context per
// algorithm, not one for all: re-initialising a context with another
// EVP_MD takes a reference on it and drops one on the last, atomics on the
// same method objects the replay's threads use, which halved the speed of
// both when `tpmlab eventlog replay` ran the checks beside the replay.
class Hasher {
 public:
  Hasher() = default;
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  ~Hasher() {
    for (Slot& s : slots_) {
      EVP_MD_CTX_free(s.ctx);
      EVP_MD_free(s.md);
    }
  }

  struct Slot {
    EVP_MD* md = nullptr;
    EVP_MD_CTX* ctx = nullptr;
    bool fetched = false;
  };

  // `alg`'s implementation and context, or nullptr when this OpenSSL cannot
  // compute it (then that bank is not checked).
  Slot* For(HashAlg alg) {
    Slot& s = slots_[Index(alg)];
    if (!s.fetched) {
      s.fetched = true;
      s.md = EVP_MD_fetch(nullptr, OpenSslDigestName(alg), nullptr);
      if (s.md != nullptr) s.ctx = EVP_MD_CTX_new();
    }
    return s.md != nullptr && s.ctx != nullptr ? &s : nullptr;
  }

  enum class Outcome { kMatch, kDiffer, kFailed };
  // Whether `in` hashes to `logged`; kFailed when OpenSSL could not hash.
  static Outcome Compare(Slot& s, ByteView in, ByteView logged) {
    uint8_t out[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (!Digest(s, in, out, len)) return Outcome::kFailed;
    return Equal(ByteView(out, len), logged) ? Outcome::kMatch : Outcome::kDiffer;
  }

  // The digest of `in`, empty when OpenSSL could not hash it.
  static Bytes Of(Slot& s, ByteView in) {
    uint8_t out[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (!Digest(s, in, out, len)) return {};
    return Bytes(out, out + len);
  }

 private:
  static size_t Index(HashAlg alg) {
    switch (alg) {
      case HashAlg::kSha1: return 0;
      case HashAlg::kSha256: return 1;
      case HashAlg::kSha384: return 2;
      case HashAlg::kSha512: return 3;
      case HashAlg::kSm3_256: return 4;
    }
    return 0;
  }
  static bool Digest(Slot& s, ByteView in, uint8_t* out, unsigned& len) {
    return EVP_DigestInit_ex2(s.ctx, s.md, nullptr) == 1 && EVP_DigestUpdate(s.ctx, in.data(), in.size()) == 1 &&
           EVP_DigestFinal_ex(s.ctx, out, &len) == 1;
  }

  std::array<Slot, 5> slots_{};
};

// A digest matches when any candidate input hashes to it; a bank OpenSSL
// cannot compute (SM3 in some builds) is not checked. The first bank
// searches the candidates in `order`; the one that matched (the same input
// in practice for every bank) is tried first on the others, which search
// the rest only when it does not match there.
void CheckDigests(const EventLog& log, size_t index, const Event& e, Hasher& hasher, std::vector<Finding>& out) {
  const DigestInputs inputs = InputsOf(e, log.Data(e));
  if (inputs.n == 0) return;
  int winner = -1;  // the input that matched some bank
  std::string banks, detail;
  for (uint32_t k = 0; k < e.digest_count; ++k) {
    const auto& d = log.DigestAt(e, k);
    auto alg = HashAlgFromId(d.alg);
    if (!alg) continue;
    Hasher::Slot* h = hasher.For(*alg);
    if (h == nullptr) continue;  // not checked
    const ByteView logged = log.DigestBytes(d);
    Hasher::Outcome r = Hasher::Outcome::kDiffer;
    if (winner >= 0) r = Hasher::Compare(*h, inputs.in[winner], logged);
    for (size_t t = 0; t < inputs.n && r == Hasher::Outcome::kDiffer; ++t) {
      const int j = inputs.order[t];
      if (j == winner) continue;
      r = Hasher::Compare(*h, inputs.in[j], logged);
      if (r == Hasher::Outcome::kMatch && winner < 0) winner = j;
    }
    if (r != Hasher::Outcome::kDiffer) continue;  // a match, or a hash OpenSSL could not do: not checked
    // The failing banks in log order; the first one's logged digest against
    // the hash of the data itself.
    banks += (banks.empty() ? "" : ", ") + std::string(HashAlgName(*alg));
    if (detail.empty()) {
      detail = std::string(HashAlgName(*alg)) + " logged " + ToHex(logged).substr(0, 16) +
               "..., the data hashes to " + ToHex(Hasher::Of(*h, inputs.in[0])).substr(0, 16) + "...";
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

constexpr size_t kNone = static_cast<size_t>(-1);

// IsKnownEventType, remembered for the types TCG numbers (0x00-0x1F and
// 0x80000000-0x800000FF): it builds the type's name on every call.
class KnownTypes {
 public:
  bool operator()(uint32_t type) {
    int8_t* slot = nullptr;
    if (type < low_.size()) {
      slot = &low_[type];
    } else if (type - ev::kEfiEventBase < efi_.size()) {
      slot = &efi_[type - ev::kEfiEventBase];
    } else {
      return IsKnownEventType(type);
    }
    if (*slot < 0) *slot = IsKnownEventType(type) ? 1 : 0;
    return *slot != 0;
  }

 private:
  std::array<int8_t, 0x20> low_ = Unset<0x20>();
  std::array<int8_t, 0x100> efi_ = Unset<0x100>();
  template <size_t N>
  static std::array<int8_t, N> Unset() {
    std::array<int8_t, N> a;
    a.fill(-1);
    return a;
  }
};

}  // namespace

std::vector<Finding> CheckEventLog(const EventLog& log) {
  std::vector<Finding> out;
  std::map<uint32_t, size_t> separator_of;  // PCR -> its first separator
  std::array<size_t, 8> pcr_separator;      // the same for PCR 0-7, looked up on every event
  pcr_separator.fill(kNone);
  std::optional<size_t> crtm_version;
  bool boot_application = false, exit_boot_services = false;
  static constexpr uint8_t kZeros[4] = {};
  Hasher hasher;
  KnownTypes known;

  const auto& events = log.events();
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    const ByteView data = log.Data(e);

    if (!known(e.type)) {
      out.push_back(Make("UNKNOWN_EVENT_TYPE", Where(i, e) + ": the TCG tables do not name this event type", i, e));
    }
    CheckDigests(log, i, e, hasher, out);
    if (EventDataUndecodable(e.type, data)) {  // decoded in full only for its message
      DecodedEvent d = DecodeEventData(e.type, data);
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
        if (e.pcr < pcr_separator.size()) pcr_separator[e.pcr] = i;
      }
      if (!Equal(data, kZeros)) {
        out.push_back(Make("SEPARATOR_VALUE",
                           Where(i, e) + ": separator data is " + ToHex(data.first(std::min<size_t>(data.size(), 16))) +
                               ", not 00000000: " + SeparatorNote(data),
                           i, e));
      }
    } else if (e.type != ev::kNoAction && e.pcr < 8 && pcr_separator[e.pcr] != kNone &&
               !AllowedAfterSeparator(e.pcr, e.type)) {
      out.push_back(Make("EVENT_AFTER_SEPARATOR",
                         Where(i, e) + ": measured after PCR" + std::to_string(e.pcr) + "'s separator (event " +
                             std::to_string(pcr_separator[e.pcr]) + "), where firmware should have stopped",
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
