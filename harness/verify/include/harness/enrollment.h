// Enrollment: what a verifier stores when a DUT is added (as vCenter does
// when a host joins): its EK (public key and certificate), its AK, its TPM
// firmware version, and a golden reference — the PCRs and event log of a
// known-good boot.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "harness/snapshot.h"

namespace tpmlab {

struct Enrollment {
  std::string dut;
  std::string enrolled_at;
  Bytes ek_name;
  Bytes ek_public_der;
  std::optional<Bytes> ek_certificate;
  Bytes ak_name;
  Bytes ak_public_der;
  // The AK's qualified name (what its quotes name as qualifiedSigner); empty
  // in files of an older tpmlab, when that check is listed as not run.
  Bytes ak_qualified_name;
  // The quote the verifier asks this DUT for (bank, PCRs, signing hash), as
  // the enrolling snapshot was quoted; absent in files of an older tpmlab.
  std::optional<QuoteRequest> quote_request;
  uint64_t firmware_version = 0;  // from the enrolling quote's signed firmwareVersion
  std::vector<HashAlg> banks;
  PcrValues golden_pcrs;
  std::optional<Bytes> golden_eventlog;
};

/// Enrolls a DUT from a known-good snapshot.
Enrollment EnrollFromSnapshot(const Snapshot& snapshot, const std::string& dut);

nlohmann::json EnrollmentToJson(const Enrollment& enrollment);

/// Reads what EnrollmentToJson wrote; `where` names the source in errors.
/// Of a run's enrollment.json (a history) it reads the latest enrollment.
Result<Enrollment> EnrollmentFromJson(const nlohmann::json& json, const std::string& where);

/// One enrollment and the step of the run that made it (-1: not known, as in
/// a file `tpmlab enroll` wrote).
struct EnrollmentRecord {
  int step = -1;
  Enrollment enrollment;
};

/// Which run made an enrollment history, so a verifier picks the enrollment
/// in force at a step only for that run's own steps.
struct EnrollmentRun {
  int64_t run_id = 0;
  std::string database;  // absolute path
};

/// A run's enrollment.json: the latest enrollment at top level (what a
/// single-enrollment reader reads), its "step", the run that made it, and
/// every enrollment in order under "enrollments" [{"step": N, ...}].
nlohmann::json EnrollmentHistoryToJson(const std::vector<EnrollmentRecord>& history, const EnrollmentRun& run);

/// Reads either shape: a single enrollment (one record, step -1) or a
/// history. `run` is set when the file names the run that made it.
struct EnrollmentHistory {
  std::vector<EnrollmentRecord> records;
  std::optional<EnrollmentRun> run;
};
Result<EnrollmentHistory> EnrollmentHistoryFromJson(const nlohmann::json& json, const std::string& where);

/// The enrollment in force when step `step` ran: the latest made at an
/// earlier step (a record of unknown step counts as made before the run).
/// Null when the run had not enrolled yet.
const EnrollmentRecord* EnrollmentInForceAt(const std::vector<EnrollmentRecord>& history, int step);

}  // namespace tpmlab
