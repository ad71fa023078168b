// TPM 2.0 response codes by their TPM_RC_ names (TPM 2.0 Part 2, 6.6), so a
// refusal reads "TPM_RC_HIERARCHY (0x185, handle 1)" rather than 389.
#include <tss2/tss2_rc.h>

#include <cstdio>
#include <map>

#include "harness/response_codes.h"
#include "harness/tpm_types.h"

namespace tpmlab {
namespace {

// Format-zero errors (RC_VER1 + n), format-zero warnings (RC_WARN + n) and
// format-one errors (RC_FMT1 + n), each by its number.
const std::map<uint32_t, const char*>& Version1Names() {
  static const std::map<uint32_t, const char*> kNames = {
      {0x00, "INITIALIZE"}, {0x01, "FAILURE"}, {0x03, "SEQUENCE"}, {0x0B, "PRIVATE"}, {0x19, "HMAC"},
      {0x20, "DISABLED"}, {0x21, "EXCLUSIVE"}, {0x24, "AUTH_TYPE"}, {0x25, "AUTH_MISSING"}, {0x26, "POLICY"},
      {0x27, "PCR"}, {0x28, "PCR_CHANGED"}, {0x2D, "UPGRADE"}, {0x2E, "TOO_MANY_CONTEXTS"},
      {0x2F, "AUTH_UNAVAILABLE"}, {0x30, "REBOOT"}, {0x31, "UNBALANCED"}, {0x42, "COMMAND_SIZE"},
      {0x43, "COMMAND_CODE"}, {0x44, "AUTHSIZE"}, {0x45, "AUTH_CONTEXT"}, {0x46, "NV_RANGE"}, {0x47, "NV_SIZE"},
      {0x48, "NV_LOCKED"}, {0x49, "NV_AUTHORIZATION"}, {0x4A, "NV_UNINITIALIZED"}, {0x4B, "NV_SPACE"},
      {0x4C, "NV_DEFINED"}, {0x50, "BAD_CONTEXT"}, {0x51, "CPHASH"}, {0x52, "PARENT"}, {0x53, "NEEDS_TEST"},
      {0x54, "NO_RESULT"}, {0x55, "SENSITIVE"}};
  return kNames;
}

const std::map<uint32_t, const char*>& WarningNames() {
  static const std::map<uint32_t, const char*> kNames = {
      {0x01, "CONTEXT_GAP"}, {0x02, "OBJECT_MEMORY"}, {0x03, "SESSION_MEMORY"}, {0x04, "MEMORY"},
      {0x05, "SESSION_HANDLES"}, {0x06, "OBJECT_HANDLES"}, {0x07, "LOCALITY"}, {0x08, "YIELDED"},
      {0x09, "CANCELED"}, {0x0A, "TESTING"}, {0x10, "REFERENCE_H0"}, {0x11, "REFERENCE_H1"},
      {0x12, "REFERENCE_H2"}, {0x13, "REFERENCE_H3"}, {0x14, "REFERENCE_H4"}, {0x15, "REFERENCE_H5"},
      {0x16, "REFERENCE_H6"}, {0x18, "REFERENCE_S0"}, {0x19, "REFERENCE_S1"}, {0x1A, "REFERENCE_S2"},
      {0x1B, "REFERENCE_S3"}, {0x1C, "REFERENCE_S4"}, {0x1D, "REFERENCE_S5"}, {0x1E, "REFERENCE_S6"},
      {0x20, "NV_RATE"}, {0x21, "LOCKOUT"}, {0x22, "RETRY"}, {0x23, "NV_UNAVAILABLE"}, {0x7F, "NOT_USED"}};
  return kNames;
}

const std::map<uint32_t, const char*>& Format1Names() {
  static const std::map<uint32_t, const char*> kNames = {
      {0x01, "ASYMMETRIC"}, {0x02, "ATTRIBUTES"}, {0x03, "HASH"}, {0x04, "VALUE"}, {0x05, "HIERARCHY"},
      {0x07, "KEY_SIZE"}, {0x08, "MGF"}, {0x09, "MODE"}, {0x0A, "TYPE"}, {0x0B, "HANDLE"}, {0x0C, "KDF"},
      {0x0D, "RANGE"}, {0x0E, "AUTH_FAIL"}, {0x0F, "NONCE"}, {0x10, "PP"}, {0x12, "SCHEME"}, {0x15, "SIZE"},
      {0x16, "SYMMETRIC"}, {0x17, "TAG"}, {0x18, "SELECTOR"}, {0x1A, "INSUFFICIENT"}, {0x1B, "SIGNATURE"},
      {0x1C, "KEY"}, {0x1D, "POLICY_FAIL"}, {0x1F, "INTEGRITY"}, {0x20, "TICKET"}, {0x21, "RESERVED_BITS"},
      {0x22, "BAD_AUTH"}, {0x23, "EXPIRED"}, {0x24, "POLICY_CC"}, {0x25, "BINDING"}, {0x26, "CURVE"},
      {0x27, "ECC_POINT"}};
  return kNames;
}

std::string Hex(uint32_t value) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%03x", value);
  return buf;
}

std::string Lookup(const std::map<uint32_t, const char*>& names, uint32_t number, uint32_t rc) {
  auto it = names.find(number);
  return it == names.end() ? "TPM_RC_" + Hex(rc) : std::string("TPM_RC_") + it->second;
}

}  // namespace

