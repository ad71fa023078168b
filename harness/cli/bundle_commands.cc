// tpmlab bundle / replay: a run packed into one file, and that file run again
// on a fresh emulated DUT, started from the recorded chip state with the
// recorded seed, to check the same alarms come up at the same steps.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "commands.h"
#include "exit_codes.h"
#include "harness/bundle.h"
#include "harness/runner.h"
#include "harness/scenario_yaml.h"

namespace tpmlab::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

// A bundle's own faults are bad input (2); anything else kept it from being
// read or written (3).
int ExitForBundle(const Status& s) { return s.layer() == Layer::kParse ? kExitUsage : kExitRunError; }

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

// What one step alarmed, for comparison: its action and sorted alarm codes.
struct StepAlarms {
  std::string action;
  std::string kind;
  std::vector<std::string> codes;
};

std::map<int, StepAlarms> AlarmsOf(const json& steps) {
  std::map<int, StepAlarms> out;
  for (const auto& s : steps) {
    StepAlarms a{s.value("action", ""), s.value("kind", ""), {}};
    for (const auto& alarm : s.value("alarms", json::array())) a.codes.push_back(alarm.value("code", ""));
    std::sort(a.codes.begin(), a.codes.end());
    out[s.value("index", -1)] = std::move(a);
  }
  return out;
}

std::map<int, StepAlarms> AlarmsOf(const std::vector<StepResult>& steps) {
  std::map<int, StepAlarms> out;
  for (const auto& s : steps) {
    StepAlarms a{s.action, s.kind, {}};
    for (const auto& alarm : s.alarms) a.codes.push_back(alarm.code);
    std::sort(a.codes.begin(), a.codes.end());
    out[s.index] = std::move(a);
  }
  return out;
}

