// tpmlab bundle / replay: a run packed into one file, and that file run again
// on a fresh emulated DUT, started from the recorded chip state with the
// recorded seed, for exactly the recorded steps, to check the same alarms,
// PCRs, event logs and counters come up at the same steps.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <optional>
#include <set>

#include "commands.h"
#include "exit_codes.h"
#include "harness/bundle.h"
#include "harness/bundle_replay.h"
#include "harness/runner.h"

namespace tpmlab::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

// A bundle's own faults are bad input (2); anything else kept it from being
// read or written (3).
int ExitForBundle(const Status& s) { return s.kind() == ErrorKind::kBadInput ? kExitUsage : kExitRunError; }

std::string Stamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
  return stamp;
}

int Bundle(const std::string& run, std::string out) {
  const fs::path run_dir = fs::is_directory(run) ? fs::path(run) : fs::path(run).parent_path();
  if (out.empty()) out = fs::absolute(run_dir).lexically_normal().filename().string() + ".tar.gz";
  Status s = WriteBundle(run_dir, out);
  if (!s.ok()) {
    std::cerr << "tpmlab: " << s.message() << "\n";
    return ExitForBundle(s);
  }
  std::error_code ec;
  std::cout << "tpmlab bundle: " << out << " (" << (fs::file_size(out, ec) + 1023) / 1024 << " KiB)\n";
  return kExitPassed;
}

std::string Join(const std::vector<std::string>& items, const char* separator = ",") {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : separator) + i;
  return s;
}

std::string Codes(const std::optional<std::vector<std::string>>& codes) {
  if (!codes) return "(no step)";
  return codes->empty() ? "-" : Join(*codes);
}

// The comparison as a table whose columns fit what they hold.
void PrintTable(const std::vector<StepComparison>& rows) {
  std::vector<std::array<std::string, 5>> cells = {{"step", "action", "recorded alarms", "replayed alarms", "result"}};
  for (const auto& r : rows) {
    cells.push_back({std::to_string(r.index), r.action + (r.kind.empty() ? "" : " " + r.kind), Codes(r.recorded_alarms),
                     Codes(r.replayed_alarms),
                     (r.same() ? "same" : "DIFFERENT: " + Join(r.differences, "; ")) +
                         (r.timing.empty() ? "" : " (timing: " + Join(r.timing, "; ") + ")")});
  }
  std::array<size_t, 4> width{};
  for (const auto& c : cells) {
    for (size_t i = 0; i < width.size(); ++i) width[i] = std::max(width[i], c[i].size());
  }
  for (const auto& c : cells) {
    std::printf("%*s  %-*s  %-*s  %-*s  %s\n", static_cast<int>(width[0]), c[0].c_str(), static_cast<int>(width[1]),
                c[1].c_str(), static_cast<int>(width[2]), c[2].c_str(), static_cast<int>(width[3]), c[3].c_str(),
                c[4].c_str());
  }
}

struct ReplayArgs {
  std::string bundle, out_dir;
  bool json = false, quiet = false, unix_sockets = false;
};

