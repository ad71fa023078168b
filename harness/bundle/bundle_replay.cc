#include "harness/bundle_replay.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>

#include "harness/bundle.h"
#include "harness/scenario_yaml.h"
#include "harness/yaml_reader.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A member name from run.json or bundle.json: relative, and never above the bundle.
bool InsideBundle(const std::string& name) {
  const fs::path p(name);
  if (name.empty() || p.is_absolute()) return false;
  return std::none_of(p.begin(), p.end(), [](const fs::path& c) { return c == ".."; });
}

// `file` as a member name of the bundle at `root` ("inputs/s.yaml"), or
// empty when it lies outside.
std::string MemberName(const fs::path& root, const fs::path& file) {
  const std::string rel = file.lexically_normal().lexically_relative(root).generic_string();
  return InsideBundle(rel) ? rel : "";
}

Status NotCarried(const std::string& name, const std::string& named_in, const std::string& why) {
  return Status::Parse("firmware model '" + name + "' named in " + named_in + ": " + why);
}

// Bundles from a tpmlab that did not record its model references: the model
// beside the file naming it, inside the bundle, as that tpmlab looked.
Result<fs::path> ResolveInside(const fs::path& root, const std::string& name, const fs::path& named_in) {
  const std::string from = MemberName(root, named_in);
  if (fs::path(name).is_absolute()) {
    return NotCarried(name, from, "a path outside the bundle, and the bundle records no copy of it (written by an "
                                  "older tpmlab: bundle the run again)");
  }
  const fs::path dir = named_in.parent_path();
  std::vector<fs::path> candidates;
  if (name.find('/') != std::string::npos || name.ends_with(".yaml")) {
    candidates.push_back(dir / name);
  } else {
    candidates = {dir / "firmware" / (name + ".yaml"), dir / (name + ".yaml")};
  }
  std::string looked;
  std::error_code ec;
  for (const auto& c : candidates) {
    const std::string member = MemberName(root, c);
    if (member.empty()) return NotCarried(name, from, "a path outside the bundle");
    if (fs::is_regular_file(c, ec)) return c.lexically_normal();
    looked += (looked.empty() ? "" : ", ") + member;
  }
  return NotCarried(name, from, "not in the bundle (looked for " + looked + ")");
}

std::string Movement(uint64_t then, uint64_t now) {
  if (now == then) return "same";
  if (now == 0) return "reset";
  return now > then ? "up" : "down";
}

// Distinct alarm codes of a step, sorted.
std::vector<std::string> AlarmCodes(const json& step) {
  std::set<std::string> codes;
  for (const auto& a : step.value("alarms", json::array())) {
    if (a.is_object()) codes.insert(a.value("code", ""));
  }
  return {codes.begin(), codes.end()};
}

std::string ActionOf(const json& step) {
  std::string action = step.value("action", "");
  if (step.contains("kind") && step["kind"].is_string()) action += " " + step["kind"].get<std::string>();
  return action;
}

// How each counter moved since the run's previous snapshot, and safe, per step.
struct Counters {
  std::string reset_count, restart_count, safe;
};

std::map<int, Counters> CounterBehaviour(const json& steps) {
  std::map<int, Counters> out;
  std::optional<json> previous;
  for (const auto& s : steps) {
    if (!s.is_object()) continue;
    const json snapshot = s.value("snapshot", json());
    if (!snapshot.is_object() || !snapshot.contains("clock") || !snapshot["clock"].is_object()) continue;
    const json& clock = snapshot["clock"];
    Counters c;
    c.safe = clock.value("safe", false) ? "YES" : "NO";
    if (previous) {
      c.reset_count = Movement((*previous).value("reset_count", uint64_t{0}), clock.value("reset_count", uint64_t{0}));
      c.restart_count =
          Movement((*previous).value("restart_count", uint64_t{0}), clock.value("restart_count", uint64_t{0}));
    }
    out[s.value("index", -1)] = c;
    previous = clock;
  }
  return out;
}

constexpr const char* kClockNotSafeCode = "CLOCK_NOT_SAFE";

// A step after which the TPM may run with its clock not yet saved: an
// unorderly power cycle, a fault (a kill, a cut), a rollback to saved NV, an
// emulator that died.
bool MayLeaveClockUnsaved(const json& step) {
  const std::string kind = step.contains("kind") && step["kind"].is_string() ? step["kind"].get<std::string>() : "";
  const std::string action = step.value("action", "");
  return kind == "power-loss" || kind == "hard-loss" || action == "fault" || action == "rollback" ||
         step.value("status", "") == "error";
}

std::string Short(const std::string& digest) { return digest.size() > 8 ? digest.substr(0, 8) + "…" : digest; }

