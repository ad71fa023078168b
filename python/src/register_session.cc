// Runs: a Session driven one step at a time, and whole scenarios. The GIL is
// released around everything that talks to a TPM (open, execute, finish,
// run), so DUTs in different threads progress together; one Session is
// driven by one thread at a time (its mutex).
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <cstdio>
#include <mutex>

#include "bindings.h"
#include "harness/runner.h"
#include "harness/snapshot_json.h"
#include "harness/verify.h"

namespace tpmlab::python {
namespace {

using json = nlohmann::json;

// Paths come as text: "" means none (a std::filesystem::path default would
// round-trip through pathlib as ".").
RunOptions MakeOptions(const std::filesystem::path& out_dir, const std::string& database,
                       std::optional<uint64_t> seed, bool keep_state, const std::string& dut_name,
                       const std::string& initial_state, bool unix_sockets, const std::string& bench) {
  RunOptions o;
  if (!bench.empty()) o.bench = Unwrap(LoadBench(bench));
  o.out_dir = out_dir;
  o.database = database.empty() ? DefaultDatabase(out_dir) : database;
  o.seed = seed;
  o.keep_state = keep_state;
  o.dut_name = dut_name;
  o.initial_state = initial_state;
  o.unix_sockets = unix_sockets;
  return o;
}

class PySession {
 public:
  explicit PySession(std::unique_ptr<Session> session) : session_(std::move(session)) {}

  py::list Execute(const Scenario& steps, size_t index) {
    if (index >= steps.steps.size()) throw StatusError(Status::Error(Layer::kHarness, "no step at that index"));
    std::vector<StepResult> results;
    {
      py::gil_scoped_release release;
      std::lock_guard lock(mu_);
      results = Live().Execute(steps.steps[index]);
    }
    return StepsToPython(results);
  }

  std::string Finish() {
    py::gil_scoped_release release;
    std::lock_guard lock(mu_);
    if (!result_) result_ = RunResultToJson(Live().Finish());
    return *result_;
  }

  // Finishes and stops the emulator.
  std::string Close() {
    std::string out = Finish();
    py::gil_scoped_release release;
    std::lock_guard lock(mu_);
    session_.reset();
    return out;
  }

  bool ended() {
    std::lock_guard lock(mu_);
    return !session_ || session_->ended();
  }
  bool closed() {
    std::lock_guard lock(mu_);
    return !session_;
  }

 private:
  Session& Live() {
    if (!session_) throw StatusError(Status::Error(Layer::kHarness, "the DUT is closed"));
    return *session_;
  }
  std::mutex mu_;
  std::unique_ptr<Session> session_;
  std::optional<std::string> result_;
};

}  // namespace

py::list StepsToPython(std::vector<StepResult>& steps) {
  py::list out;
  for (auto& s : steps) {
    py::object snapshot = s.snapshot ? py::cast(std::move(*s.snapshot)) : py::object(py::none());
    s.snapshot.reset();
    out.append(py::make_tuple(StepToJsonText(s), snapshot));
  }
  return out;
}

std::string RunResultToJson(const RunResult& r) {
  json expectations = json::array();
  for (const auto& e : r.expectations) {
    expectations.push_back({{"step", e.step}, {"where", e.where}, {"name", e.name}, {"passed", e.passed},
                            {"detail", e.detail}});
  }
  return json({{"status", RunStatusName(r.status)},
               {"run_id", r.run_id},
               {"seed", r.seed},
               {"run_json", r.run_json.string()},
               {"error", r.error},
               {"expectations", expectations},
               {"expected_failures", r.expected_failures}})
      .dump();
}

// The runner's own step JSON; the snapshot goes to Python as an object.
std::string StepToJsonText(const StepResult& s) {
  return StepToJson(s, /*with_snapshot=*/false).dump();
}

void RegisterSession(py::module_& m) {
  py::class_<PySession>(m, "Session", "A run driven one step at a time (private; tpmlab.Dut wraps it)")
      .def_static("open",
                  [](Scenario scenario, const std::filesystem::path& out_dir, const std::string& database,
                     std::optional<uint64_t> seed, bool keep_state, const std::string& dut_name,
                     const std::string& initial_state, bool unix_sockets, const std::string& bench) {
                    RunOptions o = MakeOptions(out_dir, database, seed, keep_state, dut_name, initial_state,
                                               unix_sockets, bench);
                    Result<std::unique_ptr<Session>> session = [&] {
                      py::gil_scoped_release release;
                      return Session::Open(std::move(scenario), std::move(o));
                    }();
                    return std::make_unique<PySession>(Unwrap(std::move(session)));
                  },
                  py::arg("scenario"), py::arg("out_dir"), py::arg("database") = "",
                  py::arg("seed") = std::nullopt, py::arg("keep_state") = false, py::arg("dut_name") = "dut0",
                  py::arg("initial_state") = "", py::arg("unix_sockets") = false, py::arg("bench") = "")
      .def("execute", &PySession::Execute, py::arg("steps"), py::arg("index"),
           "Runs steps.steps[index]; returns [(step JSON, Snapshot or None)]")
      .def("finish", &PySession::Finish, "Ends the run (run.json, junit.xml); returns the RunResult as JSON")
      .def("close", &PySession::Close, "Finishes and stops the emulator")
      .def_property_readonly("ended", &PySession::ended)
      .def_property_readonly("closed", &PySession::closed);

  m.def("run_scenario",
        [](const Scenario& scenario, const std::filesystem::path& out_dir, const std::string& database,
           std::optional<uint64_t> seed, bool keep_state, const std::string& dut_name,
           const std::string& initial_state, bool unix_sockets, const std::string& bench) {
          RunOptions o = MakeOptions(out_dir, database, seed, keep_state, dut_name, initial_state, unix_sockets,
                                     bench);
          Result<RunResult> result = [&] {
            py::gil_scoped_release release;
            return RunScenario(scenario, o);
          }();
          RunResult r = Unwrap(std::move(result));
          std::string summary = RunResultToJson(r);
          // The run kept no steps: they are read back from its database here.
          std::vector<StepResult> steps;
          {
            py::gil_scoped_release release;
            steps = r.steps.Load();
          }
          if (!r.steps.load_error().ok()) throw StatusError(r.steps.load_error());
          return py::make_tuple(summary, StepsToPython(steps));
        },
        py::arg("scenario"), py::arg("out_dir"), py::arg("database") = "",
        py::arg("seed") = std::nullopt, py::arg("keep_state") = false, py::arg("dut_name") = "dut0",
        py::arg("initial_state") = "", py::arg("unix_sockets") = false, py::arg("bench") = "",
        "RunScenario; returns (RunResult JSON, [(step JSON, Snapshot or None)])");
}

}  // namespace tpmlab::python
