// Doctor: a troubleshooting checklist for one TPM, in the order an engineer
// would walk it — is a TPM there, is it a TPM 2.0, is it enabled, is the
// SHA-256 bank on, is there an EK and its certificate, is the clock sane,
// does the event log replay, and what would a verifier say. Each item says
// what it found and, when it is not ok, what to do about it.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "harness/enrollment.h"
#include "harness/snapshot.h"

namespace tpmlab {

enum class DoctorStatus { kOk, kWarn, kFail, kSkipped };
const char* DoctorStatusName(DoctorStatus status);  // "ok", "warn", "fail", "skipped"

// Item ids (stable: scripts and scenario expectations name them).
namespace doctor {
inline constexpr const char* kTpmPresent = "tpm_present";
inline constexpr const char* kTpmVersion = "tpm_version";
inline constexpr const char* kHierarchies = "hierarchies_enabled";
inline constexpr const char* kSha256Bank = "sha256_bank";
inline constexpr const char* kEkPresent = "ek_present";
inline constexpr const char* kEkCertificate = "ek_certificate";
inline constexpr const char* kClock = "clock";
inline constexpr const char* kEventlog = "eventlog_replay";
inline constexpr const char* kAttestation = "attestation";
}  // namespace doctor

struct DoctorItem {
  std::string id;
  std::string title;
  DoctorStatus status = DoctorStatus::kSkipped;
  std::string detail;  // what was found; for a skipped item, why it did not run
  std::string advice;  // what to do, when the status is warn or fail
};

struct DoctorOptions {
  // The platform's TCG event log (binary_bios_measurements); without one the
  // replay check is skipped with `eventlog_missing_reason`.
  std::optional<Bytes> eventlog;
  std::string eventlog_missing_reason = "no event log given";
  // What the verifier enrolled for this TPM, if anything.
  std::optional<Enrollment> enrollment;
  SnapshotOptions snapshot;
  // Manufacturer roots and intermediates (DER, LoadEkRoots) the EK
  // certificate must chain to; none: the chain is not checked, and the
  // ek_certificate item says so.
  std::vector<Bytes> ek_roots;
};

/// Walks the checklist on a started TPM. Every item is always present, in the
/// order of the doctor:: ids; when the TPM does not answer TPM2_GetCapability
/// the first fails and the rest are skipped. Creates and persists the EK,
/// SRK and AK where they are missing (as a snapshot does).
std::vector<DoctorItem> RunDoctor(Tpm& tpm, const DoctorOptions& options);

/// The worst status of the items (skipped counts as ok).
DoctorStatus DoctorOverall(const std::vector<DoctorItem>& items);
/// False when the TPM could not be reached at all (tpm_present failed).
bool DoctorReachedTpm(const std::vector<DoctorItem>& items);
/// The item with `id`, or null.
const DoctorItem* FindDoctorItem(const std::vector<DoctorItem>& items, const std::string& id);

/// {"status": "fail", "items": [{"id", "title", "status", "detail", "advice"}, ...]}
nlohmann::json DoctorToJson(const std::vector<DoctorItem>& items);

}  // namespace tpmlab
