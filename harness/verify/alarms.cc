// Alarms as users read and count them: the codes, severities, the one-line
// description of a code's findings, and their JSON. The judging itself is
// verify.cc.
#include "harness/verify.h"

#include <algorithm>
#include <cstdlib>
#include <set>

namespace tpmlab {

using nlohmann::json;

const char* SeverityName(Severity severity) {
  switch (severity) {
    case Severity::kInfo: return "info";
    case Severity::kWarning: return "warning";
    case Severity::kError: return "error";
  }
  return "error";
}

const std::vector<std::string>& AllAlarmCodes() {
  static const std::vector<std::string> kAll = {
      alarm::kTpmUnreachable, alarm::kQuoteSignatureInvalid, alarm::kQuoteNonceMismatch,
      alarm::kQuotePcrDigestMismatch, alarm::kQuoteMalformed, alarm::kQuoteMissing, alarm::kPcrReplayMismatch,
      alarm::kEventlogMalformed, alarm::kEventDigestMismatch, alarm::kUnknownEventType,
      alarm::kSha256BankMissing, alarm::kSecureBootDisabled, alarm::kEkMissing,
      alarm::kEkCertMissing, alarm::kEkCertInvalid, alarm::kEkChanged, alarm::kAkUnknown, alarm::kCounterRollback,
      alarm::kClockNotSafe, alarm::kClockNotMonotonic, alarm::kClockSkew,
      alarm::kTpmFirmwareChanged, alarm::kHierarchyDisabled, alarm::kPcrPolicyMismatch};
  return kAll;
}

bool Verdict::Has(const std::string& code) const { return Count(code) > 0; }

size_t Verdict::Count(const std::string& code) const {
  return static_cast<size_t>(
      std::count_if(alarms.begin(), alarms.end(), [&](const Alarm& a) { return a.code == code; }));
}

Alarm TpmUnreachable(const Status& error) {
  return {alarm::kTpmUnreachable, Severity::kError,
          "TPM 2.0 device detected but a connection cannot be established",
          {{"layer", LayerName(error.layer())}, {"detail", error.message()}}};
}

std::vector<std::string> DistinctAlarmCodes(const std::vector<Alarm>& alarms) {
  std::vector<std::string> codes;
  for (const auto& a : alarms) {
    if (std::find(codes.begin(), codes.end(), a.code) == codes.end()) codes.push_back(a.code);
  }
  return codes;
}

std::string DescribeAlarm(const std::string& code, const std::vector<Alarm>& alarms) {
  std::set<int> pcrs;
  std::vector<std::string> banks;
  std::string counters;
  for (const auto& a : alarms) {
    if (a.code != code) continue;
    const auto get = [&](const char* key) {
      auto it = a.evidence.find(key);
      return it == a.evidence.end() ? std::string() : it->second;
    };
    if (const std::string pcr = get("pcr"); !pcr.empty()) {
      pcrs.insert(std::atoi(pcr.c_str()));
      const std::string bank = get("bank");
      if (!bank.empty() && std::find(banks.begin(), banks.end(), bank) == banks.end()) banks.push_back(bank);
    } else if (counters.empty() && get("expected").rfind("reset ", 0) == 0) {
      // The counter alarms' evidence: "reset R restart S clock C" before and now.
      counters = get("expected") + " -> " + get("actual");
    } else if (counters.empty() && !get("reset_count").empty()) {
      counters = "reset " + get("reset_count") + " clock " + get("clock_ms");  // CLOCK_NOT_SAFE
    }
  }
  std::string out = code;
  if (!pcrs.empty()) {
    out += ": PCR ";
    bool first = true;
    for (int p : pcrs) {
      out += (first ? "" : ",") + std::to_string(p);
      first = false;
    }
    if (!banks.empty()) {
      out += " (";
      for (size_t i = 0; i < banks.size(); ++i) out += (i ? ", " : "") + banks[i];
      out += ")";
    }
  } else if (!counters.empty()) {
    out += ": " + counters;
  }
  return out;
}

std::string DescribeAlarms(const std::vector<Alarm>& alarms) {
  std::string out;
  for (const auto& code : DistinctAlarmCodes(alarms)) out += (out.empty() ? "" : "; ") + DescribeAlarm(code, alarms);
  return out.empty() ? "none" : out;
}

json AlarmToJson(const Alarm& a) {
  return {{"code", a.code}, {"severity", SeverityName(a.severity)}, {"message", a.message},
          {"evidence", a.evidence}};
}

Alarm AlarmFromJson(const json& j) {
  Alarm a;
  a.code = j.value("code", "");
  const std::string severity = j.value("severity", "error");
  a.severity = severity == "info" ? Severity::kInfo : severity == "warning" ? Severity::kWarning : Severity::kError;
  a.message = j.value("message", "");
  if (j.contains("evidence") && j["evidence"].is_object()) {
    for (const auto& [k, v] : j["evidence"].items()) a.evidence[k] = v.is_string() ? v.get<std::string>() : v.dump();
  }
  return a;
}

json VerdictToJson(const Verdict& v) {
  json alarms = json::array();
  for (const auto& a : v.alarms) alarms.push_back(AlarmToJson(a));
  return {{"alarms", alarms}, {"not_run", v.not_run}};
}

}  // namespace tpmlab
