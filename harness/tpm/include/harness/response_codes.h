// The TPM 2.0 response codes the harness acts on, by their TPM_RC_ names
// (TPM 2.0 Part 2, 6.6), so code reads rc::kInitialize rather than 0x100.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "drivers/status.h"

namespace tpmlab::rc {

inline constexpr uint32_t kSuccess = 0x000;
inline constexpr uint32_t kInitialize = 0x100;  // no Startup since _TPM_Init
inline constexpr uint32_t kFailure = 0x101;     // the TPM is in failure mode
inline constexpr uint32_t kDisabled = 0x120;
inline constexpr uint32_t kValue = 0x084;       // format one: + parameter/handle number
inline constexpr uint32_t kHierarchy = 0x085;
inline constexpr uint32_t kHandle = 0x08B;
inline constexpr uint32_t kAuthFail = 0x08E;
inline constexpr uint32_t kBadAuth = 0x0A2;
inline constexpr uint32_t kYielded = 0x908;     // warnings: try again
inline constexpr uint32_t kTesting = 0x90A;
inline constexpr uint32_t kLockout = 0x921;
inline constexpr uint32_t kRetry = 0x922;
inline constexpr uint32_t kNvUnavailable = 0x923;
inline constexpr uint32_t kPcrChanged = 0x928;

}  // namespace tpmlab::rc

namespace tpmlab {

// Whether `s` is the TPM answering with the format-zero code `code` (a
// warning or a version-1 error), whatever layer tpm2-tss put above it.
inline bool IsTpmResponse(const Status& s, uint32_t code) {
  return s.layer() == Layer::kTpm && (s.tpm_rc() & 0xFFF) == code;
}

// The code a TPM_RC_ name stands for, for every name TpmResponseCodeName
// gives ("TPM_RC_DISABLED" is 0x120, "TPM_RC_HIERARCHY" 0x085); none otherwise.
std::optional<uint32_t> TpmResponseCodeFromName(std::string_view name);

}  // namespace tpmlab
