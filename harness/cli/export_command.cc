// tpmlab export DB[:RUN] -o DIR: run.json, junit.xml and the event logs of
// any stored run, written from the database by the code that writes them at
// the end of a run; a killed run (no finish recorded) exports as
// interrupted. --step N prints one step whole: the documented way to read a
// step whose snapshot a compact run.json only names.
#include <algorithm>
#include <iostream>
#include <memory>

#include "exit_codes.h"
#include "harness/run_files.h"
#include "harness/store.h"
#include "commands.h"

namespace tpmlab::cli {
namespace {

namespace fs = std::filesystem;

struct ExportArgs {
  std::string source, out_dir, run_json = "auto";
  std::optional<int> step;
  bool force = false;
};

// "1-3, 7": the run ids a database holds, for a message naming them.
std::string IdRanges(const std::vector<StoredRun>& runs) {
  std::string out;
  for (size_t i = 0; i < runs.size();) {
    size_t j = i;
    while (j + 1 < runs.size() && runs[j + 1].id == runs[j].id + 1) ++j;
    out += (out.empty() ? "" : ", ") + std::to_string(runs[i].id) +
           (j > i ? "-" + std::to_string(runs[j].id) : "");
    i = j + 1;
  }
  return out;
}

// DB, or DB:RUN (a database file whose own name has a colon is taken whole;
// in a URL, a run follows its path: postgresql://host:5432 names no run).
std::pair<fs::path, std::optional<int64_t>> ParseSource(const std::string& text) {
  std::error_code ec;
  const size_t colon = text.rfind(':');
  if (fs::exists(text, ec) || colon == std::string::npos || colon + 1 == text.size()) return {text, std::nullopt};
  if (IsDatabaseUrl(text) && text.find('/', text.find("://") + 3) > colon) return {text, std::nullopt};
  const std::string id = text.substr(colon + 1);
  if (id.find_first_not_of("0123456789") != std::string::npos || id.size() > 18) return {text, std::nullopt};
  return {text.substr(0, colon), std::stoll(id)};
}

int PrintStep(Store& store, const fs::path& db, int64_t run_id, int index, const std::string& out_dir) {
  bool found = false;
  Status walked = store.ForEachStep(run_id, [&](StepResult&& s) -> Status {
    if (s.index != index) return Status::Ok();
    found = true;
    if (!out_dir.empty()) {
      std::error_code ec;
      fs::create_directories(out_dir, ec);
    }
    auto j = StepToRunJson(s, out_dir);
    if (!j.ok()) return j.status();
    std::cout << j->dump(2) << "\n";
    return Status::Error(Layer::kHarness, "found");  // stops the walk
  });
  if (!found) {
    if (!walked.ok()) {
      std::cerr << "tpmlab: export: " << walked.ToString() << "\n";
      return ExitFor(walked);
    }
    std::cerr << "tpmlab: export: " << DatabaseDisplayName(db) << ": run " << run_id << " has no step " << index << "\n";
    return kExitUsage;
  }
  return kExitPassed;
}

int Export(const ExportArgs& a) {
  // Named variables, not a structured binding: clang 14 cannot capture those in a lambda.
  const auto source = ParseSource(a.source);
  const fs::path db = source.first;
  std::optional<int64_t> run_id = source.second;
  std::error_code ec;
  if (!IsDatabaseUrl(db) && !fs::is_regular_file(db, ec)) {
    std::cerr << "tpmlab: export: " << DatabaseDisplayName(db) << ": no such database\n";
    return kExitUsage;
  }
  if (!a.step && a.out_dir.empty()) {
    std::cerr << "tpmlab: export: say where to write the run with -o DIR (or print one step with --step N)\n";
    return kExitUsage;
  }
  auto form = ParseRunJsonForm(a.run_json);
  if (!form.ok()) {
    std::cerr << "tpmlab: export: " << form.status().message() << "\n";
    return kExitUsage;
  }
  auto store = Store::Open(db);
  if (!store.ok()) {
    std::cerr << "tpmlab: export: " << DatabaseDisplayName(db) << ": not a tpmlab database: " << store.status().message() << "\n";
    return kExitUsage;
  }
  auto runs = (*store)->ListRuns();
  if (!runs.ok()) {
    std::cerr << "tpmlab: export: " << DatabaseDisplayName(db) << ": " << runs.status().message() << "\n";
    return kExitUsage;
  }
  if (runs->empty()) {
    std::cerr << "tpmlab: export: " << DatabaseDisplayName(db) << " holds no runs\n";
    return kExitUsage;
  }
  if (!run_id) run_id = runs->back().id;  // the latest
  const auto run = std::find_if(runs->begin(), runs->end(), [&](const StoredRun& r) { return r.id == *run_id; });
  if (run == runs->end()) {
    std::cerr << "tpmlab: export: " << DatabaseDisplayName(db) << " has no run " << *run_id << "; it holds run"
              << (runs->size() == 1 ? " " : "s ") << IdRanges(*runs) << "\n";
    return kExitUsage;
  }
  if (a.step) return PrintStep(**store, db, *run_id, *a.step, a.out_dir);

  const fs::path out = a.out_dir;
  if (fs::exists(out / "run.json", ec) && !a.force) {
    std::cerr << "tpmlab: export: " << (out / "run.json").string()
              << " exists; tpmlab does not overwrite it: choose another -o or add --force\n";
    return kExitUsage;
  }
  Status written = WriteRunFiles(**store, *run_id, out, *form);
  if (!written.ok()) {
    std::cerr << "tpmlab: export: " << written.ToString() << "\n";
    return ExitFor(written);
  }
  std::cout << "tpmlab export: run " << *run_id << " of " << DatabaseDisplayName(db) << " (" << run->status << ", "
            << run->steps << " steps)\n"
            << "  results: " << (out / "run.json").string() << ", " << (out / "junit.xml").string() << "\n";
  return kExitPassed;
}

}  // namespace

Command AddExportCommand(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  auto* cmd = app.add_subcommand(
      "export", "Write run.json and junit.xml of a stored run (killed ones too) from its database, or print one step");
  cmd->add_option("DB[:RUN]", a->source, "The database, and the run (default: the latest)")->required();
  cmd->add_option("-o,--out", a->out_dir, "Folder for run.json, junit.xml and eventlogs/");
  cmd->add_option("--step", a->step, "Print this step's JSON with its whole snapshot (and nothing else)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--run-json", a->run_json,
                  "How run.json holds each snapshot: full, compact or auto (full up to 1000 steps)")
      ->check(CLI::IsMember({"auto", "full", "compact"}));
  cmd->add_flag("--force", a->force, "Overwrite a run.json already in the folder");
  return {cmd, [a] { return Export(*a); }};
}

}  // namespace tpmlab::cli
