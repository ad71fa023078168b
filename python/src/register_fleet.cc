// A scenario on many DUTs at once from Python: harness/fleet.h's RunFleet,
// the same as tpmlab run --duts / several --bench. The GIL is released while
// the DUTs run; Ctrl-C (KeyboardInterrupt) stops every DUT between steps and
// is raised once each has stored what it finished.
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "bindings.h"
#include "harness/fleet.h"

namespace tpmlab::python {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// A DUT that did not start, as tpmlab.RunResult reads a run: status error.
std::string NotStartedJson(const FleetMemberResult& m, uint64_t seed) {
  std::error_code ec;
  const fs::path run_json = m.out_dir / "run.json";
  return json({{"status", "error"},
               {"run_id", m.run_id().value_or(0)},
               {"seed", seed},
               {"run_json", fs::exists(run_json, ec) ? run_json.string() : std::string()},
               {"error", "the run could not start: " + m.start_error.ToString()},
               {"expectations", json::array()},
               {"expected_failures", json::array()}})
      .dump();
}

// Runs the fleet on another thread while this one, holding the GIL only for
// a moment every 100 ms, watches for Ctrl-C.
FleetResult RunWatchingSignals(const Scenario& scenario, std::vector<FleetMember> members,
                               std::atomic<bool>& stop, bool& interrupted) {
  FleetResult fleet;
  std::atomic<bool> done{false};
  std::thread runner([&] {
    fleet = RunFleet(scenario, std::move(members));
    done = true;
  });
  {
    py::gil_scoped_release release;
    while (!done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (done || interrupted) continue;
      py::gil_scoped_acquire acquire;
      if (PyErr_CheckSignals() != 0) {
        // Raised once the runs have ended (each writes run.json as interrupted).
        interrupted = true;
        stop = true;
      }
    }
    runner.join();
  }
  return fleet;
}

}  // namespace

void RegisterFleet(py::module_& m) {
  m.def(
      "run_fleet",
      [](const Scenario& scenario, const fs::path& out_dir, const std::string& database, std::optional<uint64_t> seed,
         bool keep_state, int count, const std::vector<std::string>& benches) {
        std::vector<std::optional<Bench>> loaded;
        std::vector<std::string> bench_names;
        for (const auto& file : benches) {
          // "": the embedded default (tpmlab.Bench("emulated") has no file).
          loaded.push_back(file.empty() ? std::nullopt : std::optional<Bench>(Unwrap(LoadBench(file))));
          bench_names.push_back(file.empty() ? "emulated" : loaded.back()->name);
        }
        const std::vector<std::string> names = FleetDutNames(static_cast<size_t>(count), bench_names);
        const fs::path db = database.empty() ? DefaultDatabase(out_dir) : database;
        std::atomic<bool> stop{false};
        std::vector<FleetMember> members;
        for (size_t i = 0; i < names.size(); ++i) {
          FleetMember member;
          member.name = names[i];
          RunOptions& o = member.options;
          o.out_dir = out_dir / names[i];
          o.database = db;
          o.seed = seed;
          o.keep_state = keep_state;
          o.dut_name = names[i];
          if (i < loaded.size()) o.bench = loaded[i];
          o.stop = &stop;
          members.push_back(std::move(member));
        }
        bool interrupted = false;
        FleetResult fleet = RunWatchingSignals(scenario, std::move(members), stop, interrupted);
        const uint64_t used_seed = seed.value_or(scenario.seed);
        ThrowIfError(WriteFleetJson(out_dir / "fleet.json", scenario, used_seed, db, fleet));
        if (interrupted) throw py::error_already_set();
        py::list results;
        for (auto& member : fleet.members) {
          std::string summary = member.run ? RunResultToJson(*member.run) : NotStartedJson(member, used_seed);
          // The run keeps no steps; they are read back from its database.
          std::vector<StepResult> steps_read;
          if (member.run) steps_read = member.run->steps.Load();
          py::list steps = StepsToPython(steps_read);
          results.append(py::make_tuple(member.name, member.out_dir, summary, steps));
        }
        json totals = {{"seconds", fleet.seconds},
                       {"verified_cycles", fleet.verified_cycles()},
                       {"verified_cycles_per_second", fleet.verified_cycles_per_second()},
                       {"fleet_json", (out_dir / "fleet.json").string()}};
        return py::make_tuple(totals.dump(), results);
      },
      py::arg("scenario"), py::arg("out_dir"), py::arg("database") = "", py::arg("seed") = std::nullopt,
      py::arg("keep_state") = false, py::arg("count") = 0, py::arg("benches") = std::vector<std::string>{},
      "RunFleet: `count` emulated DUTs, or one per bench file (\"\": the embedded default); returns "
      "(totals JSON, [(name, out_dir, RunResult JSON, [(step JSON, Snapshot or None)])])");
}

}  // namespace tpmlab::python
