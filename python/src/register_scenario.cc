// Scenario text → the C++ model, checked as the CLI checks it. Python builds
// scenarios and single steps as YAML (JSON is YAML) and loads them here, so
// one loader validates everything and reports file:line:column.
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include "bindings.h"
#include "harness/scenario.h"
#include "harness/scenario_yaml.h"

namespace tpmlab::python {
namespace {

// A step built in Python is named by its Python caller ("test_x.py:42"), not
// by the line of the YAML text it was written to; nested steps too.
void Relocate(Step& step, const std::string& label) {
  step.where = SourceLocation{label, 0, 0};
  if (auto* repeat = std::get_if<RepeatStep>(&step.action)) {
    for (auto& s : repeat->steps) Relocate(s, label);
  } else if (auto* choose = std::get_if<ChooseStep>(&step.action)) {
    for (auto& s : choose->steps) Relocate(s, label);
  }
}

}  // namespace

void RegisterScenario(py::module_& m) {
  py::class_<Scenario>(m, "Scenario", "A loaded scenario (private; tpmlab.Scenario builds one)")
      .def_readonly("name", &Scenario::name)
      .def_readonly("description", &Scenario::description)
      .def_readonly("seed", &Scenario::seed)
      .def_readonly("file", &Scenario::file)
      .def_readonly("text", &Scenario::text)
      .def_property_readonly("step_count", [](const Scenario& s) { return CountSteps(s.steps); })
      .def_property_readonly("top_level_steps", [](const Scenario& s) { return s.steps.size(); })
      .def_property_readonly("firmware", [](const Scenario& s) -> py::object {
        if (!s.platform.firmware) return py::none();
        return py::str(s.platform.firmware->name);
      })
      .def("relocate_step",
           [](Scenario& s, size_t index, const std::string& label) {
             if (index >= s.steps.size()) throw StatusError(Status::Error(Layer::kHarness, "no step at that index"));
             Relocate(s.steps[index], label);
           },
           py::arg("index"), py::arg("label"), "Names steps[index] (and its nested steps) by `label` in results")
      .def("override_cycles", [](Scenario& s, int cycles) { ThrowIfError(OverrideCycles(s, cycles)); })
      .def("__repr__", [](const Scenario& s) {
        return "<_core.Scenario " + s.name + ": " + std::to_string(CountSteps(s.steps)) + " steps>";
      });

  m.def("load_scenario_text", [](const std::string& text, const std::string& file_name) {
    return Unwrap(LoadScenarioText(text, file_name));
  }, py::arg("text"), py::arg("file_name"),
     "Loads scenario YAML; `file_name` names it in errors and is where firmware models are resolved from");
  m.def("load_scenario_file", [](const std::filesystem::path& file) { return Unwrap(LoadScenarioFile(file)); },
        py::arg("file"));
}

}  // namespace tpmlab::python
