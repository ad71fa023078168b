// tpmlab compare A B: two stored runs side by side for a qualification
// (firmware A and B, two DUTs, two boots of one run): a verdict line per
// area, the whole model with --json, an offline HTML page with -o.
//
// Exit: 0 the PCRs are the same and no area regressed (alarms only in A,
// counters differing without breaking a rule, commands faster: still 0);
// 1 the PCRs differ or an area regressed (an alarm only in B, a counter
// that went back only in B, a command slower past the threshold, an
// expectation failing only in B), as `tpmlab diff` exits 1 for snapshots
// that differ; 2 bad input (names the source); 3 the store failed.
#include <fstream>
#include <iostream>
#include <memory>

#include "commands.h"
#include "exit_codes.h"
#include "harness/compare.h"
#include "harness/report.h"

namespace tpmlab::cli {
namespace {

struct CompareArgs {
  std::string a, b, html;
  double threshold = 1.25;
  double min_delta_ms = 1.0;
  std::optional<int> a_step, b_step;
  bool json = false;
};

std::string RunLine(const nlohmann::json& h) {
  std::string firmware;
  for (const auto& f : h.value("firmware", nlohmann::json::array())) {
    firmware += (firmware.empty() ? "" : " -> ") + f.get<std::string>();
  }
  return h.value("label", "") + ": run " + std::to_string(h.value("run_id", int64_t{0})) + " of " +
         h.value("database", "") + " (" + h.value("scenario", "") + ", seed " +
         std::to_string(h.value("seed", uint64_t{0})) + ", " + h.value("dut", "") +
         (firmware.empty() ? "" : ", firmware " + firmware) + ", " + h.value("status", "") + ")";
}

int Compare(const CompareArgs& args) {
  CompareOptions options;
  options.threshold = args.threshold;
  options.min_delta_us = args.min_delta_ms * 1000.0;
  options.a_step = args.a_step;
  options.b_step = args.b_step;
  auto comparison = CompareRuns(args.a, args.b, options);
  if (!comparison.ok()) {
    std::cerr << "tpmlab: compare: " << comparison.status().message() << "\n";
    return ExitFor(comparison.status());
  }
  if (!args.html.empty()) {
    // Without Chart.js the page still has every table, only not the chart.
    auto chart_js = LoadChartJs();
    std::ofstream out(args.html, std::ios::binary | std::ios::trunc);
    out << ComparisonToHtml(*comparison, chart_js.ok() ? *chart_js : "");
    if (!out) {
      std::cerr << "tpmlab: compare: cannot write " << args.html << "\n";
      return kExitUsage;
    }
  }
  if (args.json) {
    std::cout << ComparisonToJson(*comparison).dump(2) << "\n";
  } else {
    std::cout << RunLine(comparison->a) << "\n" << RunLine(comparison->b) << "\n";
    for (const auto& v : comparison->verdicts) std::cout << v.line << "\n";
    if (!args.html.empty()) std::cout << "report: " << args.html << "\n";
  }
  return comparison->differs() ? kExitFailed : kExitPassed;
}

}  // namespace

int CompareRunsCommand(const std::string& a, const std::string& b, const std::string& html) {
  CompareArgs args;
  args.a = a;
  args.b = b;
  args.html = html;
  return Compare(args);
}

Command AddCompareCommand(CLI::App& app) {
  auto a = std::make_shared<CompareArgs>();
  auto* cmd = app.add_subcommand(
      "compare", "Compare two stored runs (firmware A and B, two DUTs): PCRs that differ and why, alarms, counters, "
                 "latency, expectations; exit 1 when the PCRs differ or an area regressed");
  cmd->add_option("A", a->a, "The reference run: RUN_DIR, RUN_DIR/run.json or DB[:RUN]")->required();
  cmd->add_option("B", a->b, "The run judged against it, named the same ways")->required();
  cmd->add_option("--threshold", a->threshold,
                  "A command regressed when B's p50 or p90 latency is this many times A's (default 1.25)")
      ->check(CLI::Range(1.0, 1000.0));
  cmd->add_option("--min-delta-ms", a->min_delta_ms,
                  "... and slower by at least this much (default 1 ms: emulator jitter is no regression)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--a-step", a->a_step, "Compare A's PCRs at this step's snapshot (default: its last)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--b-step", a->b_step, "Compare B's PCRs at this step's snapshot (default: its last)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", a->json, "Print the whole comparison as JSON instead of the verdict lines");
  cmd->add_option("-o,--out", a->html, "Also write a self-contained HTML page (opens offline)");
  return {cmd, [a] { return Compare(*a); }};
}

}  // namespace tpmlab::cli
