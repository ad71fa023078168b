// tpmlab._core: the private extension under the tpmlab package. It only
// builds the module; each area registers itself (register_*.cc).
#include "bindings.h"
#include "harness/version.h"

PYBIND11_MODULE(_core, m) {
  namespace py = pybind11;
  m.doc() = "tpmlab's C++ harness for Python (private; use the tpmlab package)";
  m.attr("version") = tpmlab::kTpmlabVersion;
  tpmlab::python::RegisterErrors(m);
  tpmlab::python::RegisterResults(m);
  tpmlab::python::RegisterScenario(m);
  tpmlab::python::RegisterSession(m);
  tpmlab::python::RegisterBench(m);
  tpmlab::python::RegisterFleet(m);
}
