// tpmlab report RUN_DIR | DB[:RUN] -o report.html: one self-contained HTML
// file of a stored run (harness/report). A run folder is read through the
// database its run.json names (full and compact run.json alike), so the
// report never loads a 27 MB run.json whole.
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <memory>

#include "commands.h"
#include "exit_codes.h"
#include "harness/report.h"
#include "harness/run_files.h"
#include "harness/store.h"

namespace tpmlab::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct ReportArgs {
  std::string source, out;
  std::vector<std::string> compare;  // --compare A B: a qualification comparison instead
};

struct Source {
  std::string database;
  std::optional<int64_t> run_id;
  fs::path run_dir;  // empty for a database given directly
};

// DB or DB:RUN, as tpmlab export reads it (a file whose own name has a colon
// is taken whole; in a URL, a run follows its path).
std::pair<std::string, std::optional<int64_t>> ParseDatabaseRun(const std::string& text) {
  std::error_code ec;
  const size_t colon = text.rfind(':');
  if (fs::exists(text, ec) || colon == std::string::npos || colon + 1 == text.size()) return {text, std::nullopt};
  if (IsDatabaseUrl(text) && text.find('/', text.find("://") + 3) > colon) return {text, std::nullopt};
  const std::string id = text.substr(colon + 1);
  if (id.find_first_not_of("0123456789") != std::string::npos || id.size() > 18) return {text, std::nullopt};
  return {text.substr(0, colon), std::stoll(id)};
}

// A run folder's run.json without its steps (skipped while parsing: a long
// run's file is large): the database and run it names.
Result<Source> SourceOfRunFolder(const fs::path& dir) {
  const fs::path file = dir / "run.json";
  std::ifstream in(file);
  if (!in) return Status::Error(Layer::kHarness, file.string() + ": no run.json in the folder").WithKind(ErrorKind::kBadInput);
  const json::parser_callback_t skip_steps = [](int depth, json::parse_event_t event, json& parsed) {
    return !(depth == 1 && event == json::parse_event_t::key && parsed == "steps");
  };
  json run;
  try {
    run = json::parse(in, skip_steps);
  } catch (const json::parse_error& e) {
    return Status::Error(Layer::kHarness, file.string() + ": not JSON at byte " + std::to_string(e.byte))
        .WithKind(ErrorKind::kBadInput);
  }
  if (!run.is_object() || !run.value("run_id", json()).is_number_integer()) {
    return Status::Error(Layer::kHarness, file.string() + ": names no run_id (not a tpmlab run.json)")
        .WithKind(ErrorKind::kBadInput);
  }
  Source s{run.value("database", ""), run["run_id"].get<int64_t>(), dir};
  // A folder that moved: its database is still beside run.json.
  std::error_code ec;
  if ((s.database.empty() || (!IsDatabaseUrl(s.database) && !fs::is_regular_file(s.database, ec))) &&
      fs::is_regular_file(dir / "tpmlab.db", ec)) {
    s.database = (dir / "tpmlab.db").string();
  }
  if (s.database.empty()) {
    return Status::Error(Layer::kHarness, file.string() + ": names no database").WithKind(ErrorKind::kBadInput);
  }
  return s;
}

int Fail(const std::string& message, int code) {
  std::cerr << "tpmlab: report: " << message << "\n";
  return code;
}

