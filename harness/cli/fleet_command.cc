// tpmlab run on many DUTs at once: --duts N emulated chips, or one DUT per
// --bench file when more than one is given. The runs themselves are
// harness/fleet.h's (a thread per DUT); this file checks the inputs, lays
// out OUT/<dut>/ per DUT, shows progress, prints a summary per DUT, writes
// OUT/fleet.json and exits with the worst DUT's code (exit_codes.h).
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>

#include "commands.h"
#include "lava.h"
#include "exit_codes.h"
#include "harness/fleet.h"
#include "harness/run_folder.h"
#include "harness/scenario_yaml.h"
#include "harness/verify.h"

namespace tpmlab::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop_fleet{false};
void OnSignal(int) { g_stop_fleet = true; }

// Progress of a fleet on stderr. On a terminal: one line per DUT, redrawn in
// place (at most ten times a second), with a failed check or error printed
// above them as it happens. With --progress elsewhere (CI logs): every
// step's lines, each prefixed with its DUT's name.
class FleetProgress {
 public:
  FleetProgress(std::vector<std::string> names, bool terminal) : names_(std::move(names)), terminal_(terminal) {
    width_ = 0;
    for (const auto& n : names_) width_ = std::max(width_, n.size());
    lines_.resize(names_.size());
    alarms_.resize(names_.size());
    for (size_t i = 0; i < names_.size(); ++i) lines_[i] = "starting";
    if (terminal_) {
      winsize ws{};
      columns_ = ::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20 ? ws.ws_col : 100;
    }
  }

  void Step(size_t i, const StepResult& r, int total) {
    const std::string text = StepProgressLines(r, total);
    std::lock_guard lock(mu_);
    if (!terminal_) {
      std::string out;
      size_t at = 0;
      while (at < text.size()) {
        const size_t end = text.find('\n', at);
        out += Pad(names_[i]) + " " + text.substr(at, end - at) + "\n";
        at = end == std::string::npos ? text.size() : end + 1;
      }
      std::fputs(out.c_str(), stderr);
      return;
    }
    alarms_[i] += static_cast<int>(DistinctAlarmCodes(r.alarms).size());
    const std::string first = text.substr(0, text.find('\n'));
    // Short enough for a narrow terminal: the step, what it was, its status, the alarms so far.
    std::string what = r.action;
    if (r.cycle) what += " #" + std::to_string(*r.cycle) + " " + r.kind;
    lines_[i] = StepProgressPrefix(r.index, total) + " " + what + " " + r.status +
                (alarms_[i] ? ", " + std::to_string(alarms_[i]) + " alarm(s) so far" : "");
    // A failed check or an error is news: kept above the block. Alarms are
    // counted in the DUT's line instead (a soak raises one per boot).
    std::string news;
    if (r.status == "failed" || r.status == "error") {
      news = Pad(names_[i]) + " " + first + "\n";
      for (size_t at = text.find('\n'); at != std::string::npos && at + 1 < text.size();) {
        const size_t end = text.find('\n', at + 1);
        const std::string line = text.substr(at + 1, end - at - 1);
        if (line.rfind("    alarm ", 0) != 0) news += Pad(names_[i]) + line + "\n";
        at = end;
      }
    }
    Draw(news, /*force=*/!news.empty());
  }

  void Finished(size_t i, const FleetMemberResult& m) {
    std::lock_guard lock(mu_);
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s: %d steps, %d power cycles, %.1f cycles/s", RunStatusName(m.status()), m.steps,
                  m.cycles, m.cycles_per_second());
    lines_[i] = m.run ? buf : "error: the run could not start";
    if (terminal_) Draw("", /*force=*/true);
  }

 private:
  std::string Pad(const std::string& name) const { return name + std::string(width_ - name.size(), ' '); }

  void Draw(const std::string& news, bool force) {
    const auto now = Clock::now();
    if (!force && drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    std::string out;
    if (drawn_) out += "\x1b[" + std::to_string(names_.size()) + "A";  // back to the block's first line
    for (size_t at = 0; at < news.size();) {
      const size_t end = news.find('\n', at);
      out += "\r\x1b[K" + news.substr(at, end - at) + "\n";
      at = end + 1;
    }
    for (size_t i = 0; i < names_.size(); ++i) {
      std::string line = Pad(names_[i]) + " " + lines_[i];
      if (line.size() >= columns_) line.resize(columns_ - 1);  // a wrapped line would break the redraw
      out += "\r\x1b[K" + line + "\n";
    }
    std::fputs(out.c_str(), stderr);
    std::fflush(stderr);
    drawn_ = true;
  }

  std::mutex mu_;
  std::vector<std::string> names_, lines_;
  std::vector<int> alarms_;
  size_t width_ = 0, columns_ = 100;
  bool terminal_ = false, drawn_ = false;
  Clock::time_point last_draw_{};
};