std::string TpmResponseCodeName(uint32_t rc) {
  const uint32_t tpm = rc & 0xFFFF;
  if (tpm == 0) return "TPM_RC_SUCCESS";
  if (tpm == 0x01E) return "TPM_RC_BAD_TAG";
  if (tpm & 0x080) return Lookup(Format1Names(), tpm & 0x3F, rc);  // format one
  if ((tpm & 0x900) == 0x900) return Lookup(WarningNames(), tpm & 0x7F, rc);
  if (tpm & 0x100) return Lookup(Version1Names(), tpm & 0x7F, rc);
  return "TPM_RC_" + Hex(rc);  // a TPM 1.2 or vendor code
}

std::string TpmResponseName(uint32_t rc) {
  std::string out = TpmResponseCodeName(rc) + " (" + Hex(rc);
  const uint32_t tpm = rc & 0xFFFF;
  if (tpm & 0x080) {
    // Format one says which parameter, handle or session was wrong.
    const uint32_t n = (tpm >> 8) & 0xF;
    if (tpm & 0x040) {
      out += ", parameter " + std::to_string(n);
    } else if (n >= 8) {
      out += ", session " + std::to_string(n - 8);
    } else if (n > 0) {
      out += ", handle " + std::to_string(n);
    }
  }
  return out + ")";
}

std::optional<uint32_t> TpmResponseCodeFromName(std::string_view name) {
  constexpr std::string_view kPrefix = "TPM_RC_";
  if (name.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  name.remove_prefix(kPrefix.size());
  if (name == "SUCCESS") return rc::kSuccess;
  if (name == "BAD_TAG") return 0x01E;
  // Each table's numbers sit above its format's base (RC_VER1, RC_WARN, RC_FMT1).
  for (const auto& [names, base] : {std::pair{&Version1Names(), 0x100u}, std::pair{&WarningNames(), 0x900u},
                                    std::pair{&Format1Names(), 0x080u}}) {
    for (const auto& [number, text] : *names) {
      if (name == text) return base + number;
    }
  }
  return std::nullopt;
}

std::string TpmResponseText(uint32_t rc) {
  // tpm2-tss words what each code means ("tpm:handle(1):hierarchy is not
  // enabled ..."): its last part follows the name.
  std::string decoded = Tss2_RC_Decode(rc);
  const size_t colon = decoded.rfind(':');
  if (colon != std::string::npos) decoded = decoded.substr(colon + 1);
  decoded.erase(0, decoded.find_first_not_of(' '));
  return TpmResponseName(rc) + ": " + decoded;
}

}  // namespace tpmlab
