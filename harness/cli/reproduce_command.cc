// tpmlab reproduce GOOD_LOG BAD_LOG: field evidence in, a reproduction out.
// Two event logs (a host before and after whatever raised the field's alarm)
// become two recorded firmware models and a scenario that boots on the good
// one, enrolls, updates to the bad one and verifies; the alarms and drifting
// PCRs it expects are what tpmlab's own verifier and drift code say of the
// two logs. Then it runs, on the embedded default unless --bench says.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include "exit_codes.h"
#include "harness/boot_source.h"
#include "harness/drift.h"
#include "harness/enrollment.h"
#include "harness/firmware_model.h"
#include "harness/replay.h"
#include "harness/runner.h"
#include "harness/verify.h"
#include "commands.h"

namespace tpmlab::cli {
namespace {

namespace fs = std::filesystem;

struct ReproduceArgs {
  std::string good, bad, out_dir, bench;
  bool no_run = false, quiet = false, progress = false;
};

// The alarms a verifier raises from firmware evidence (PCRs, the log and the
// banks it came with); the rest judge the TPM itself, which the field's and
// the bench's differ in.
const std::set<std::string> kFirmwareAlarms = {
    alarm::kPcrPolicyMismatch,  alarm::kSecureBootDisabled, alarm::kEventDigestMismatch,
    alarm::kUnknownEventType,   alarm::kSha256BankMissing,  alarm::kEventlogMalformed,
    alarm::kPcrReplayMismatch};

// One side of the evidence: the log as given, its recorded model, its replay.
struct Side {
  std::string role;  // "good", "bad"
  fs::path log;
  FirmwareModel model;
  EventLog events;
  Replay replay;
};

Result<Side> LoadSide(const std::string& role, const std::string& path) {
  Side side{role, path, {}, {}, {}};
  auto events = ReadEventLogFile(path);
  if (!events.ok()) return Status::Error(Layer::kScenario, path + ": " + events.status().message());
  side.events = std::move(*events);
  auto model = LoadFirmwareModel(path);
  if (!model.ok()) return Status::Error(Layer::kScenario, model.status().message());
  if (!model->recorded_log) return Status::Error(Layer::kScenario, path + ": not a binary event log");
  side.model = std::move(*model);
  auto replay = ReplayEventLog(side.events);
  if (!replay.ok()) return Status::Error(Layer::kScenario, path + ": " + replay.status().message());
  side.replay = std::move(*replay);
  return side;
}

// What TakeSnapshot would record on a TPM that booted with this log: the
// PCRs of its replay in `banks`, and the log as the DUT would write it.
Snapshot PredictedSnapshot(const Side& side, const std::vector<HashAlg>& banks) {
  Snapshot s;
  for (HashAlg bank : banks) {
    s.banks.push_back(bank);
    s.pcrs[bank] = side.replay.pcrs.at(bank);
  }
  auto written = RecordedBootLog(side.model, banks);
  s.eventlog = WriteEventLog(written.ok() ? *written : side.events);
  return s;
}

// What the field's verifier saw: the bad boot judged against the good one
// enrolled, with tpmlab's verifier, trusting the logs' replays as PCRs.
std::vector<std::string> ExpectedAlarms(const Snapshot& good, const Snapshot& bad) {
  const Enrollment enrollment = EnrollFromSnapshot(good, "field");
  VerifyOptions options;
  options.trust_unquoted_pcrs = true;
  std::vector<std::string> codes;
  for (const auto& code : DistinctAlarmCodes(Verify(bad, nullptr, &enrollment, options).alarms)) {
    if (kFirmwareAlarms.count(code)) codes.push_back(code);
  }
  return codes;
}

std::string List(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return "[" + out + "]";
}

std::string List(const std::vector<int>& items) {
  std::vector<std::string> text;
  for (int i : items) text.push_back(std::to_string(i));
  return List(text);
}

Status WriteText(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Status::Error(Layer::kEnvironment, file.string() + ": cannot write");
  return Status::Ok();
}

// "# ..." lines: YAML comments with no line breaks of the text's own.
std::string Comment(const std::string& text) {
  std::string out = "# ";
  for (char c : text) out += c == '\n' ? std::string("\n# ") : std::string(1, c);
  return out + "\n";
}

Status WriteModel(const fs::path& dir, const Side& side) {
  std::error_code ec;
  fs::copy_file(side.log, dir / (side.role + ".bin"), fs::copy_options::overwrite_existing, ec);
  if (ec) return Status::Error(Layer::kEnvironment, (dir / (side.role + ".bin")).string() + ": " + ec.message());
  std::string text = Comment("Written by tpmlab reproduce: the firmware that wrote " + side.log.string() +
                             ",\nreplayed from its own log (scenarios/firmware/README.md, recorded models).");
  text += "name: " + side.role + "\n";
  text += "description: \"recorded from " + side.log.filename().string() + "\"\n";
  text += "recorded: " + side.role + ".bin\n";
  return WriteText(dir / (side.role + ".yaml"), text);
}

struct Plan {
  std::vector<HashAlg> banks;
  HashAlg bank{};  // the one the pcrs expectation reads
  std::vector<std::string> alarms;
  std::vector<int> drift, steady;
};

Result<Plan> MakePlan(const Side& good, const Side& bad) {
  Plan plan;
  for (const std::string& name : *good.model.banks) {
    const auto& other = *bad.model.banks;
    if (std::find(other.begin(), other.end(), name) != other.end()) plan.banks.push_back(*HashAlgFromName(name));
  }
  if (plan.banks.empty()) {
    return Status::Error(Layer::kScenario, "the two logs have no digest bank in common (" + List(*good.model.banks) +
                                               " and " + List(*bad.model.banks) + "), so no TPM replays both");
  }
  const bool sha256 = std::find(plan.banks.begin(), plan.banks.end(), HashAlg::kSha256) != plan.banks.end();
  plan.bank = sha256 ? HashAlg::kSha256 : plan.banks.front();
  const Snapshot before = PredictedSnapshot(good, plan.banks);
  const Snapshot after = PredictedSnapshot(bad, plan.banks);
  plan.alarms = ExpectedAlarms(before, after);
  const Drift drift = DiffSnapshots(before, after);
  if (auto moved = drift.pcrs.find(plan.bank); moved != drift.pcrs.end()) plan.drift = moved->second;
  for (int pcr = 0; pcr < 16; ++pcr) {
    if (std::find(plan.drift.begin(), plan.drift.end(), pcr) == plan.drift.end()) plan.steady.push_back(pcr);
  }
  return plan;
}

std::string ScenarioText(const Side& good, const Side& bad, const Plan& plan) {
  std::vector<std::string> banks;
  for (HashAlg b : plan.banks) banks.push_back(HashAlgName(b));
  std::ostringstream y;
  y << Comment("Written by tpmlab reproduce from two field event logs:\n  good: " + good.log.string() +
               "\n  bad:  " + bad.log.string() +
               "\nThe expectations are what tpmlab's verifier and drift code say of the two logs.");
  y << "name: reproduce\n"
    << "description: \"" << good.log.filename().string() << " -> " << bad.log.filename().string()
    << ": the field's alarms on a bench\"\n"
    << "seed: 1\n"
    << "unexpected_alarms: report\n"
    << "platform:\n"
    << "  firmware: good.yaml\n"
    << "  banks: " << List(banks) << "\n"
    << "steps:\n"
    << "  - boot\n"
    << "  - enroll\n"
    << "  - firmware_update: {platform: bad.yaml}\n"
    << "  - power_cycle: reset\n"
    << "  - expect:\n";
  if (!plan.alarms.empty()) y << "      alarms: " << List(plan.alarms) << "\n";
  y << "      pcrs: {";
  if (!plan.drift.empty()) y << "drift: " << List(plan.drift) << ", ";
  y << "steady: " << List(plan.steady) << ", bank: " << HashAlgName(plan.bank) << ", against: golden}\n";
  return y.str();
}

// Each snapshot of the run against the replay of the log that booted it:
// the first is GOOD's boot, the last BAD's. False when one differs.
bool ComparePcrs(const RunResult& result, const Side& good, const Side& bad) {
  const Snapshot* first = nullptr;
  const Snapshot* last = nullptr;
  for (const auto& step : result.steps) {
    if (!step.snapshot) continue;
    if (first == nullptr) first = &*step.snapshot;
    last = &*step.snapshot;
  }
  if (first == nullptr || first == last) {
    std::cout << "reproduce: the run took no snapshot of both boots; nothing to compare\n";
    return false;
  }
  bool same = true;
  for (const auto& [snapshot, side] : {std::pair{first, &good}, std::pair{last, &bad}}) {
    const auto differ = CompareReplay(side->replay, snapshot->pcrs);
    std::cout << "reproduce: PCRs of the " << side->role << " boot "
              << (differ.empty() ? "equal" : "DIFFER from") << " the replay of " << side->log.string();
    for (const auto& [bank, pcrs] : differ) std::cout << " (" << HashAlgName(bank) << " PCR " << List(pcrs) << ")";
    std::cout << "\n";
    same = same && differ.empty();
  }
  std::cout << "Drift from the good boot to the bad one, event by event:\n";
  PrintDrift(DiffSnapshots(*first, *last));
  return same;
}

int Reproduce(const ReproduceArgs& a) {
  auto good = LoadSide("good", a.good);
  if (!good.ok()) {
    std::cerr << "tpmlab: GOOD_LOG " << good.status().message() << "\n";
    return kExitUsage;
  }
  auto bad = LoadSide("bad", a.bad);
  if (!bad.ok()) {
    std::cerr << "tpmlab: BAD_LOG " << bad.status().message() << "\n";
    return kExitUsage;
  }
  auto plan = MakePlan(*good, *bad);
  if (!plan.ok()) {
    std::cerr << "tpmlab: " << plan.status().message() << "\n";
    return kExitUsage;
  }
  const fs::path dir = a.out_dir.empty()
                           ? fs::path("reproduce-" + fs::path(a.good).stem().string() + "-" +
                                      fs::path(a.bad).stem().string())
                           : fs::path(a.out_dir);
  std::error_code ec;
  if (fs::exists(dir / "reproduce.yaml", ec)) {
    std::cerr << "tpmlab: " << dir.string() << " already holds a reproduction (" << (dir / "reproduce.yaml").string()
              << "); choose another -o or remove it\n";
    return kExitUsage;
  }
  fs::create_directories(dir, ec);
  if (ec) {
    std::cerr << "tpmlab: cannot create " << dir.string() << ": " << ec.message() << "\n";
    return kExitRunError;
  }
  for (const Status& s : {WriteModel(dir, *good), WriteModel(dir, *bad),
                          WriteText(dir / "reproduce.yaml", ScenarioText(*good, *bad, *plan))}) {
    if (!s.ok()) {
      std::cerr << "tpmlab: " << s.message() << "\n";
      return kExitRunError;
    }
  }
  std::cout << "reproduce: " << (dir / "reproduce.yaml").string() << " (models good.yaml, bad.yaml)\n"
            << "  expects alarms " << List(plan->alarms) << ", " << HashAlgName(plan->bank) << " PCRs "
            << List(plan->drift) << " drifting from golden\n";
  if (a.no_run) return kExitPassed;

  RunArgs run;
  run.scenario = (dir / "reproduce.yaml").string();
  run.out_dir = (dir / "run").string();
  run.bench = a.bench;
  run.quiet = a.quiet;
  run.progress = a.progress;
  bool pcrs_match = true;
  const int code = RunScenarioCommand(run, [&](const RunResult& result) {
    pcrs_match = ComparePcrs(result, *good, *bad);
  });
  // A run that met every expectation with PCRs other than the logs' did not
  // reproduce the field's machine.
  return code == kExitPassed && !pcrs_match ? kExitFailed : code;
}

}  // namespace

Command AddReproduceCommand(CLI::App& app) {
  auto a = std::make_shared<ReproduceArgs>();
  auto* cmd = app.add_subcommand(
      "reproduce", "Turn two field event logs (before, after) into recorded firmware models and a scenario that "
                   "raises the field's alarms, and run it");
  cmd->add_option("GOOD_LOG", a->good, "Event log of the known-good boot (binary_bios_measurements)")->required();
  cmd->add_option("BAD_LOG", a->bad, "Event log of the boot that raised the alarm")->required();
  cmd->add_option("-o,--out", a->out_dir, "Folder for the models, reproduce.yaml and run/ (default "
                                          "reproduce-GOOD-BAD, from the logs' file names)");
  cmd->add_flag("--no-run", a->no_run, "Write the models and the scenario only");
  cmd->add_option("--bench", a->bench, "Bench file to run on (default the embedded swtpm)");
  cmd->add_flag("-q,--quiet", a->quiet, "No progress lines, only the summary");
  cmd->add_flag("--progress", a->progress, "Progress lines even when stderr is not a terminal (CI logs)");
  return {cmd, [a] { return Reproduce(*a); }};
}

}  // namespace tpmlab::cli
