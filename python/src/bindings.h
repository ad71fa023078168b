// Shared by the tpmlab._core registrars: how a Status becomes a Python
// exception (thrown here, translated in register_errors.cc, nowhere else),
// and the C++ objects Python holds.
#pragma once

#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>
#include <vector>
#include <utility>

#include "drivers/status.h"
#include "harness/snapshot.h"
#include "harness/runner.h"
#include "harness/store.h"

namespace tpmlab::python {

namespace py = pybind11;

// A Status on its way to Python; register_errors.cc's translator turns it
// into the exception class of its layer.
class StatusError : public std::runtime_error {
 public:
  explicit StatusError(Status status)
      : std::runtime_error(status.ToString()), status_(std::move(status)) {}
  const Status& status() const { return status_; }

 private:
  Status status_;
};

inline void ThrowIfError(const Status& status) {
  if (!status.ok()) throw StatusError(status);
}

template <typename T>
T Unwrap(Result<T> result) {
  if (!result.ok()) throw StatusError(result.status());
  return std::move(result).value();
}

// run.json's form of one step, without its snapshot (Python gets that as a
// Snapshot object beside it).
std::string StepToJsonText(const StepResult& step);

// A run's steps as [(step JSON, Snapshot or None)] (the snapshots moved out),
// and its summary as the JSON tpmlab.RunResult reads (register_session.cc).
py::list StepsToPython(std::vector<StepResult>& steps);
std::string RunResultToJson(const RunResult& result);

void RegisterErrors(py::module_& m);
void RegisterResults(py::module_& m);   // Snapshot, EventLog, diff
void RegisterSession(py::module_& m);   // Session, run_scenario
void RegisterScenario(py::module_& m);  // loading and checking scenario text
void RegisterBench(py::module_& m);     // bench files: load, check
void RegisterFleet(py::module_& m);     // run_fleet: a scenario on many DUTs at once

}  // namespace tpmlab::python