void CompareSnapshots(const json& a, const json& b, std::vector<std::string>& out) {
  const bool has_a = a.is_object(), has_b = b.is_object();
  if (has_a != has_b) {
    out.push_back(std::string("snapshot only in the ") + (has_a ? "recorded run" : "replay"));
    return;
  }
  if (!has_a) return;
  // PCRs: each PCR that differs, with the banks it differs in.
  const json pa = a.value("pcrs", json::object()), pb = b.value("pcrs", json::object());
  std::set<std::string> banks;
  for (const auto& [bank, v] : pa.items()) banks.insert(bank);
  for (const auto& [bank, v] : pb.items()) banks.insert(bank);
  std::map<int, std::vector<std::string>> differing;
  for (const auto& bank : banks) {
    if (!pa.contains(bank) || !pb.contains(bank)) {
      out.push_back(bank + " bank only in the " + (pa.contains(bank) ? "recorded run" : "replay"));
      continue;
    }
    std::set<std::string> indices;
    for (const auto& [i, v] : pa[bank].items()) indices.insert(i);
    for (const auto& [i, v] : pb[bank].items()) indices.insert(i);
    for (const auto& i : indices) {
      if (pa[bank].value(i, json()) == pb[bank].value(i, json())) continue;
      const bool number = !i.empty() && i.size() < 4 && std::all_of(i.begin(), i.end(), ::isdigit);
      differing[number ? std::stoi(i) : -1].push_back(bank);
    }
  }
  for (const auto& [pcr, in_banks] : differing) {
    std::string list;
    for (const auto& bank : in_banks) list += (list.empty() ? "" : ", ") + bank;
    out.push_back((pcr < 0 ? std::string("a PCR entry") : "PCR" + std::to_string(pcr)) + " differs (" + list + ")");
  }
  // The event log, by its digest.
  const json la = a.value("eventlog", json()), lb = b.value("eventlog", json());
  if (la.is_object() != lb.is_object()) {
    out.push_back(std::string("event log only in the ") + (la.is_object() ? "recorded run" : "replay"));
  } else if (la.is_object() && la.value("sha256", "") != lb.value("sha256", "")) {
    out.push_back("event log differs (sha256 " + Short(la.value("sha256", "")) + " recorded, " +
                  Short(lb.value("sha256", "")) + " replayed; " + std::to_string(la.value("events", 0)) + " / " +
                  std::to_string(lb.value("events", 0)) + " events)");
  }
}

}  // namespace

ModelResolver BundledModels(const fs::path& unpacked, const json& inputs) {
  const fs::path root = fs::absolute(unpacked).lexically_normal();
  if (!inputs.is_object() || !inputs.contains("models") || !inputs["models"].is_array()) {
    return [root](const std::string& name, const fs::path& named_in) {
      return ResolveInside(root, name, fs::absolute(named_in));
    };
  }
  // (file naming it, name) -> the copy it resolved to.
  auto table = std::make_shared<std::map<std::pair<std::string, std::string>, std::string>>();
  for (const auto& m : inputs["models"]) {
    if (!m.is_object()) continue;
    (*table)[{m.value("named_in", ""), m.value("name", "")}] = m.value("file", "");
  }
  return [root, table](const std::string& name, const fs::path& named_in) -> Result<fs::path> {
    const std::string from = MemberName(root, fs::absolute(named_in));
    const auto it = table->find({from, name});
    if (it == table->end()) {
      return NotCarried(name, from.empty() ? named_in.string() : from,
                        "the recorded run did not load it, so the bundle carries no copy");
    }
    if (!InsideBundle(it->second)) return NotCarried(name, from, "run.json names '" + it->second + "' for it, outside the bundle");
    const fs::path file = root / it->second;
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) return NotCarried(name, from, "its copy " + it->second + " is not in the bundle");
    return file;
  };
}

Result<ReplayPlan> PlanReplay(const fs::path& unpacked) {
  TRY_ASSIGN(json manifest, ReadBundleManifest(unpacked));
  ReplayPlan plan;
  std::ifstream in(unpacked / "run.json");
  plan.recorded = json::parse(in, nullptr, false);
  if (plan.recorded.is_discarded() || !plan.recorded.is_object() || !plan.recorded.contains("steps") ||
      !plan.recorded["steps"].is_array()) {
    return Status::Parse("member 'run.json' is not a tpmlab run.json");
  }
  const json inputs = plan.recorded.value("inputs", json::object());
  const std::string scenario_file = manifest.value("scenario_file", "");
  if (scenario_file.empty()) return Status::Parse("bundle.json names no scenario");
  if (!InsideBundle(scenario_file)) return Status::Parse("bundle.json names '" + scenario_file + "', outside the bundle");
  const fs::path scenario_path = fs::absolute(unpacked).lexically_normal() / scenario_file;
  auto text = YamlReader::ReadText(scenario_path, Layer::kParse);
  if (!text.ok()) return Status::Parse("member '" + scenario_file + "': " + text.status().message());
  auto scenario = LoadScenarioText(*text, scenario_path.string(), BundledModels(unpacked, inputs));
  if (!scenario.ok()) return Status::Parse("member '" + scenario_file + "': " + scenario.status().message());
  plan.scenario = std::move(*scenario);
  if (inputs.contains("cycles") && inputs["cycles"].is_number_integer()) {  // tpmlab run --cycles N
    Status s = OverrideCycles(plan.scenario, inputs["cycles"].get<int>());
    if (!s.ok()) return Status::Parse("member 'run.json': cycles: " + s.message());
  }
  plan.recorded_steps = static_cast<int>(plan.recorded["steps"].size());
  const json seed = plan.recorded.contains("seed") ? plan.recorded["seed"] : manifest.value("seed", json());
  plan.seed = seed.is_number_unsigned() ? seed.get<uint64_t>() : plan.scenario.seed;
  const std::string initial_state = manifest.value("initial_state", "");
  if (!initial_state.empty()) {
    if (!InsideBundle(initial_state)) return Status::Parse("bundle.json names '" + initial_state + "', outside the bundle");
    plan.initial_state = unpacked / initial_state;
  }
  return plan;
}

