// Report: one self-contained HTML file showing what a stored run did — its
// alarms over the steps, which PCR moved on which boot and why, the TPM's
// counters and clock, command latency, expectations and faults. The model is
// built by streaming the run's steps (one in memory at a time) into
// aggregates whose size does not grow with the run: series are bucketed to at
// most ReportLimits::points points, lists are capped and say how many they
// left out. The HTML embeds the model as JSON, Chart.js and a small script;
// it fetches nothing (its Content-Security-Policy forbids it).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "harness/store.h"

namespace tpmlab {

struct ReportLimits {
  int points = 1000;           // per series: steps are bucketed beyond this
  int alarms_per_code = 50;    // alarms listed with their evidence, per code
  int grid_boots = 2000;       // boots with a moved PCR kept in the grid
  int drifts = 500;            // distinct event-level drifts kept
  int events_per_drift = 200;  // event changes kept per drift
  int notes = 500;             // faults, firmware changes, failed checks listed
};

struct ReportOptions {
  // The run's folder, when the report is about one: its files are linked,
  // relative to `output_dir` (where the report is written).
  std::filesystem::path run_dir;
  std::filesystem::path output_dir;
  ReportLimits limits;
  // Called every few hundred steps with (steps read, steps in the run).
  std::function<void(int, int)> progress;
};

/// The report's data: {run, steps, series, latency, alarms, grid, causes,
/// expectations, checks, notes, files, limits}. Reads the run's steps once.
Result<nlohmann::json> BuildReportModel(Store& store, int64_t run_id, const ReportOptions& options = {});

/// Where Chart.js is read from: $TPMLAB_CHART_JS, else Debian's
/// libjs-chart.js (/usr/share/javascript/chart.js/chart.min.js).
std::filesystem::path ChartJsPath();
/// Chart.js's source; a missing file is a missing package (libjs-chart.js).
Result<std::string> LoadChartJs();

/// The whole HTML page for a model, with `chart_js` inlined.
std::string RenderReportHtml(const nlohmann::json& model, const std::string& chart_js);

}  // namespace tpmlab