// The exit code `tpmlab run` on this DUT alone would have given.
int ExitCodeOf(const FleetMemberResult& m) {
  if (!m.run) return ExitFor(m.start_error);
  switch (m.run->status) {
    case RunStatus::kPassed: return kExitPassed;
    case RunStatus::kFailed: return kExitFailed;
    case RunStatus::kInterrupted: return kExitInterrupted;
    case RunStatus::kError: return kExitRunError;
  }
  return kExitRunError;
}

std::string AlarmCounts(const std::map<std::string, int>& alarms) {
  std::string out;
  for (const auto& [code, steps] : alarms) out += (out.empty() ? "" : ", ") + code + " x" + std::to_string(steps);
  return out.empty() ? "none" : out;
}

int Usage(const std::string& message) {
  std::cerr << "tpmlab: " << message << "\n";
  return kExitUsage;
}

}  // namespace

bool IsFleetRun(const RunArgs& args) { return args.duts.has_value() || args.benches.size() > 1; }

int RunFleetCommand(RunArgs a) {
  if (a.duts && !a.benches.empty()) {
    return Usage("--duts runs N chips on the embedded default; to run on benches, give one --bench per DUT "
                 "instead (not both)");
  }
  if (a.duts && *a.duts < 1) return Usage("--duts: at least 1, not " + std::to_string(*a.duts));
  auto scenario = LoadScenarioFile(a.scenario);
  if (!scenario.ok()) return Usage(scenario.status().message());
  if (a.cycles) {
    if (Status s = OverrideCycles(*scenario, *a.cycles); !s.ok()) return Usage(s.message());
  }
  // Every bench file is read before anything starts: a malformed one is the
  // user's to fix, and nothing runs.
  std::vector<Bench> benches;
  std::vector<std::string> bench_names;
  for (const auto& file : a.benches) {
    auto bench = LoadBench(file);
    if (!bench.ok()) return Usage(bench.status().message());
    if (!bench->emulated() && (a.keep_state || a.unix_sockets)) {
      return Usage("--keep-state and --unix-sockets apply to an emulated DUT, not bench " + bench->name + " (" +
                   DutTransportName(bench->dut.transport) + ", " + file + ")");
    }
    if (Status allowed = CheckBenchAllowsScenario(*scenario, *bench); !allowed.ok()) {
      return Usage(allowed.message());
    }
    bench_names.push_back(bench->name);
    benches.push_back(std::move(*bench));
  }
  const std::vector<std::string> names = FleetDutNames(a.duts.value_or(0), bench_names);

  if (a.out_dir.empty()) a.out_dir = DefaultOutDir(scenario->name);
  const fs::path out = a.out_dir;
  const fs::path db = a.db.empty() ? DefaultDatabase(out) : a.db;
  std::error_code ec;
  if (fs::exists(out / "run.json", ec)) {
    return Usage(out.string() + " holds a single run (" + (out / "run.json").string() +
                 "); a fleet needs a folder of its own: choose another --out");
  }
  // One fleet at a time in OUT (each DUT's run also locks its own folder).
  fs::create_directories(out, ec);
  if (ec) {
    std::cerr << "tpmlab: cannot create " << out.string() << ": " << ec.message() << "\n";
    return kExitRunError;
  }
  auto fleet_lock = RunFolderLock::Acquire(out);
  if (!fleet_lock.ok()) {
    std::cerr << "tpmlab: " << fleet_lock.status().message() << "\n";
    return ExitFor(fleet_lock.status());
  }

  std::vector<FleetMember> members;
  for (size_t i = 0; i < names.size(); ++i) {
    FleetMember m;
    m.name = names[i];
    RunOptions& o = m.options;
    if (i < benches.size()) o.bench = benches[i];
    const bool emulated = !o.bench || o.bench->emulated();
    fs::path folder = out / m.name;
    o.dut_name = m.name;
    // Never over an earlier run, as a single run: refused, or with
    // --keep-state its chip continues and this run goes to a sub-folder.
    if (fs::exists(folder / "run.json", ec)) {
      if (!a.keep_state || !emulated) {
        return Usage(folder.string() + " already holds a run (" + (folder / "run.json").string() +
                     "); tpmlab does not overwrite it: choose another --out, remove that run, or add --keep-state "
                     "to continue each DUT's chip into a new sub-folder");
      }
      o.state_dir = folder / m.name;
      folder = NextRunFolder(folder);
      std::cerr << "tpmlab: " << m.name << ": --keep-state continues its chip (" << o.state_dir.string()
                << ") and writes this run to " << folder.string() << "\n";
    } else if (a.keep_state && emulated && !HasChipState(folder / m.name)) {
      std::cerr << "tpmlab: warning: " << m.name << ": --keep-state: no chip state in " << (folder / m.name).string()
                << ", so this run starts a newly manufactured chip\n";
    }
    o.out_dir = folder;
    o.database = db;
    o.seed = a.seed;
    o.keep_state = a.keep_state;
    o.unix_sockets = a.unix_sockets;
    o.fail_on_alarm = a.fail_on_alarm;
    o.stop = &g_stop_fleet;
    members.push_back(std::move(m));
  }

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  const bool terminal = !a.quiet && ::isatty(STDERR_FILENO);
  std::optional<FleetProgress> progress;
  FleetOptions options;
  options.keep_steps = false;
  if (a.progress || terminal) {
    progress.emplace(names, terminal && !a.progress);
    options.on_step = [&progress](size_t i, const StepResult& r, int total) { progress->Step(i, r, total); };
    options.on_finished = [&progress](size_t i, const FleetMemberResult& m) { progress->Finished(i, m); };
  }
  const uint64_t seed = a.seed.value_or(scenario->seed);
  FleetResult fleet = RunFleet(*scenario, std::move(members), options);

  std::vector<int> exit_codes;
  int exit_code = kExitPassed;
  RunStatus worst = RunStatus::kPassed;
  for (const auto& m : fleet.members) {
    exit_codes.push_back(ExitCodeOf(m));
    exit_code = WorstExit(exit_code, exit_codes.back());
    if (RunStatusSeverity(m.status()) > RunStatusSeverity(worst)) worst = m.status();
  }
  const fs::path summary = out / "fleet.json";
  Status written = WriteFleetJson(summary, *scenario, seed, db, fleet, exit_codes, exit_code);

  // Why a DUT did not pass, on stderr; the table on stdout.
  for (const auto& m : fleet.members) {
    if (!m.run) {
      std::cerr << "tpmlab: " << m.name << ": the run could not start: " << m.start_error.ToString() << "\n";
      continue;
    }
    for (const auto& e : m.run->expectations) {
      if (!e.passed) std::cerr << "  " << m.name << ": expectation not met: " << e.name << ": " << e.detail << "\n";
    }
    if (!m.run->error.empty()) std::cerr << "tpmlab: " << m.name << ": " << m.run->error << "\n";
  }
  char head[256];
  std::snprintf(head, sizeof head, "%zu DUTs, seed %llu, %d verified power cycles in %.1f s (%.1f cycles/s in all)",
                fleet.members.size(), static_cast<unsigned long long>(seed), fleet.verified_cycles(), fleet.seconds,
                fleet.verified_cycles_per_second());
  std::cout << "tpmlab run " << RunStatusName(worst) << ": " << scenario->name << " on " << head << "\n";
  size_t width = 0;
  for (const auto& m : fleet.members) width = std::max(width, m.name.size());
  for (size_t i = 0; i < fleet.members.size(); ++i) {
    const auto& m = fleet.members[i];
    char line[256];
    std::snprintf(line, sizeof line, "  %-*s  %-11s %5d steps %6d power cycles %7.1f cycles/s  exit %-3d  ",
                  static_cast<int>(width), m.name.c_str(), RunStatusName(m.status()), m.steps, m.cycles,
                  m.cycles_per_second(), exit_codes[i]);
    std::cout << line << (m.out_dir / "run.json").string();
    if (m.run_id()) std::cout << " (run " << *m.run_id() << (m.run ? ")" : ", did not start)");
    std::cout << "\n    alarms: " << AlarmCounts(m.alarms) << "\n";
  }
  // In a LAVA job, each DUT's cases under its own name.
  for (const auto& m : fleet.members) {
    if (m.run) ReportToLava(m.out_dir / "run.json", scenario->name + "." + m.name);
  }
  std::cout << "  database: " << DatabaseDisplayName(db) << "\n"
            << "  summary: " << summary.string() << "\n";
  if (!written.ok()) {
    std::cerr << "tpmlab: " << written.ToString() << "\n";
    exit_code = WorstExit(exit_code, kExitRunError);
  }
  return exit_code;
}

}  // namespace tpmlab::cli