std::vector<StepComparison> CompareRunSteps(const json& recorded, const json& replayed) {
  std::map<int, const json*> before, after;
  for (const auto& s : recorded) {
    if (s.is_object()) before[s.value("index", -1)] = &s;
  }
  for (const auto& s : replayed) {
    if (s.is_object()) after[s.value("index", -1)] = &s;
  }
  const auto counters_before = CounterBehaviour(recorded);
  const auto counters_after = CounterBehaviour(replayed);
  std::set<int> indices;
  for (const auto& [i, s] : before) indices.insert(i);
  for (const auto& [i, s] : after) indices.insert(i);

  std::vector<StepComparison> out;
  bool clock_may_be_unsaved = false;  // since an unorderly power loss in either run
  for (int i : indices) {
    StepComparison c;
    c.index = i;
    const auto b = before.find(i);
    const auto a = after.find(i);
    const json& any = b != before.end() ? *b->second : *a->second;
    c.action = any.value("action", "");
    if (any.contains("kind") && any["kind"].is_string()) c.kind = any["kind"].get<std::string>();
    if (b != before.end()) c.recorded_alarms = AlarmCodes(*b->second);
    if (a != after.end()) c.replayed_alarms = AlarmCodes(*a->second);
    if (b == before.end() || a == after.end()) {
      c.differences.push_back(std::string("only in the ") + (b != before.end() ? "recorded run" : "replay"));
      out.push_back(std::move(c));
      continue;
    }
    const json& rec = *b->second;
    const json& rep = *a->second;
    if (MayLeaveClockUnsaved(rec) || MayLeaveClockUnsaved(rep)) clock_may_be_unsaved = true;
    // safe (and CLOCK_NOT_SAFE) after a power loss says when libtpms last
    // saved its clock (every 4096 ms), which no replay repeats: noted, not a
    // difference, as each run's own check judges it.
    auto differ = [&](const std::string& what, const std::string& x, const std::string& y, bool timing = false) {
      if (x != y) (timing ? c.timing : c.differences).push_back(what + ": recorded " + x + ", replayed " + y);
    };
    differ("action", ActionOf(rec), ActionOf(rep));
    differ("status", rec.value("status", "?"), rep.value("status", "?"));
    std::string delta, timing_delta;
    for (const auto& code : *c.recorded_alarms) {
      if (std::binary_search(c.replayed_alarms->begin(), c.replayed_alarms->end(), code)) continue;
      (clock_may_be_unsaved && code == kClockNotSafeCode ? timing_delta : delta) += " -" + code;
    }
    for (const auto& code : *c.replayed_alarms) {
      if (std::binary_search(c.recorded_alarms->begin(), c.recorded_alarms->end(), code)) continue;
      (clock_may_be_unsaved && code == kClockNotSafeCode ? timing_delta : delta) += " +" + code;
    }
    if (!delta.empty()) c.differences.push_back("alarms:" + delta);
    if (!timing_delta.empty()) c.timing.push_back("alarms:" + timing_delta);
    CompareSnapshots(rec.value("snapshot", json()), rep.value("snapshot", json()), c.differences);
    const auto cb = counters_before.find(i);
    const auto ca = counters_after.find(i);
    if (cb != counters_before.end() && ca != counters_after.end()) {
      if (!cb->second.reset_count.empty() && !ca->second.reset_count.empty()) {
        differ("reset_count", cb->second.reset_count, ca->second.reset_count);
      }
      if (!cb->second.restart_count.empty() && !ca->second.restart_count.empty()) {
        differ("restart_count", cb->second.restart_count, ca->second.restart_count);
      }
      differ("safe", cb->second.safe, ca->second.safe, clock_may_be_unsaved);
    }
    out.push_back(std::move(c));
  }
  return out;
}

json ComparisonToJson(const std::vector<StepComparison>& steps) {
  json out = json::array();
  for (const auto& s : steps) {
    json row = {{"index", s.index},
                {"action", s.action},
                {"same", s.same()},
                {"recorded", s.recorded_alarms ? json(*s.recorded_alarms) : json(nullptr)},
                {"replayed", s.replayed_alarms ? json(*s.replayed_alarms) : json(nullptr)},
                {"differs", s.differences}};
    if (!s.timing.empty()) row["timing"] = s.timing;
    if (!s.kind.empty()) row["kind"] = s.kind;
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace tpmlab
