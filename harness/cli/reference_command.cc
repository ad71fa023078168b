// tpmlab reference SOURCE -o DIR: what a verifier needs to accept the
// firmware of one known-good boot. SOURCE is a run (its folder, run.json,
// or DB[:RUN]: its last snapshot, --step N, or --enrolled for the run's
// enrollment), an enrollment.json, or a bare TCG event log (its replay is
// the golden PCRs). Writes DIR/golden-pcrs.json and, for Keylime,
// DIR/keylime/mb_refstate.json, tpm_policy.json and
// tpm_policy_with_mask.json (harness/keylime.h says which Keylime).
#include <fstream>
#include <iostream>
#include <memory>

#include "commands.h"
#include "exit_codes.h"
#include "harness/enrollment.h"
#include "harness/eventlog.h"
#include "harness/keylime.h"
#include "harness/replay.h"
#include "harness/store.h"

namespace tpmlab::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

struct ReferenceArgs {
  std::string source, out_dir, pcrs;
  std::optional<int> step;
  bool enrolled = false, force = false;
};

// One known-good boot: its PCRs, its log when there is one, and where it came from.
struct Boot {
  PcrValues pcrs;
  std::optional<Bytes> eventlog;
  ordered_json source;
};

int Usage(const std::string& message) {
  std::cerr << "tpmlab: reference: " << message << "\n";
  return kExitUsage;
}

