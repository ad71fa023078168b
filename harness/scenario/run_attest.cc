// Step family: what a verifier sees — snapshots judged as a verifier would,
// with the event log attached; enrollment; the troubleshooting checklist.
#include "harness/doctor.h"
#include "harness/drift.h"
#include "harness/replay.h"
#include "harness/run_files.h"
#include "harness/verify.h"
#include "run.h"

namespace tpmlab {

namespace fs = std::filesystem;
using nlohmann::json;

Status Run::Snap(StepResult& r) {
  SnapshotOptions o;
  o.ak_type = scenario_.platform.ak;
  TRY_ASSIGN(Snapshot s, TakeSnapshot(dut_.tpm(), o));
  // A quote is expected whenever the TPM can make one; when it cannot (no
  // AK: a disabled hierarchy), the verifier's alarms say so.
  if (s.quote_check.parsed || s.ak_error.empty()) r.checks.push_back(CheckQuote(s));
  if (HasEventLog()) r.checks.push_back(AttachEventLog(s));
  // Judge it as a verifier would, against the enrollment and the last quote.
  Verdict verdict = Verify(s, last_ ? &*last_ : nullptr, enrollment_ ? &*enrollment_ : nullptr);
  r.alarms = std::move(verdict.alarms);
  r.not_run = std::move(verdict.not_run);
  // And explain what moved since the last boot and since the golden one.
  if (last_) r.drift = DriftToJson(DiffSnapshots(*last_, s));
  if (golden_) r.golden_drift = DriftToJson(DiffSnapshots(*golden_, s));
  before_last_ = std::move(last_);
  last_ = s;
  last_step_with_snapshot_ = r.index;
  if (reference_) {
    auto identity = CheckIdentity(*reference_, s);
    r.checks.insert(r.checks.end(), identity.begin(), identity.end());
  } else {
    reference_ = s;
  }
  r.snapshot = std::move(s);
  return Status::Ok();
}

// vCenter adding a host: the latest snapshot becomes the enrolled identity
// and golden reference.
Status Run::Enroll(StepResult& r) {
  if (!last_) return Status::Error(Layer::kScenario, "enroll needs a snapshot first (a boot or snapshot step)");
  enrollment_ = EnrollFromSnapshot(*last_, dut_.name());
  golden_ = last_;
  // A re-enrollment accepts the identity the TPM has now.
  reference_ = last_;
  TRY(store_.RecordEnrollment(run_id_, r.index, *enrollment_));
  // Every enrollment of the run, each with its step: verifying an earlier
  // step needs the enrollment in force then, not the latest.
  enrollments_.push_back({r.index, *enrollment_});
  const fs::path file = options_.out_dir / "enrollment.json";
  const EnrollmentRun run{run_id_, DatabaseReference(options_.database)};
  TRY(WriteFileAtomically(file, EnrollmentHistoryToJson(enrollments_, run).dump(2) + "\n"));
  r.checks.push_back({"enrolled", true, "EK " + ToHex(enrollment_->ek_name) + ", AK " +
                                            ToHex(enrollment_->ak_name) + "; golden reference: the snapshot of step " +
                                            std::to_string(last_step_with_snapshot_) + " (" + file.string() + ")"});
  return Status::Ok();
}

// The troubleshooting checklist, each item a check (a warning passes).
Status Run::Doctor(StepResult& r) {
  DoctorOptions o;
  o.snapshot.ak_type = scenario_.platform.ak;
  if (auto log = CurrentEventLog(); log.ok()) {
    o.eventlog = WriteEventLog(*log);
  } else {
    o.eventlog_missing_reason = log.status().message();
  }
  if (enrollment_) o.enrollment = *enrollment_;
  const auto items = RunDoctor(dut_.tpm(), o);
  for (const auto& item : items) {
    r.checks.push_back({"doctor " + item.id, item.status != DoctorStatus::kFail,
                        std::string(DoctorStatusName(item.status)) + ": " + item.detail +
                            (item.advice.empty() || item.status == DoctorStatus::kOk ? "" : " (" + item.advice + ")")});
  }
  r.detail["doctor"] = DoctorToJson(items);
  return Status::Ok();
}

// The log the OS would read now, and whether it replays to the PCRs read.
Check Run::AttachEventLog(Snapshot& s) {
  auto read = CurrentEventLog();
  if (!read.ok()) return {"eventlog_replay", false, read.status().ToString()};
  const EventLog& log = *read;
  s.eventlog = WriteEventLog(log);
  s.eventlog_events = log.size();
  auto replay = ReplayEventLog(log);
  if (!replay.ok()) return {"eventlog_replay", false, replay.status().ToString()};
  s.replay_differs = CompareReplay(*replay, s.pcrs);
  std::string detail;
  for (const auto& [bank, values] : replay->pcrs) {
    if (s.pcrs.count(bank)) s.replay_banks.push_back(bank);
  }
  for (const auto& [bank, pcrs] : s.replay_differs) {
    detail += std::string(detail.empty() ? "" : "; ") + HashAlgName(bank) + " PCRs";
    for (int p : pcrs) detail += " " + std::to_string(p);
  }
  const bool matches = s.replay_differs.empty();
  // A mismatch is the verifier's finding (PCR_REPLAY_MISMATCH); the check
  // records it without failing the step, like any other alarm.
  return {"eventlog_replay", true,
          matches ? "the log's " + std::to_string(log.size()) + " events replay to the PCRs read in every bank"
                  : "replay differs: " + detail};
}
}  // namespace tpmlab
