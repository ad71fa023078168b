// Two digests compared area by area, and a verdict line for each area.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "harness/compare.h"
#include "harness/tpm_types.h"

namespace tpmlab {
namespace {

using nlohmann::json;

std::string Fixed(double v, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, v);
  return text;
}

// What a drift cause means, in the words of a verdict line.
std::string CausePhrase(const std::string& code) {
  static const std::map<std::string, std::string> phrases = {
      {drift::kFirmwareBlob, "platform firmware changed"},
      {drift::kSCrtmVersion, "S-CRTM version changed"},
      {drift::kOptionRom, "option ROM changed"},
      {drift::kPlatformConfig, "platform configuration changed"},
      {drift::kSecureBootVariable, "Secure Boot variable changed"},
      {drift::kBootOrder, "boot order changed"},
      {drift::kBootLoader, "boot loader changed"},
      {drift::kKernel, "kernel changed"},
      {drift::kKernelCmdline, "kernel command line changed"},
      {drift::kOsBootModule, "OS boot module changed"},
      {drift::kStartupLocality, "startup locality changed"},
      {drift::kHcrtm, "H-CRTM event changed"},
      {drift::kEventChange, "a logged event changed"},
      {drift::kBankAllocation, "PCR banks allocated differently"},
      {drift::kOwnershipClear, "TPM cleared"},
      {drift::kEkChange, "EK changed"},
      {drift::kDifferentTpm, "another TPM"},
      {drift::kTpmFirmwareVersion, "TPM firmware version changed"},
      {drift::kPowerLoss, "power loss"},
      {drift::kUnexplainedPcrChange, "changed with no logged event"},
  };
  const auto it = phrases.find(code);
  return it == phrases.end() ? code : it->second;
}

json Header(const RunDigest& d) {
  return {{"label", d.label},
          {"source", d.location.source},
          {"database", DatabaseDisplayName(d.location.database)},
          {"run_id", d.run.id},
          {"scenario", d.run.info.scenario},
          {"seed", d.run.info.seed},
          {"dut", d.run.info.dut},
          {"status", d.run.status},
          {"firmware", d.run.firmware},
          {"steps", d.steps},
          {"power_cycles", d.run.power_cycles},
          {"tpmlab_version", d.run.info.tpmlab_version},
          {"started_at", d.run.info.started_at}};
}

PcrComparison ComparePcrs(const RunDigest& a, const RunDigest& b) {
  PcrComparison out;
  out.a_step = a.snapshot_step;
  out.b_step = b.snapshot_step;
  if (!a.snapshot || !b.snapshot) {
    out.why_not = std::string(!a.snapshot ? "A" : "B") + " took no snapshot";
    return out;
  }
  out.compared = true;
  for (HashAlg bank : a.snapshot->banks) {
    if (std::find(b.snapshot->banks.begin(), b.snapshot->banks.end(), bank) != b.snapshot->banks.end()) {
      out.banks.push_back(HashAlgName(bank));
    }
  }
  out.drift = DiffSnapshots(*a.snapshot, *b.snapshot);
  const json events = DriftToJson(out.drift)["events"];
  auto value = [](const PcrValues& values, HashAlg bank, int pcr) -> std::string {
    const auto it = values.find(bank);
    return it == values.end() || it->second[pcr].empty() ? "" : ToHex(it->second[pcr]);
  };
  for (const auto& [bank, pcrs] : out.drift.pcrs) {
    for (int pcr : pcrs) {
      PcrDifference d;
      d.bank = HashAlgName(bank);
      d.pcr = pcr;
      d.a = value(a.snapshot->pcrs, bank, pcr);
      d.b = value(b.snapshot->pcrs, bank, pcr);
      if (a.enrollment) d.a_golden = value(a.enrollment->golden_pcrs, bank, pcr);
      if (b.enrollment) d.b_golden = value(b.enrollment->golden_pcrs, bank, pcr);
      for (const json& e : events) {
        if (e.value("pcr", -1) == pcr) d.events.push_back(e);
      }
      for (const Cause& c : out.drift.causes) {
        if (c.pcr == pcr) d.causes.push_back(c);
      }
      out.differences.push_back(std::move(d));
    }
  }
  std::stable_sort(out.differences.begin(), out.differences.end(),
                   [](const PcrDifference& x, const PcrDifference& y) { return x.pcr < y.pcr; });
  return out;
}

AreaVerdict PcrVerdict(const PcrComparison& p) {
  if (!p.compared) return {"pcrs", "not compared", "PCRs: not compared (" + p.why_not + ")"};
  std::string tpm;  // what the TPMs' own state says (another chip, a clear)
  for (const Cause& c : p.drift.causes) {
    if (c.pcr < 0 && c.code != drift::kPowerLoss) tpm += (tpm.empty() ? "" : ", ") + CausePhrase(c.code);
  }
  std::string banks;
  for (const auto& bank : p.banks) banks += (banks.empty() ? "" : ", ") + bank;
  if (p.differences.empty()) {
    return {"pcrs", "same",
            "PCRs: same (" + banks + "; steps " + std::to_string(p.a_step) + " and " + std::to_string(p.b_step) + ")" +
                (tpm.empty() ? "" : "; TPM: " + tpm)};
  }
  // One entry per PCR index, with the banks it differs in and its causes.
  std::map<int, std::pair<std::vector<std::string>, std::vector<std::string>>> by_pcr;
  for (const auto& d : p.differences) {
    auto& [bank_names, phrases] = by_pcr[d.pcr];
    bank_names.push_back(d.bank);
    for (const Cause& c : d.causes) {
      const std::string phrase = CausePhrase(c.code);
      if (std::find(phrases.begin(), phrases.end(), phrase) == phrases.end()) phrases.push_back(phrase);
    }
  }
  std::string parts;
  int shown = 0;
  for (const auto& [pcr, what] : by_pcr) {
    if (++shown > 4) {
      parts += ", +" + std::to_string(by_pcr.size() - 4) + " more";
      break;
    }
    std::string bank_list, phrase_list;
    for (const auto& b : what.first) bank_list += (bank_list.empty() ? "" : ", ") + b;
    for (const auto& ph : what.second) phrase_list += (phrase_list.empty() ? "" : ", ") + ph;
    if (phrase_list.empty()) phrase_list = "no event log to explain it";
    parts += (parts.empty() ? "" : "; ") + ("PCR" + std::to_string(pcr) + " " + bank_list + ": " + phrase_list);
  }
  const size_t n = by_pcr.size();
  return {"pcrs", "differs",
          "PCRs: " + std::to_string(n) + (n == 1 ? " differs (" : " differ (") + parts + ")" +
              (tpm.empty() ? "" : "; TPM: " + tpm)};
}

std::vector<AlarmComparison> CompareAlarms(const RunDigest& a, const RunDigest& b) {
  std::map<std::string, AlarmComparison> by_code;
  for (const auto& [code, tally] : a.alarms) by_code[code].a = tally;
  for (const auto& [code, tally] : b.alarms) by_code[code].b = tally;
  std::vector<AlarmComparison> out;
  for (auto& [code, c] : by_code) {
    c.code = code;
    out.push_back(c);
  }
  return out;
}

std::string AlarmList(const std::vector<AlarmComparison>& alarms, bool a_side) {
  std::string text;
  for (const auto& c : alarms) {
    const AlarmTally& t = a_side ? *c.a : *c.b;
    text += (text.empty() ? "" : ", ") + c.code + " x" + std::to_string(t.steps) + " from step " +
            std::to_string(t.first_step);
  }
  return text;
}

AreaVerdict AlarmVerdict(const std::vector<AlarmComparison>& alarms) {
  std::vector<AlarmComparison> only_a, only_b, both;
  for (const auto& c : alarms) (c.a && c.b ? both : c.a ? only_a : only_b).push_back(c);
  std::string both_text;
  for (const auto& c : both) both_text += (both_text.empty() ? "" : ", ") + c.code;
  if (only_a.empty() && only_b.empty()) {
    return {"alarms", "same", "alarms: same (" + (both.empty() ? std::string("none in either") : "in both: " + both_text) + ")"};
  }
  std::string line = "alarms:";
  if (!only_b.empty()) line += " only in B: " + AlarmList(only_b, false) + ";";
  if (!only_a.empty()) line += " only in A: " + AlarmList(only_a, true) + ";";
  if (!both.empty()) line += " in both: " + both_text + ";";
  line.pop_back();
  if (!only_b.empty()) return {"alarms", "regression", line + ": REGRESSION"};
  return {"alarms", "improved", line + ": improved"};
}

std::string Rate(int n, int of) { return std::to_string(n) + "/" + std::to_string(of); }

// How B's counters behave unlike A's; regression when B breaks a rule A keeps.
std::vector<std::string> CompareCounters(const CounterBehaviour& a, const CounterBehaviour& b, bool& regressed) {
  std::vector<std::string> out;
  const std::pair<const char*, CounterTally CounterBehaviour::*> counters[] = {
      {"resetCount", &CounterBehaviour::reset_count},
      {"restartCount", &CounterBehaviour::restart_count},
      {"clock", &CounterBehaviour::clock}};
  for (const auto& [name, member] : counters) {
    const CounterTally& ta = a.*member;
    const CounterTally& tb = b.*member;
    if (ta.monotonic() == tb.monotonic()) continue;
    const CounterTally& fell = ta.monotonic() ? tb : ta;
    out.push_back(std::string(name) + " went back " + std::to_string(fell.decreases) + "x in " +
                  (ta.monotonic() ? "B" : "A") + " (first at step " + std::to_string(fell.first_decrease_step) +
                  "), never in " + (ta.monotonic() ? "A" : "B"));
    if (ta.monotonic()) regressed = true;
  }
  for (const auto& [kind, ka] : a.by_kind) {
    const auto it = b.by_kind.find(kind);
    if (it == b.by_kind.end() || ka.cycles == 0 || it->second.cycles == 0) continue;
    const CycleKindTally& kb = it->second;
    auto differs = [](int x, int of_x, int y, int of_y) {
      return std::abs(static_cast<double>(x) / of_x - static_cast<double>(y) / of_y) > 0.005;
    };
    const std::pair<const char*, int CycleKindTally::*> effects[] = {
        {"resetCount up", &CycleKindTally::reset_count_up},
        {"restartCount up", &CycleKindTally::restart_count_up},
        {"safe=NO", &CycleKindTally::safe_no}};
    for (const auto& [what, field] : effects) {
      if (differs(ka.*field, ka.cycles, kb.*field, kb.cycles)) {
        out.push_back(kind + ": " + what + " after " + Rate(ka.*field, ka.cycles) + " cycles in A, " +
                      Rate(kb.*field, kb.cycles) + " in B");
      }
    }
  }
  return out;
}

AreaVerdict CounterVerdict(const Comparison& c) {
  if (c.counters_a.snapshots == 0 || c.counters_b.snapshots == 0) {
    return {"counters", "not compared", std::string("counters: not compared (") +
                                            (c.counters_a.snapshots == 0 ? "A" : "B") + " has no verified quote)"};
  }
  if (c.counter_differences.empty()) {
    auto monotonic = [&](const CounterTally CounterBehaviour::*m) {
      return (c.counters_a.*m).monotonic() ? "monotonic" : "not monotonic in either";
    };
    return {"counters", "same",
            std::string("counters: same behaviour (resetCount ") + monotonic(&CounterBehaviour::reset_count) +
                ", clock " + monotonic(&CounterBehaviour::clock) + ", safe=NO " +
                Rate(c.counters_a.safe_no, c.counters_a.snapshots) + " vs " +
                Rate(c.counters_b.safe_no, c.counters_b.snapshots) + " snapshots)"};
  }
  std::string line = "counters: " + c.counter_differences.front();
  if (c.counter_differences.size() > 1) line += ", +" + std::to_string(c.counter_differences.size() - 1) + " more";
  return {"counters", c.counters_regressed ? "regression" : "differs",
          line + (c.counters_regressed ? ": REGRESSION" : "")};
}

LatencyFigures Figures(const LatencySketch& s) {
  return {s.count(), s.Quantile(0.50), s.Quantile(0.90), s.Quantile(0.99), s.max()};
}

std::vector<CommandLatency> CompareLatency(const RunDigest& a, const RunDigest& b, const CompareOptions& options) {
  std::map<std::string, CommandLatency> by_command;
  for (const auto& [name, s] : a.latency) by_command[name].a = Figures(s);
  for (const auto& [name, s] : b.latency) by_command[name].b = Figures(s);
  std::vector<CommandLatency> out;
  for (auto& entry : by_command) {
    // Not a structured binding: clang 14 cannot capture one in the lambda below.
    CommandLatency& c = entry.second;
    c.command = entry.first;
    if (c.a && c.b) {
      auto ratio = [](double x, double y) -> std::optional<double> {
        if (x <= 0) return std::nullopt;
        return y / x;
      };
      c.ratio_p50 = ratio(c.a->p50_us, c.b->p50_us);
      c.ratio_p90 = ratio(c.a->p90_us, c.b->p90_us);
      c.ratio_p99 = ratio(c.a->p99_us, c.b->p99_us);
      const bool enough = c.a->count >= 3 && c.b->count >= 3;
      const bool enough_for_p99 = c.a->count >= 100 && c.b->count >= 100;
      auto judge = [&](const char* which, const std::optional<double>& r, double av, double bv, bool allowed) {
        if (allowed && r && *r > options.threshold && bv - av >= options.min_delta_us) c.regressed.push_back(which);
      };
      judge("p50", c.ratio_p50, c.a->p50_us, c.b->p50_us, enough);
      judge("p90", c.ratio_p90, c.a->p90_us, c.b->p90_us, enough);
      judge("p99", c.ratio_p99, c.a->p99_us, c.b->p99_us, enough_for_p99);
    }
    out.push_back(std::move(c));
  }
  return out;
}

AreaVerdict LatencyVerdict(const std::vector<CommandLatency>& latency, const CompareOptions& options) {
  const std::string threshold = Fixed(options.threshold, 2) + "x";
  int compared = 0;
  // The commands that cost the most time first (a fast command twice as
  // slow matters less than a slow one 1.3 times as slow).
  std::vector<std::pair<double, std::string>> slower;
  for (const auto& c : latency) {
    if (!c.a || !c.b) continue;
    ++compared;
    if (c.regressed.empty()) continue;
    double worst_delta = 0, worst_ratio = 0;
    std::string which;
    for (const auto& q : c.regressed) {
      const double LatencyFigures::*field = q == "p50" ? &LatencyFigures::p50_us
                                            : q == "p90" ? &LatencyFigures::p90_us : &LatencyFigures::p99_us;
      const double delta = (*c.b).*field - (*c.a).*field;
      if (delta > worst_delta) worst_delta = delta, worst_ratio = (*c.b).*field / (*c.a).*field, which = q;
    }
    slower.push_back({worst_delta, c.command + " " + which + " " + Fixed(worst_ratio, 1) + "x slower (+" +
                                       Fixed(worst_delta / 1000, 1) + " ms)"});
  }
  if (compared == 0) return {"latency", "not compared", "latency: not compared (no command timed in both runs)"};
  if (slower.empty()) {
    return {"latency", "same", "latency: no command slower past " + threshold + " (" + std::to_string(compared) +
                                   " commands compared)"};
  }
  std::sort(slower.begin(), slower.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
  std::string line = "latency: ";
  for (size_t i = 0; i < slower.size() && i < 3; ++i) line += (i ? ", " : "") + slower[i].second;
  if (slower.size() > 3) line += ", +" + std::to_string(slower.size() - 3) + " more";
  return {"latency", "regression", line + " (threshold " + threshold + "): REGRESSION"};
}

AreaVerdict ExpectationVerdict(const Comparison& c) {
  auto side = [](const ExpectationTally& t) {
    return Rate(t.passed, t.passed + t.failed) + " passed";
  };
  std::string line = "expectations: A " + side(c.expectations_a) + ", B " + side(c.expectations_b);
  if (!c.failed_only_in_b.empty()) {
    return {"expectations", "regression",
            line + "; failing only in B: " + c.failed_only_in_b.front() +
                (c.failed_only_in_b.size() > 1 ? ", +" + std::to_string(c.failed_only_in_b.size() - 1) + " more" : "") +
                ": REGRESSION"};
  }
  if (c.expectations_a.failed > 0 && c.expectations_b.failed == 0) return {"expectations", "improved", line + ": improved"};
  return {"expectations", "same", line};
}

}  // namespace

bool Comparison::differs() const {
  return std::any_of(verdicts.begin(), verdicts.end(),
                     [](const AreaVerdict& v) { return v.status == "regression" || (v.area == "pcrs" && v.status == "differs"); });
}

Comparison CompareDigests(const RunDigest& a, const RunDigest& b, const CompareOptions& options) {
  Comparison c;
  c.options = options;
  c.a = Header(a);
  c.b = Header(b);
  c.pcrs = ComparePcrs(a, b);
  c.alarms = CompareAlarms(a, b);
  c.counters_a = a.counters;
  c.counters_b = b.counters;
  c.counter_differences = CompareCounters(a.counters, b.counters, c.counters_regressed);
  c.latency = CompareLatency(a, b, options);
  c.expectations_a = a.expectations;
  c.expectations_b = b.expectations;
  const std::set<std::string> failed_in_a(a.expectations.failed_keys.begin(), a.expectations.failed_keys.end());
  for (size_t i = 0; i < b.expectations.failed_keys.size(); ++i) {
    if (!failed_in_a.count(b.expectations.failed_keys[i])) c.failed_only_in_b.push_back(b.expectations.failed_names[i]);
  }
  c.verdicts = {PcrVerdict(c.pcrs), AlarmVerdict(c.alarms), CounterVerdict(c), LatencyVerdict(c.latency, options),
                ExpectationVerdict(c)};
  return c;
}

}  // namespace tpmlab
