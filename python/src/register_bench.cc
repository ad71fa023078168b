// Bench files for Python: load (validated as `tpmlab bench check` does) and
// probe this machine for the bench's parts.
#include "bindings.h"
#include "harness/bench.h"

namespace tpmlab::python {

namespace {

const char* ProbeStateName(ProbeState state) {
  switch (state) {
    case ProbeState::kPresent: return "present";
    case ProbeState::kMissing: return "missing";
    case ProbeState::kUnknown: return "unknown";
  }
  return "unknown";
}

}  // namespace

void RegisterBench(py::module_& m) {
  m.def("load_bench",
        [](const std::string& file) { return BenchSummaryJson(Unwrap(LoadBench(file))); },
        py::arg("file"), "Loads a bench file; returns what it says as JSON (ScenarioError at file:line:col)");
  m.def("load_bench_text",
        [](const std::string& text, const std::string& name) { return BenchSummaryJson(Unwrap(ParseBench(text, name))); },
        py::arg("text"), py::arg("name"), "Parses bench text; returns what it says as JSON");
  m.def("check_bench",
        [](const std::string& file) {
          const Bench bench = Unwrap(LoadBench(file));
          std::vector<ProbeItem> items;
          {
            py::gil_scoped_release release;
            items = ProbeBenchHere(bench);
          }
          py::list out;
          for (const auto& item : items) out.append(py::make_tuple(item.part, ProbeStateName(item.state), item.detail));
          return out;
        },
        py::arg("file"), "Looks for each part of a bench on this machine: [(part, state, detail)]");
}

}  // namespace tpmlab::python