int Report(const ReportArgs& a) {
  if (!a.compare.empty()) {
    if (!a.source.empty()) return Fail("give either a run or --compare A B, not both", kExitUsage);
    return CompareRunsCommand(a.compare[0], a.compare[1], a.out.empty() ? "compare.html" : a.out);
  }
  if (a.source.empty()) return Fail("name a run: RUN_DIR or DB[:RUN] (or --compare A B)", kExitUsage);
  std::error_code ec;
  Source source;
  if (fs::is_directory(a.source, ec)) {
    auto s = SourceOfRunFolder(a.source);
    if (!s.ok()) return Fail(s.status().message(), ExitFor(s.status()));
    source = *s;
  } else {
    auto [db, run] = ParseDatabaseRun(a.source);
    source.database = db;
    source.run_id = run;
    if (!IsDatabaseUrl(db) && !fs::is_regular_file(db, ec)) {
      return Fail(DatabaseDisplayName(db) + ": no such run folder or database", kExitUsage);
    }
  }
  fs::path out = a.out;
  if (out.empty()) {
    if (source.run_dir.empty()) return Fail("say where to write the report with -o FILE.html", kExitUsage);
    out = source.run_dir / "report.html";
  }
  if (fs::is_directory(out, ec)) return Fail(out.string() + " is a folder: -o names the report's file", kExitUsage);

  // Chart.js first: a host without it learns so before a long read.
  auto chart_js = LoadChartJs();
  if (!chart_js.ok()) return Fail(chart_js.status().message(), ExitFor(chart_js.status()));

  const std::string db_name = DatabaseDisplayName(source.database);
  auto store = Store::Open(source.database);
  if (!store.ok()) return Fail(db_name + ": not a tpmlab database: " + store.status().message(), kExitUsage);
  if (!source.run_id) {
    auto runs = (*store)->ListRuns();
    if (!runs.ok()) return Fail(db_name + ": " + runs.status().message(), kExitUsage);
    if (runs->empty()) return Fail(db_name + " holds no runs", kExitUsage);
    source.run_id = runs->back().id;  // the latest
  }
  if (!(*store)->LoadRun(*source.run_id).ok()) {
    return Fail(db_name + " has no run " + std::to_string(*source.run_id) + " (tpmlab runs " + db_name + " lists them)",
                kExitUsage);
  }

  ReportOptions options;
  options.run_dir = source.run_dir;
  options.output_dir = out.parent_path().empty() ? fs::path(".") : out.parent_path();
  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  if (terminal) {
    options.progress = [](int read, int total) {
      std::cerr << "\rtpmlab report: reading step " << read << " of " << total << std::flush;
    };
  }
  auto model = BuildReportModel(**store, *source.run_id, options);
  if (terminal) std::cerr << "\n";
  if (!model.ok()) return Fail(db_name + ": run " + std::to_string(*source.run_id) + ": " + model.status().ToString(), ExitFor(model.status()));
  const std::string html = RenderReportHtml(*model, *chart_js);
  if (!out.parent_path().empty()) fs::create_directories(out.parent_path(), ec);
  Status written = WriteFileAtomically(out, html);
  if (!written.ok()) return Fail(written.ToString(), ExitFor(written));
  const json& run = (*model)["run"];
  std::cout << "tpmlab report: run " << *source.run_id << " of " << db_name << " (" << run.value("status", "") << ", "
            << run.value("steps", 0) << " steps, " << (*model)["alarms"].value("total", 0) << " alarms)\n"
            << "  report: " << out.string() << " (" << (html.size() + 1023) / 1024 << " KiB)\n";
  return kExitPassed;
}

}  // namespace

Command AddReportCommand(CLI::App& app) {
  auto a = std::make_shared<ReportArgs>();
  auto* cmd = app.add_subcommand("report", "Write one self-contained HTML report of a run: alarms, PCR drift per boot, "
                                           "counters and clock, command latency, expectations, faults");
  cmd->add_option("RUN_DIR|DB[:RUN]", a->source, "A run's folder, or a database and the run (default: the latest)");
  cmd->add_option("--compare", a->compare,
                  "Compare two runs A B instead (as tpmlab compare A B -o FILE; default FILE compare.html)")
      ->expected(2);
  cmd->add_option("-o,--out", a->out, "The HTML file to write (default: RUN_DIR/report.html, compare.html)");
  return {cmd, [a] { return Report(*a); }};
}

}  // namespace tpmlab::cli