int Replay(const ReplayArgs& args) {
  fs::path out = args.out_dir.empty()
                     ? fs::path("tpmlab-runs") / ("replay-" + fs::path(args.bundle).stem().stem().string() + "-" + Stamp())
                     : fs::path(args.out_dir);
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_empty(out, ec)) {
    std::cerr << "tpmlab: " << out.string() << " is not empty; replay into a new folder (-o)\n";
    return kExitUsage;
  }
  const fs::path unpacked = out / "bundle";
  auto extracted = ExtractBundle(args.bundle, unpacked);
  if (!extracted.ok()) {
    std::cerr << "tpmlab: " << extracted.status().message() << "\n";
    return ExitForBundle(extracted.status());
  }
  // Everything the replay loads comes from the bundle, never from this host.
  auto plan = PlanReplay(unpacked);
  if (!plan.ok()) {
    std::cerr << "tpmlab: " << args.bundle << ": " << plan.status().message() << "\n";
    return ExitForBundle(plan.status());
  }
  const json& recorded = plan->recorded;
  const int scenario_steps = CountSteps(plan->scenario.steps);
  if (plan->recorded_steps > scenario_steps) {
    std::cerr << "tpmlab: note: the recorded run has " << plan->recorded_steps << " steps, the bundled scenario "
              << scenario_steps << " (was it run with --cycles? its run.json does not say)\n";
  }

  RunOptions options;
  options.out_dir = out / "run";
  options.database = options.out_dir / "tpmlab.db";
  options.seed = plan->seed;
  // A replay runs exactly the steps that were recorded: a run stopped early
  // (Ctrl-C on `--cycles 10000000`) replays to where it stopped, no further.
  options.max_steps = plan->recorded_steps;
  options.initial_state = plan->initial_state;
  if (plan->initial_state.empty()) {
    const json dut = recorded.value("dut", json::object());
    std::cerr << "tpmlab: note: the run was on " << dut.value("label", std::string("a real chip"))
              << ", which has no emulator state to start from; the replay runs on a newly manufactured "
                 "emulated chip, so alarms about that chip (its EK, firmware version, clock) may differ\n";
  }
  options.unix_sockets = args.unix_sockets;
  options.stop = &g_stop;
  if (!args.quiet && !args.json && ::isatty(STDERR_FILENO)) {
    const int total = plan->recorded_steps;
    options.on_step = [total](const StepResult& r, int) {
      std::set<std::string> codes;
      for (const auto& a : r.alarms) codes.insert(a.code);
      std::fprintf(stderr, "%s %-12s %-11s %-6s %s\n", StepProgressPrefix(r.index, total).c_str(), r.action.c_str(),
                   r.kind.c_str(), r.status.c_str(),
                   codes.empty() ? "-" : Join(std::vector<std::string>(codes.begin(), codes.end())).c_str());
    };
  }
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  const auto started = std::chrono::steady_clock::now();
  auto result = RunScenario(plan->scenario, options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (!result.ok()) {
    std::cerr << "tpmlab: the replay could not run: " << result.status().ToString() << "\n";
    return ExitFor(result.status());
  }
  if (result->status == RunStatus::kInterrupted) return kExitInterrupted;
  if (result->status == RunStatus::kError && recorded.value("status", "") != "error") {
    std::cerr << "tpmlab: the replay could not complete: " << result->error << "\n";
    return kExitRunError;
  }
  const int replayed_steps = static_cast<int>(result->steps.size());
  const bool stopped_at_recorded = replayed_steps == plan->recorded_steps && scenario_steps > plan->recorded_steps;

  json replayed = json::array();
  for (const auto& s : result->steps) replayed.push_back(StepToJson(s));
  std::vector<StepComparison> rows;
  try {
    rows = CompareRunSteps(recorded["steps"], replayed);
  } catch (const json::exception& e) {  // a run.json edited into another shape
    std::cerr << "tpmlab: " << args.bundle << ": member 'run.json': its steps are not what tpmlab writes: " << e.what()
              << "\n";
    return kExitUsage;
  }
  const auto differences = std::count_if(rows.begin(), rows.end(), [](const StepComparison& r) { return !r.same(); });
  const bool matches = differences == 0;
  if (args.json) {
    std::cout << json({{"bundle", args.bundle},
                       {"scenario", plan->scenario.name},
                       {"seed", result->seed},
                       {"matches", matches},
                       {"differences", differences},
                       {"recorded_steps", plan->recorded_steps},
                       {"replayed_steps", replayed_steps},
                       {"stopped_at_recorded_steps", stopped_at_recorded},
                       {"replay_status", RunStatusName(result->status)},
                       {"replay_seconds", seconds},
                       {"replay_run", result->run_json.string()},
                       {"steps", ComparisonToJson(rows)}})
                     .dump(2)
              << "\n";
  } else {
    std::printf("tpmlab replay: %s, seed %llu: %d steps recorded, %d replayed in %.1f s\n",
                plan->scenario.name.c_str(), static_cast<unsigned long long>(result->seed), plan->recorded_steps,
                replayed_steps, seconds);
    if (stopped_at_recorded) {
      std::printf("stopped at the recorded %d steps (the scenario runs %d; the recorded run stopped early)\n",
                  plan->recorded_steps, scenario_steps);
    }
    PrintTable(rows);
    if (matches) {
      std::printf("replay matches: the same alarms, PCRs, event logs and counters at the same %zu steps\n",
                  rows.size());
    } else {
      std::printf("replay differs at %ld of %zu steps\n", static_cast<long>(differences), rows.size());
    }
    const auto timing = std::count_if(rows.begin(), rows.end(), [](const StepComparison& r) { return !r.timing.empty(); });
    if (timing > 0) {
      std::printf("  %ld steps differ in safe / CLOCK_NOT_SAFE after a power loss: when libtpms saved its clock, "
                  "not counted\n",
                  static_cast<long>(timing));
    }
    std::printf("  replay run: %s\n", result->run_json.string().c_str());
  }
  return matches ? kExitPassed : kExitFailed;
}

}  // namespace

std::vector<Command> AddBundleCommands(CLI::App& app) {
  auto run = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto* bundle = app.add_subcommand("bundle", "Pack a run into one .tar.gz that `tpmlab replay` runs again");
  bundle->add_option("RUN", *run, "Run folder, or its run.json")->required();
  bundle->add_option("-o,--out", *out, "Bundle file (default RUNFOLDER.tar.gz here)");

  auto a = std::make_shared<ReplayArgs>();
  auto* replay = app.add_subcommand(
      "replay", "Run a bundle again from its recorded chip state and seed; exit 1 when the alarms differ");
  replay->add_option("BUNDLE", a->bundle, "A bundle written by `tpmlab bundle`")->required();
  replay->add_option("-o,--out", a->out_dir, "Folder for the unpacked bundle and the new run (default tpmlab-runs/replay-NAME-TIME)");
  replay->add_flag("--json", a->json, "The comparison as JSON on stdout");
  replay->add_flag("--unix-sockets", a->unix_sockets, "Talk to swtpm over unix sockets instead of loopback TCP");
  replay->add_flag("-q,--quiet", a->quiet, "No progress lines");
  return {{bundle, [run, out] { return Bundle(*run, *out); }}, {replay, [a] { return Replay(*a); }}};
}

}  // namespace tpmlab::cli
