// Step family: expectations. An expect step judges the step before it: the
// alarms raised (or not, and why a check did not run), PCRs, counters, a
// refusal's response code, a step error.
#include <algorithm>
#include <set>

#include "run.h"

namespace tpmlab {

namespace {

// Whether a TPM response code is the one expected: equal, or the same
// format-1 error with a different parameter/handle number.
bool SameResponseCode(uint32_t actual, uint32_t expected) {
  if (actual == expected) return true;
  return (actual & 0x80) != 0 && (actual & 0xBF) == expected;
}

// The codes raised, each once (findings of one code on several PCRs are one alarm).
std::string Codes(const std::vector<Alarm>& alarms) {
  std::string out;
  for (const auto& code : DistinctAlarmCodes(alarms)) out += std::string(out.empty() ? "" : ", ") + code;
  return out.empty() ? "none" : out;
}

// Why the check that raises `code` did not run at a step ("" when it ran):
// its not_run entry is "CODE: why".
std::string WhyNotRun(const StepResult& s, const std::string& code) {
  for (const auto& entry : s.not_run) {
    if (entry.rfind(code + ": ", 0) == 0) return entry.substr(code.size() + 2);
  }
  return "";
}

std::string Movement(uint64_t before, uint64_t after) {
  if (after == before) return "same";
  if (after == 0) return "reset";
  return after > before ? "up" : "down";
}

bool HasCode(const std::vector<std::string>& codes, const std::string& code) {
  return std::find(codes.begin(), codes.end(), code) != codes.end();
}

}  // namespace

Status Run::Expect(const ExpectStep& e, const SourceLocation& where, StepResult& r) {
  if (judged_ < 0) {
    r.checks.push_back({"expect", false, "there is no step before this expect to judge"});
    result_.expectations.push_back({r.index, where.ToString(), "expect", false, "no step before it"});
    return Status::Ok();
  }
  const StepResult& s = *judged_step_;
  std::vector<Check> checks;
  std::set<std::string> raised;
  for (const auto& a : s.alarms) raised.insert(a.code);
  // A code not raised because its check could not run says so: "not
  // raised" would read as the verifier having looked and found nothing.
  auto not_raised = [&](const std::string& code) {
    const std::string why = WhyNotRun(s, code);
    return why.empty() ? code + " was not raised" : code + " was not raised: its check did not run (why: " + why + ")";
  };
  for (const auto& code : e.alarms) {
    checks.push_back({"alarm " + code, raised.count(code) > 0,
                      raised.count(code) ? "raised" : not_raised(code) + " (raised: " + Codes(s.alarms) + ")"});
  }
  if (!e.one_of.empty()) {
    std::string named;
    bool any = false;
    for (const auto& code : e.one_of) {
      any = any || raised.count(code) > 0;
      named += std::string(named.empty() ? "" : ", ") + code;
    }
    std::string not_run;
    for (const auto& code : e.one_of) {
      if (!WhyNotRun(s, code).empty()) not_run += "; " + not_raised(code);
    }
    checks.push_back({"one of " + named, any,
                      any ? "raised: " + Codes(s.alarms) : "none raised (raised: " + Codes(s.alarms) + ")" + not_run});
  }
  for (const auto& code : e.absent) {
    // Passes as a verifier would see it, but says when nothing was looked at.
    checks.push_back({"no alarm " + code, raised.count(code) == 0, raised.count(code) ? "raised" : not_raised(code)});
  }
  if (!e.others_allowed) {
    for (const auto& code : raised) {
      if (HasCode(e.alarms, code) || HasCode(e.one_of, code) || HasCode(e.allow, code) || HasCode(e.absent, code)) {
        continue;
      }
      // A step expected to fail raises the alarm its failure is.
      if (e.error && *e.error && code == alarm::kTpmUnreachable) continue;
      if (HasCode(e.allow_after_power_loss, code)) {
        if (!power_lost_) checks.push_back({"alarm " + code, false, "raised before the run had any power loss"});
        continue;
      }
      checks.push_back({"no other alarm", false, "unexpected alarm " + code});
    }
  }
  ExpectPcrs(e, s, checks);
  ExpectCounters(e, s, checks);
  if (e.rc) {
    const bool ok = s.rc && SameResponseCode(*s.rc, *e.rc);
    checks.push_back({"refused with " + TpmResponseCodeName(*e.rc), ok,
                      s.rc ? "the TPM answered " + TpmResponseName(*s.rc) : "the step was not refused (" + s.status + ")"});
  }
  if (e.error) {
    const bool errored = s.status == "error";
    checks.push_back({*e.error ? "step failed" : "step completed", errored == *e.error,
                      errored ? s.error : "status " + s.status});
  }
  covered_alarms_ = covered_alarms_ || !e.others_allowed || !e.alarms.empty() || !e.one_of.empty();
  covered_error_ = covered_error_ || (e.error && *e.error) || HasCode(e.alarms, alarm::kTpmUnreachable);
  covered_refusal_ = covered_refusal_ || e.rc.has_value();

  std::string failed;
  for (const auto& c : checks) {
    if (!c.passed) failed += std::string(failed.empty() ? "" : "; ") + c.name + ": " + c.detail;
  }
  std::string name = "expect at " + where.ToString() + " on step " + std::to_string(s.index) + " (" + s.action + ")";
  if (!e.alarms.empty()) {
    std::string codes;
    for (const auto& c : e.alarms) codes += std::string(codes.empty() ? "" : ", ") + c;
    name += ": " + codes;
  }
  result_.expectations.push_back({s.index, where.ToString(), name, failed.empty(), failed.empty() ? "met" : failed});
  covered_checks_ = covered_checks_ || (failed.empty() && (!e.alarms.empty() || !e.one_of.empty()));
  if (failed.empty() && s.status == "error" && covered_error_) result_.expected_failures.insert(s.index);
  r.detail["judged_step"] = s.index;
  r.checks = std::move(checks);
  return Status::Ok();
}

void Run::ExpectPcrs(const ExpectStep& e, const StepResult& s, std::vector<Check>& checks) const {
  if (e.pcrs_drift.empty() && e.pcrs_steady.empty()) return;
  const std::optional<Snapshot>& reference = e.against_golden ? golden_ : before_last_;
  if (!s.snapshot || !reference) {
    checks.push_back({"pcrs", false, !s.snapshot ? "the step took no snapshot" : "no reference snapshot to compare with"});
    return;
  }
  const auto bank = *HashAlgFromName(e.pcr_bank);
  auto now = s.snapshot->pcrs.find(bank);
  auto then = reference->pcrs.find(bank);
  if (now == s.snapshot->pcrs.end() || then == reference->pcrs.end()) {
    checks.push_back({"pcrs", false, "the " + e.pcr_bank + " bank is not in both snapshots"});
    return;
  }
  const char* against = e.against_golden ? "golden" : "previous";
  for (int pcr : e.pcrs_drift) {
    const bool moved = now->second[pcr] != then->second[pcr];
    checks.push_back({"pcr " + std::to_string(pcr) + " drifts", moved,
                      std::string(moved ? "differs from " : "same as ") + against});
  }
  for (int pcr : e.pcrs_steady) {
    const bool moved = now->second[pcr] != then->second[pcr];
    checks.push_back({"pcr " + std::to_string(pcr) + " steady", !moved,
                      std::string(moved ? "differs from " : "same as ") + against});
  }
}

void Run::ExpectCounters(const ExpectStep& e, const StepResult& s, std::vector<Check>& checks) const {
  if (!e.reset_count && !e.restart_count && !e.safe) return;
  if (!s.snapshot || !s.snapshot->quote_check.parsed) {
    checks.push_back({"counters", false, "the step has no quoted clock"});
    return;
  }
  const ClockInfo& now = s.snapshot->clock();
  if (e.safe) {
    checks.push_back({"safe", now.safe == *e.safe, now.safe ? "safe = YES" : "safe = NO"});
  }
  if (!e.reset_count && !e.restart_count) return;
  if (!before_last_ || !before_last_->quote_check.parsed) {
    checks.push_back({"counters", false, "no earlier quoted clock to compare with"});
    return;
  }
  const ClockInfo& then = before_last_->clock();
  if (e.reset_count) {
    const std::string m = Movement(then.reset_count, now.reset_count);
    checks.push_back({"reset_count " + *e.reset_count, m == *e.reset_count,
                      std::to_string(then.reset_count) + " -> " + std::to_string(now.reset_count)});
  }
  if (e.restart_count) {
    const std::string m = Movement(then.restart_count, now.restart_count);
    checks.push_back({"restart_count " + *e.restart_count, m == *e.restart_count,
                      std::to_string(then.restart_count) + " -> " + std::to_string(now.restart_count)});
  }
}
}  // namespace tpmlab
