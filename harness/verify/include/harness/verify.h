// The verifier: judges a snapshot as vCenter, Keylime and go-attestation
// would, and speaks in alarms. Every alarm has a stable code, a severity, a
// message (vSphere's own wording where one exists) and its evidence. Checks
// that need what is missing (no log, no enrollment, no earlier quote) are
// listed as not run — never counted as passed.
#pragma once

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/enrollment.h"
#include "harness/snapshot.h"

namespace tpmlab {

enum class Severity { kInfo, kWarning, kError };
const char* SeverityName(Severity severity);

// Alarm codes (stable: reports and scenario expectations name them).
namespace alarm {
inline constexpr const char* kTpmUnreachable = "TPM_UNREACHABLE";
inline constexpr const char* kQuoteSignatureInvalid = "QUOTE_SIGNATURE_INVALID";
inline constexpr const char* kQuoteNonceMismatch = "QUOTE_NONCE_MISMATCH";
inline constexpr const char* kQuotePcrDigestMismatch = "QUOTE_PCR_DIGEST_MISMATCH";
inline constexpr const char* kQuoteMalformed = "QUOTE_MALFORMED";
inline constexpr const char* kQuoteMissing = "QUOTE_MISSING";
inline constexpr const char* kPcrReplayMismatch = "PCR_REPLAY_MISMATCH";
inline constexpr const char* kEventlogMalformed = "EVENTLOG_MALFORMED";
inline constexpr const char* kEventDigestMismatch = "EVENT_DIGEST_MISMATCH";
inline constexpr const char* kUnknownEventType = "UNKNOWN_EVENT_TYPE";
inline constexpr const char* kSha256BankMissing = "SHA256_BANK_MISSING";
inline constexpr const char* kSecureBootDisabled = "SECURE_BOOT_DISABLED";
inline constexpr const char* kEkMissing = "EK_MISSING";
inline constexpr const char* kEkCertMissing = "EK_CERT_MISSING";
// The EK certificate does not parse, certifies another key than the EK, or
// does not chain to a configured manufacturer root.
inline constexpr const char* kEkCertInvalid = "EK_CERT_INVALID";
inline constexpr const char* kEkChanged = "EK_CHANGED";
inline constexpr const char* kAkUnknown = "AK_UNKNOWN";
inline constexpr const char* kCounterRollback = "COUNTER_ROLLBACK";
inline constexpr const char* kClockNotSafe = "CLOCK_NOT_SAFE";
inline constexpr const char* kClockNotMonotonic = "CLOCK_NOT_MONOTONIC";
inline constexpr const char* kClockSkew = "CLOCK_SKEW";
inline constexpr const char* kTpmFirmwareChanged = "TPM_FIRMWARE_CHANGED";
inline constexpr const char* kHierarchyDisabled = "HIERARCHY_DISABLED";
inline constexpr const char* kPcrPolicyMismatch = "PCR_POLICY_MISMATCH";
}  // namespace alarm

// Every code, in a fixed order (documentation, tests).
const std::vector<std::string>& AllAlarmCodes();

struct Alarm {
  std::string code;
  Severity severity = Severity::kError;
  std::string message;
  // bank, pcr, event, expected, actual, detail: whatever applies.
  std::map<std::string, std::string> evidence;
};

struct Verdict {
  std::vector<Alarm> alarms;
  // "EK_CHANGED: no enrollment" — checks that could not run, and why.
  std::vector<std::string> not_run;

  bool Has(const std::string& code) const;
  size_t Count(const std::string& code) const;
};

struct VerifyOptions {
  // CLOCK_SKEW: how far the TPM clock may drift from wall time between two
  // quotes of one power session: a fixed slack plus a share of the interval.
  std::chrono::milliseconds clock_skew_slack{1000};
  double clock_skew_ratio = 0.01;
  // EK_CERT_INVALID: the manufacturer roots and intermediates (DER) an EK
  // certificate must chain to (LoadEkRoots). None: the chain is not checked,
  // and not_run says so.
  std::vector<Bytes> ek_roots;
  // Judge the PCRs read as if a verified quote covered them: a prediction of
  // what a verifier would raise on evidence built from event logs alone
  // (tpmlab reproduce), never for evidence from a TPM.
  bool trust_unquoted_pcrs = false;
};

/// Judges `now`. `previous` is the last snapshot of the same DUT (for the
/// counter and clock checks); `enrollment` what was enrolled. Either may be null.
Verdict Verify(const Snapshot& now, const Snapshot* previous, const Enrollment* enrollment,
               const VerifyOptions& options = {});

/// The alarm for a TPM that could not be reached (no answer, a transport
/// error, failure mode): vSphere's "connection cannot be established".
Alarm TpmUnreachable(const Status& error);

// A verifier finding is one per PCR per bank (Keylime's invalid_pcr_N), each
// with that PCR's expected and actual values as evidence; an *alarm* as a
// user counts and reads them is one code raised at one step (vCenter raises
// one attestation alarm however many PCRs differ). These two give that view.

/// Each code once, in the order first raised.
std::vector<std::string> DistinctAlarmCodes(const std::vector<Alarm>& alarms);

/// One alarm's code with what its findings name, compactly:
/// "PCR_POLICY_MISMATCH: PCR 0,2,4,7 (sha1, sha256)", "CLOCK_NOT_SAFE: reset 4
/// clock 81234", "COUNTER_ROLLBACK: reset 3 restart 0 clock 900 -> reset 0
/// restart 0 clock 950"; `alarms` may hold several findings of it.
std::string DescribeAlarm(const std::string& code, const std::vector<Alarm>& alarms);

/// Every code raised, each described once, joined by "; "; "none" when none.
std::string DescribeAlarms(const std::vector<Alarm>& alarms);

nlohmann::json AlarmToJson(const Alarm& alarm);
/// An alarm as AlarmToJson wrote it (a stored step's); missing fields stay empty.
Alarm AlarmFromJson(const nlohmann::json& json);
nlohmann::json VerdictToJson(const Verdict& verdict);

}  // namespace tpmlab
