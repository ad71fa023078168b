// Reference values for verifiers, from one known-good boot: its PCRs and
// the event log that explains them.
//
// Keylime's forms follow keylime/keylime v7.14.3-7-g9b1f6e6a (9b1f6e6a,
// 2026-08-03): the measured-boot reference state that `keylime-policy create
// measured-boot` (keylime/policy/create_mb_policy.py) writes and the
// `example` policy (keylime/mba/elchecking/example.py) reads, and the PCR
// policy of `keylime_tenant --tpm_policy` (keylime/tpm/tpm_util.py
// readPolicy). Field names, "0x" digests and which events fill which field
// are Keylime's; a field whose events the log lacks is left empty or absent
// as create_mb_policy leaves it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/eventlog.h"

namespace tpmlab::keylime {

inline constexpr const char* kKeylimeRevision = "keylime/keylime v7.14.3-7-g9b1f6e6a (9b1f6e6a, 2026-08-03)";

// PCRs Keylime refuses in a tpm_policy: 10 (IMA) and 16 (its data PCR).
inline constexpr uint32_t kTpmPolicyRefused = (1u << 10) | (1u << 16);

struct MbRefstate {
  // In Keylime's key order: has_secureboot, scrtm_and_bios, pk, kek, db,
  // dbx, vendor_db, mokdig, mokxdig, kernels.
  nlohmann::ordered_json json;
  // What the log could not fill, one line each ("kernels: 2 boot
  // applications, not the 3 or 4 of shim, GRUB and a kernel").
  std::vector<std::string> notes;
};

/// The measured-boot reference state of a log. Fails (bad input) when the
/// log carries no sha256 digests: every Keylime digest is sha256.
Result<MbRefstate> MeasuredBootRefstate(const EventLog& log);

/// Keylime's PCR policy: for each PCR in `pcrs` (bit n = PCR n), the golden
/// value of every bank, lowercase hex, banks in TPM_ALG_ID order. With
/// `with_mask` it carries "mask": "0x…" as the verifier stores it (the
/// tenant computes that itself and refuses any key that is not a PCR).
/// PCRs in kTpmPolicyRefused are a bad-input error.
Result<nlohmann::ordered_json> TpmPolicy(const PcrValues& golden, uint32_t pcrs, bool with_mask);

/// Python's re.escape (3.7+): a backslash before each of ()[]{}?*+-|^$\.&~#
/// and whitespace, as create_mb_policy escapes the kernel command line.
std::string RegexEscape(std::string_view text);

/// tpmlab's golden PCRs: {"format": "tpmlab golden PCRs", "version": 1,
/// "source": …, "pcrs": {bank: {"0": hex, … "23": hex}}}, every bank
/// and every PCR (the "pcrs" part is what `tpmlab verify --pcrs` reads).
nlohmann::ordered_json GoldenPcrsJson(const PcrValues& golden, const nlohmann::ordered_json& source);

}  // namespace tpmlab::keylime