std::string Join(const std::vector<std::string>& codes) {
  if (codes.empty()) return "-";
  std::string s;
  for (const auto& c : codes) s += (s.empty() ? "" : ",") + c;
  return s;
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
  auto bad = [&](const std::string& what) {
    std::cerr << "tpmlab: " << args.bundle << ": " << what << "\n";
    return kExitUsage;
  };
  auto manifest = ReadBundleManifest(unpacked);
  if (!manifest.ok()) return bad(manifest.status().message());
  std::ifstream in(unpacked / "run.json");
  const json recorded = json::parse(in, nullptr, false);
  if (recorded.is_discarded() || !recorded.contains("steps") || !recorded["steps"].is_array()) {
    return bad("member 'run.json' is not a tpmlab run.json");
  }
  const json inputs = recorded.value("inputs", json::object());
  const std::string scenario_file = manifest->value("scenario_file", "");
  const std::string initial_state = manifest->value("initial_state", "");
  if (scenario_file.empty()) return bad("bundle.json names no scenario");
  auto scenario = LoadScenarioFile(unpacked / scenario_file);
  if (!scenario.ok()) return bad("member '" + scenario_file + "': " + scenario.status().message());
  if (inputs.contains("cycles") && inputs["cycles"].is_number_integer()) {  // tpmlab run --cycles N
    Status s = OverrideCycles(*scenario, inputs["cycles"].get<int>());
    if (!s.ok()) return bad("member 'run.json': cycles: " + s.message());
  }
  const int recorded_steps = static_cast<int>(recorded["steps"].size());
  if (recorded_steps != CountSteps(scenario->steps) && recorded.value("status", "") != "error" &&
      recorded.value("status", "") != "interrupted") {
    std::cerr << "tpmlab: note: the recorded run has " << recorded_steps << " steps, the bundled scenario "
              << CountSteps(scenario->steps) << " (was it run with --cycles? its run.json does not say)\n";
  }

  RunOptions options;
  options.out_dir = out / "run";
  options.database = options.out_dir / "tpmlab.db";
  options.seed = recorded.contains("seed") ? recorded["seed"].get<uint64_t>() : manifest->value("seed", uint64_t{0});
  if (!initial_state.empty()) {
    options.initial_state = unpacked / initial_state;
  } else {
    const json dut = recorded.value("dut", json::object());
    std::cerr << "tpmlab: note: the run was on " << dut.value("label", std::string("a real chip"))
              << ", which has no emulator state to start from; the replay runs on a newly manufactured "
                 "emulated chip, so alarms about that chip (its EK, firmware version, clock) may differ\n";
  }
  options.unix_sockets = args.unix_sockets;
  options.stop = &g_stop;
  if (!args.quiet && !args.json && ::isatty(STDERR_FILENO)) {
    options.on_step = [](const StepResult& r, int total) {
      std::fprintf(stderr, "%s %-12s %-11s %-6s %s\n", StepProgressPrefix(r.index, total).c_str(), r.action.c_str(), r.kind.c_str(),
                   r.status.c_str(), Join(AlarmsOf(std::vector<StepResult>{r})[r.index].codes).c_str());
    };
  }
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  const auto started = std::chrono::steady_clock::now();
  auto result = RunScenario(*scenario, options);
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

  // Step by step: same action, same alarm codes.
  const auto before = AlarmsOf(recorded["steps"]);
  const auto after = AlarmsOf(result->steps);
  std::set<int> indices;
  for (const auto& [i, a] : before) indices.insert(i);
  for (const auto& [i, a] : after) indices.insert(i);
  json rows = json::array();
  int differences = 0;
  for (int i : indices) {
    const auto b = before.find(i);
    const auto a = after.find(i);
    const bool same = b != before.end() && a != after.end() && b->second.action == a->second.action &&
                      b->second.codes == a->second.codes;
    differences += same ? 0 : 1;
    const StepAlarms& any = b != before.end() ? b->second : a->second;
    json row = {{"index", i}, {"action", any.action}, {"same", same}};
    if (!any.kind.empty()) row["kind"] = any.kind;
    row["recorded"] = b != before.end() ? json(b->second.codes) : json(nullptr);
    row["replayed"] = a != after.end() ? json(a->second.codes) : json(nullptr);
    if (b != before.end() && a != after.end() && b->second.action != a->second.action) {
      row["replayed_action"] = a->second.action;
    }
    rows.push_back(std::move(row));
  }
  const bool matches = differences == 0;
  if (args.json) {
    std::cout << json({{"bundle", args.bundle},
                       {"scenario", scenario->name},
                       {"seed", result->seed},
                       {"matches", matches},
                       {"differences", differences},
                       {"replay_seconds", seconds},
                       {"replay_run", result->run_json.string()},
                       {"steps", rows}})
                     .dump(2)
              << "\n";
  } else {
    std::printf("tpmlab replay: %s, seed %llu: %zu steps recorded, %zu replayed in %.1f s\n", scenario->name.c_str(),
                static_cast<unsigned long long>(result->seed), before.size(), after.size(), seconds);
    std::printf("%5s  %-24s %-30s %-30s %s\n", "step", "action", "recorded", "replayed", "");
    for (const auto& r : rows) {
      std::string action = r["action"].get<std::string>();
      if (r.contains("kind")) action += " " + r["kind"].get<std::string>();
      if (r.contains("replayed_action")) action += " / " + r["replayed_action"].get<std::string>();
      auto codes = [](const json& c) { return c.is_null() ? std::string("(no step)") : Join(c); };
      std::printf("%5d  %-24s %-30s %-30s %s\n", r["index"].get<int>(), action.c_str(), codes(r["recorded"]).c_str(),
                  codes(r["replayed"]).c_str(), r["same"].get<bool>() ? "same" : "DIFFERENT");
    }
    if (matches) {
      std::printf("replay matches: the same alarms at the same %zu steps\n", indices.size());
    } else {
      std::printf("replay differs at %d of %zu steps\n", differences, indices.size());
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