// "0-7,14": PCRs as a mask.
Result<uint32_t> ParsePcrList(const std::string& text) {
  uint32_t mask = 0;
  size_t at = 0;
  while (at <= text.size()) {
    const size_t comma = text.find(',', at);
    const std::string item = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    int first = -1, last = -1;
    char extra = 0;
    const int n = std::sscanf(item.c_str(), "%d-%d%c", &first, &last, &extra);
    if (n == 1 && item.find('-') == std::string::npos) last = first;
    if (!(n == 1 || n == 2) || item.empty() || !std::isdigit(static_cast<unsigned char>(item[0])) || first < 0 ||
        last < first || last >= kPcrCount) {
      return Status::Parse("--pcrs '" + text + "': '" + item + "' is not a PCR 0-23 or a range of them");
    }
    for (int i = first; i <= last; ++i) mask |= 1u << i;
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return mask;
}

std::string FileStart(const fs::path& file, size_t n) {
  std::ifstream in(file, std::ios::binary);
  std::string head(n, '\0');
  in.read(head.data(), static_cast<std::streamsize>(n));
  head.resize(static_cast<size_t>(in.gcount()));
  return head;
}

// A run stored in a database: its last snapshot, the step asked for, or its enrollment.
Result<Boot> FromRun(const std::string& db, std::optional<int64_t> run_id, const ReferenceArgs& a) {
  TRY_ASSIGN(auto store, Store::Open(db));
  TRY_ASSIGN(auto runs, store->ListRuns());
  if (runs.empty()) return Status::Parse(DatabaseDisplayName(db) + " holds no runs");
  if (!run_id) run_id = runs.back().id;
  TRY_ASSIGN(StoredRun run, store->LoadRun(*run_id));
  const std::string where = DatabaseDisplayName(db) + " run " + std::to_string(*run_id);
  if (run.status != "passed") {
    return Status::Parse(where + " is " + run.status + ": reference values come from a passing run");
  }
  Boot boot;
  boot.source = {{"kind", "run"}, {"database", DatabaseDisplayName(db)}, {"run", *run_id},
                 {"scenario", run.info.scenario}, {"dut", run.info.dut}};
  if (a.enrolled) {
    TRY_ASSIGN(auto enrollment, store->LoadEnrollment(*run_id));
    if (!enrollment) return Status::Parse(where + " made no enrollment (drop --enrolled to take its last snapshot)");
    boot.pcrs = enrollment->golden_pcrs;
    boot.eventlog = enrollment->golden_eventlog;
    boot.source["from"] = "the run's latest enrollment";
    return boot;
  }
  std::optional<Snapshot> snapshot;
  int index = a.step.value_or(run.steps - 1);
  if (a.step) {
    auto s = store->LoadSnapshot(*run_id, index);
    if (!s.ok()) return Status::Parse(where + " step " + std::to_string(index) + ": " + s.status().message());
    snapshot = std::move(*s);
  } else {
    for (; index >= 0 && !snapshot; --index) {
      if (auto s = store->LoadSnapshot(*run_id, index); s.ok()) snapshot = std::move(*s);
    }
    ++index;
  }
  if (!snapshot) return Status::Parse(where + " took no snapshot");
  if (!snapshot->quote_check.verified()) {
    return Status::Parse(where + " step " + std::to_string(index) +
                         ": its quote does not verify (" + snapshot->quote_check.failure + ")");
  }
  boot.pcrs = snapshot->pcrs;
  boot.eventlog = snapshot->eventlog;
  boot.source["step"] = index;
  boot.source["from"] = a.step ? "the step asked for" : "the run's last snapshot";
  return boot;
}

// A run.json names the database and run it was written from.
Result<Boot> FromRunJson(const fs::path& file, const json& run, const ReferenceArgs& a) {
  if (!run.contains("database") || !run["database"].is_string() || !run.contains("run_id") ||
      !run["run_id"].is_number_integer()) {
    return Status::Parse(file.string() + ": names no database and run_id to read the run from");
  }
  return FromRun(run["database"].get<std::string>(), run["run_id"].get<int64_t>(), a);
}

Result<Boot> FromEnrollment(const fs::path& file, const json& j) {
  TRY_ASSIGN(EnrollmentHistory history, EnrollmentHistoryFromJson(j, file.string()));
  const EnrollmentRecord& latest = history.records.back();
  Boot boot;
  boot.pcrs = latest.enrollment.golden_pcrs;
  boot.eventlog = latest.enrollment.golden_eventlog;
  boot.source = {{"kind", "enrollment"}, {"file", file.string()}, {"dut", latest.enrollment.dut},
                 {"enrolled_at", latest.enrollment.enrolled_at}};
  if (latest.step >= 0) boot.source["step"] = latest.step;
  return boot;
}

Result<Boot> LoadBoot(const ReferenceArgs& a) {
  const bool run_options = a.step || a.enrolled;
  std::error_code ec;
  fs::path path = a.source;
  if (fs::is_directory(path, ec)) {
    if (!fs::is_regular_file(path / "run.json", ec)) {
      return Status::Parse(a.source + ": a folder without run.json is not a run's folder");
    }
    path /= "run.json";
  }
  if (fs::is_regular_file(path, ec)) {
    const std::string head = FileStart(path, 16);
    if (head.rfind("SQLite format 3", 0) == 0) return FromRun(path.string(), std::nullopt, a);
    const size_t first = head.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && head[first] == '{') {
      std::ifstream in(path);
      json j = json::parse(in, nullptr, false);
      if (j.is_discarded()) return Status::Parse(path.string() + ": not JSON");
      if (j.contains("steps")) return FromRunJson(path, j, a);
      if (run_options) return Status::Parse("--step and --enrolled take a run, and " + path.string() + " is an enrollment");
      return FromEnrollment(path, j);
    }
    if (run_options) return Status::Parse("--step and --enrolled take a run, and " + path.string() + " is an event log");
    TRY_ASSIGN(EventLog log, ReadEventLogFile(path.string()));
    TRY_ASSIGN(Replay replay, ReplayEventLog(log));
    Boot boot;
    boot.pcrs = replay.pcrs;
    std::ifstream in(path, std::ios::binary);
    boot.eventlog = Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    boot.source = {{"kind", "eventlog"}, {"file", path.string()}, {"pcrs", "the log's replay"}};
    return boot;
  }
  // DB:RUN (a database file whose own name has a colon is taken whole).
  const size_t colon = a.source.rfind(':');
  if (colon != std::string::npos && colon + 1 < a.source.size() &&
      a.source.find_first_not_of("0123456789", colon + 1) == std::string::npos && colon + 1 + 18 > a.source.size()) {
    const std::string db = a.source.substr(0, colon);
    if (IsDatabaseUrl(db) || fs::is_regular_file(db, ec)) return FromRun(db, std::stoll(a.source.substr(colon + 1)), a);
  }
  if (IsDatabaseUrl(a.source)) return FromRun(a.source, std::nullopt, a);
  return Status::Parse(a.source + ": no such run folder, run.json, enrollment.json, event log or database");
}

Status WriteJson(const fs::path& file, const ordered_json& j) {
  std::ofstream out(file);
  out << j.dump(2) << "\n";
  out.close();
  if (!out) return Status::Parse(file.string() + ": cannot write");
  return Status::Ok();
}

