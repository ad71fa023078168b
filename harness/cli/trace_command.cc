// tpmlab trace RUN[:STEP] -o trace.pcapng: a stored run's TPM commands and
// responses as a capture Wireshark's TPM 2.0 dissector decodes (see
// harness/trace). RUN is a run's folder (or its run.json), or DB[:RUN]; a
// step is RUN:STEP (DB:RUN:STEP) or --step. --list prints the stored codes
// instead, one command a line.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "exit_codes.h"
#include "harness/store.h"
#include "harness/trace.h"
#include "commands.h"

namespace tpmlab::cli {
namespace {

namespace fs = std::filesystem;

struct TraceArgs {
  std::string source, out;
  std::optional<int> step;
  bool list = false, force = false;
};

struct Source {
  std::string database;
  std::optional<int64_t> run;
  std::optional<int> step;
};

std::optional<int64_t> Number(const std::string& text) {
  if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::stoll(text);
}

bool IsRunFolderOrJson(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p / "run.json", ec) || (p.extension() == ".json" && fs::is_regular_file(p, ec));
}

// The database and run a run folder's run.json names (its steps skipped unread).
Result<Source> FromRunJson(const fs::path& given) {
  std::error_code ec;
  const fs::path file = fs::is_directory(given, ec) ? given / "run.json" : given;
  std::ifstream in(file);
  if (!in) return Status::Parse(file.string() + ": cannot read it");
  const nlohmann::json top = nlohmann::json::parse(
      in, [](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        return !(depth == 1 && event == nlohmann::json::parse_event_t::key && parsed == "steps");
      },
      false);
  if (!top.is_object() || !top.value("database", nlohmann::json()).is_string() ||
      !top.value("run_id", nlohmann::json()).is_number_integer()) {
    return Status::Parse(file.string() + ": not a tpmlab run.json (it names no database and run_id)");
  }
  std::string db = top["database"].get<std::string>();
  // A database named relative to its run.json's folder.
  if (!IsDatabaseUrl(db) && fs::path(db).is_relative()) db = (file.parent_path() / db).string();
  return Source{db, top["run_id"].get<int64_t>(), std::nullopt};
}

// RUN_DIR, RUN_DIR:STEP, run.json[:STEP], DB, DB:RUN, DB:RUN:STEP.
Result<Source> ParseSource(const std::string& text) {
  std::error_code ec;
  if (IsRunFolderOrJson(text)) return FromRunJson(text);
  if (fs::exists(text, ec) || (IsDatabaseUrl(text) && text.rfind(':') < text.find('/', text.find("://") + 3))) {
    return Source{text, std::nullopt, std::nullopt};
  }
  const size_t last = text.rfind(':');
  const auto n = last == std::string::npos ? std::nullopt : Number(text.substr(last + 1));
  if (!n) return Source{text, std::nullopt, std::nullopt};  // named as given; Open says what is wrong
  const std::string rest = text.substr(0, last);
  if (IsRunFolderOrJson(rest)) {
    TRY_ASSIGN(Source s, FromRunJson(rest));
    s.step = static_cast<int>(*n);
    return s;
  }
  const size_t before = rest.rfind(':');
  const auto m = before == std::string::npos ? std::nullopt : Number(rest.substr(before + 1));
  if (m && !fs::exists(rest, ec)) return Source{rest.substr(0, before), *m, static_cast<int>(*n)};
  return Source{rest, *n, std::nullopt};
}

int List(Store& store, int64_t run_id, std::optional<int> step) {
  std::cout << "step\tsequence\tcommand_code\tresponse_code\n";
  bool found = false;
  Status walked = store.ForEachStep(run_id, [&](StepResult&& s) -> Status {
    if (step && s.index != *step) return Status::Ok();
    found = true;
    for (const auto& t : s.trace) {
      char line[96];
      std::snprintf(line, sizeof(line), "%d\t%llu\t0x%08x\t", s.index, static_cast<unsigned long long>(t.sequence),
                    t.command_code);
      std::cout << line;
      if (t.failed) {
        std::cout << "none\n";
      } else {
        std::snprintf(line, sizeof(line), "0x%08x\n", t.response_code);
        std::cout << line;
      }
    }
    return Status::Ok();
  });
  if (!walked.ok()) {
    std::cerr << "tpmlab: trace: " << walked.ToString() << "\n";
    return ExitFor(walked);
  }
  if (step && !found) {
    std::cerr << "tpmlab: trace: " << store.name() << ": run " << run_id << " has no step " << *step << "\n";
    return kExitUsage;
  }
  return kExitPassed;
}

int Trace(const TraceArgs& a) {
  auto source = ParseSource(a.source);
  if (!source.ok()) {
    std::cerr << "tpmlab: trace: " << source.status().message() << "\n";
    return kExitUsage;
  }
  if (a.step && source->step && *a.step != *source->step) {
    std::cerr << "tpmlab: trace: " << a.source << " names step " << *source->step << " but --step says " << *a.step << "\n";
    return kExitUsage;
  }
  const std::optional<int> step = a.step ? a.step : source->step;
  if (!a.list && a.out.empty()) {
    std::cerr << "tpmlab: trace: say where to write the capture with -o FILE.pcapng (or print the codes with --list)\n";
    return kExitUsage;
  }
  std::error_code ec;
  const std::string& db = source->database;
  if (!IsDatabaseUrl(db) && !fs::is_regular_file(db, ec)) {
    std::cerr << "tpmlab: trace: " << DatabaseDisplayName(db) << ": no such run folder, run.json or database\n";
    return kExitUsage;
  }
  auto store = Store::Open(db);
  if (!store.ok()) {
    std::cerr << "tpmlab: trace: " << DatabaseDisplayName(db) << ": not a tpmlab database: " << store.status().message() << "\n";
    return kExitUsage;
  }
  auto runs = (*store)->ListRuns();
  if (!runs.ok() || runs->empty()) {
    std::cerr << "tpmlab: trace: " << DatabaseDisplayName(db) << " holds no runs\n";
    return kExitUsage;
  }
  const int64_t run_id = source->run.value_or(runs->back().id);  // the latest
  const auto run = std::find_if(runs->begin(), runs->end(), [&](const StoredRun& r) { return r.id == run_id; });
  if (run == runs->end()) {
    std::cerr << "tpmlab: trace: " << DatabaseDisplayName(db) << " has no run " << run_id << "\n";
    return kExitUsage;
  }
  if (a.list) return List(**store, run_id, step);

  if (fs::exists(a.out, ec) && !a.force) {
    std::cerr << "tpmlab: trace: " << a.out << " exists; tpmlab does not overwrite it: choose another -o or add --force\n";
    return kExitUsage;
  }
  const fs::path partial = a.out + ".partial";
  std::ofstream out(partial, std::ios::binary | std::ios::trunc);
  if (!out) {
    std::cerr << "tpmlab: trace: cannot write " << partial.string() << "\n";
    return kExitUsage;
  }
  auto written = WriteTracePcapng(**store, *run, TraceExportOptions{step}, out);
  out.close();
  if (!written.ok() || !out) {
    fs::remove(partial, ec);
    const Status failed = written.ok() ? Status::Error(Layer::kHarness, "cannot write " + a.out) : written.status();
    std::cerr << "tpmlab: trace: " << DatabaseDisplayName(db) << ": " << failed.message() << "\n";
    return step && failed.message().find("has no step") != std::string::npos ? kExitUsage : ExitFor(failed);
  }
  fs::rename(partial, a.out, ec);
  if (ec) {
    std::cerr << "tpmlab: trace: cannot write " << a.out << ": " << ec.message() << "\n";
    return kExitUsage;
  }
  std::cout << "tpmlab trace: run " << run_id << " of " << DatabaseDisplayName(db)
            << (step ? ", step " + std::to_string(*step) : std::string()) << ": " << written->commands << " commands ("
            << written->unanswered << " unanswered) on " << written->connections << " connection"
            << (written->connections == 1 ? "" : "s") << ", " << written->packets << " packets -> " << a.out << "\n";
  if (written->steps_estimated > 0) {
    std::cout << "  " << written->steps_estimated
              << " step(s) were stored without each command's send time: placed back to back (said in their comments)\n";
  }
  return kExitPassed;
}

}  // namespace

Command AddTraceCommand(CLI::App& app) {
  auto a = std::make_shared<TraceArgs>();
  auto* cmd = app.add_subcommand("trace", "Write a stored run's TPM commands as a pcapng capture for Wireshark");
  cmd->add_option("RUN[:STEP]", a->source,
                  "A run's folder (or run.json), or DB[:RUN] (default: the latest run); :STEP for one step")
      ->required();
  cmd->add_option("-o,--out", a->out, "The capture to write (.pcapng)");
  cmd->add_option("--step", a->step, "Only this step")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--list", a->list, "Print each stored command's step, sequence, command and response code instead");
  cmd->add_flag("--force", a->force, "Overwrite the capture if it exists");
  return {cmd, [a] { return Trace(*a); }};
}

}  // namespace tpmlab::cli
