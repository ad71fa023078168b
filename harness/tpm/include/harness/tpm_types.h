// TPM vocabulary shared by the harness: hash banks, PCR values, clock info.
// Plain C++ types with no tpm2-tss in sight, so every layer may use them.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/bytes.h"

namespace tpmlab {

enum class HashAlg : uint16_t {
  kSha1 = 0x0004,
  kSha256 = 0x000B,
  kSha384 = 0x000C,
  kSha512 = 0x000D,
  kSm3_256 = 0x0012,
};

const char* HashAlgName(HashAlg alg);  // "sha256"
std::optional<HashAlg> HashAlgFromName(std::string_view name);
std::optional<HashAlg> HashAlgFromId(uint16_t id);
size_t HashSize(HashAlg alg);
// The name OpenSSL fetches the digest by ("SHA256"); fetch it once
// (EVP_MD_fetch) where many hashes follow.
const char* OpenSslDigestName(HashAlg alg);
// One-shot digest through OpenSSL; SM3 where the OpenSSL build has it.
Result<Bytes> Hash(HashAlg alg, ByteView data);

inline constexpr int kPcrCount = 24;
using PcrBank = std::array<Bytes, kPcrCount>;
using PcrValues = std::map<HashAlg, PcrBank>;

// The value every PCR holds right after Startup(CLEAR): zeros, except the
// D-RTM PCRs 17-22 which start at all ones; PCR0 carries the startup
// locality (00..03) unless an H-CRTM event measured into it.
Bytes PcrResetValue(HashAlg alg, int pcr, uint8_t startup_locality = 0);
// PCR_new = H(PCR_old || digest)
Bytes ExtendPcr(HashAlg alg, ByteView old_value, ByteView digest);

enum class StartupType { kClear, kState };
const char* StartupTypeName(StartupType type);

enum class KeyType { kRsa2048, kEccP256 };
const char* KeyTypeName(KeyType type);
std::optional<KeyType> KeyTypeFromName(std::string_view name);

enum class Hierarchy { kOwner, kEndorsement, kPlatform, kLockout };

// TPMS_CLOCK_INFO
struct ClockInfo {
  uint64_t clock_ms = 0;
  uint32_t reset_count = 0;
  uint32_t restart_count = 0;
  bool safe = false;
  bool operator==(const ClockInfo&) const = default;
};

// Handles the harness keeps its keys at (TCG provisioning guidance).
inline constexpr uint32_t kEkHandle = 0x81010001;   // RSA EK, as swtpm_setup leaves it
inline constexpr uint32_t kSrkHandle = 0x81000001;
inline constexpr uint32_t kAkHandle = 0x81010002;
// EK certificates in NV (TCG EK Credential Profile, low range): RSA 2048 and ECC NIST P-256.
inline constexpr uint32_t kEkCertRsaIndex = 0x01C00002;
inline constexpr uint32_t kEkCertEccIndex = 0x01C0000A;

// "TPM2_Quote" for 0x158; "TPM_CC_0x..." for codes not in the table.
std::string TpmCommandName(uint32_t command_code);
// 0x158 for "TPM2_Quote" or "Quote"; none for names not in the table.
std::optional<uint32_t> TpmCommandCodeFromName(std::string_view name);
// A response code's TPM_RC_ name: "TPM_RC_HIERARCHY" for 0x185 (a format-one
// code without its handle/parameter number); "TPM_RC_0x..." when unknown.
std::string TpmResponseCodeName(uint32_t response_code);
// The name with the code in hex and what a format-one code points at:
// "TPM_RC_HIERARCHY (0x185, handle 1)", "TPM_RC_DISABLED (0x120)".
std::string TpmResponseName(uint32_t response_code);
// TpmResponseName and what the code means: "TPM_RC_DISABLED (0x120): the
// command is disabled".
std::string TpmResponseText(uint32_t response_code);

}  // namespace tpmlab