int Reference(const ReferenceArgs& a) {
  uint32_t policy_pcrs = 0;
  if (!a.pcrs.empty()) {
    auto parsed = ParsePcrList(a.pcrs);
    if (!parsed.ok()) return Usage(parsed.status().message());
    if (*parsed & keylime::kTpmPolicyRefused) return Usage("--pcrs: Keylime refuses PCR 10 (IMA) and 16 (its data PCR) in a tpm_policy");
    policy_pcrs = *parsed;
  }
  const fs::path out = a.out_dir;
  std::error_code ec;
  if (fs::exists(out / "golden-pcrs.json", ec) && !a.force) {
    return Usage((out / "golden-pcrs.json").string() + " exists; tpmlab does not overwrite it: choose another -o or add --force");
  }
  auto boot = LoadBoot(a);
  if (!boot.ok()) return Usage(boot.status().message());
  if (boot->pcrs.empty()) return Usage(a.source + ": holds no PCR values");

  std::optional<EventLog> log;
  std::vector<std::string> notes;
  if (boot->eventlog) {
    auto parsed = ParseEventLog(*boot->eventlog);
    if (!parsed.ok()) return Usage(a.source + ": its event log: " + parsed.status().message());
    log = std::move(*parsed);
    auto replay = ReplayEventLog(*log);
    if (!replay.ok()) return Usage(a.source + ": its event log: " + replay.status().message());
    // Values the log does not explain are no reference: a verifier replaying it would reject them.
    for (const auto& [bank, pcrs] : CompareReplay(*replay, boot->pcrs)) {
      std::string list;
      for (int p : pcrs) list += (list.empty() ? "" : ", ") + std::to_string(p);
      return Usage(a.source + ": the event log does not replay to the " + HashAlgName(bank) + " PCRs " + list +
                   ": no reference values from a boot its log does not explain");
    }
    if (a.pcrs.empty()) {
      for (const auto& [bank, extended] : replay->extended) policy_pcrs |= extended;
      policy_pcrs &= ~keylime::kTpmPolicyRefused;
    }
  } else {
    notes.push_back("no event log: keylime/mb_refstate.json not written");
    if (a.pcrs.empty()) policy_pcrs = 0xFF;  // the firmware's PCRs 0-7
  }

  fs::create_directories(out / "keylime", ec);
  if (ec) return Usage((out / "keylime").string() + ": cannot create: " + ec.message());
  std::vector<std::string> written;
  auto write = [&](const fs::path& file, const ordered_json& j) {
    Status s = WriteJson(file, j);
    if (s.ok()) written.push_back(file.string());
    return s;
  };
  Status s = write(out / "golden-pcrs.json", keylime::GoldenPcrsJson(boot->pcrs, boot->source));
  for (bool with_mask : {false, true}) {
    auto policy = keylime::TpmPolicy(boot->pcrs, policy_pcrs, with_mask);
    if (!policy.ok()) return Usage(policy.status().message());
    if (s.ok()) s = write(out / "keylime" / (with_mask ? "tpm_policy_with_mask.json" : "tpm_policy.json"), *policy);
  }
  if (log && s.ok()) {
    auto refstate = keylime::MeasuredBootRefstate(*log);
    if (refstate.ok()) {
      s = write(out / "keylime" / "mb_refstate.json", refstate->json);
      for (const auto& n : refstate->notes) notes.push_back("mb_refstate: " + n);
    } else {
      notes.push_back("keylime/mb_refstate.json not written: " + refstate.status().message());
    }
  }
  if (!s.ok()) return Usage(s.message());
  std::cout << "tpmlab reference: " << boot->source.value("kind", "") << " " << a.source << " ("
            << keylime::kKeylimeRevision << ")\n";
  for (const auto& f : written) std::cout << "  wrote " << f << "\n";
  for (const auto& n : notes) std::cerr << "note: " << n << "\n";
  return kExitPassed;
}

}  // namespace

Command AddReferenceCommand(CLI::App& app) {
  auto a = std::make_shared<ReferenceArgs>();
  auto* cmd = app.add_subcommand(
      "reference",
      "Write what a verifier needs to accept one known-good boot: golden PCRs per bank, and Keylime's measured-boot "
      "reference state and tpm_policy");
  cmd->add_option("SOURCE", a->source,
                  "A passing run (its folder, run.json or DB[:RUN]), an enrollment.json, or a TCG event log")
      ->required();
  cmd->add_option("-o,--out", a->out_dir, "Folder for golden-pcrs.json and keylime/")->required();
  cmd->add_option("--step", a->step, "A run's step whose snapshot to take (default: its last snapshot)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--enrolled", a->enrolled, "Take the run's latest enrollment instead of a snapshot");
  cmd->add_option("--pcrs", a->pcrs,
                  "PCRs of the tpm_policy, e.g. 0-7,14 (default: those the event log extends; 0-7 without a log)");
  cmd->add_flag("--force", a->force, "Overwrite files already in the folder");
  return {cmd, [a] { return Reference(*a); }};
}

}  // namespace tpmlab::cli
