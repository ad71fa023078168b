// Status → exception, in one place. One class per layer under TpmlabError;
// each carries the layer's details as attributes: TpmError.rc,
// ParseError.offset, ScenarioError.file/.line/.column (from the
// "file:line:col: message" every scenario error starts with).
#include <Python.h>

#include <optional>
#include <regex>

#include "bindings.h"

namespace tpmlab::python {
namespace {

struct ErrorClasses {
  PyObject* base = nullptr;
  PyObject* tpm = nullptr;
  PyObject* transport = nullptr;
  PyObject* emulator = nullptr;
  PyObject* missing = nullptr;
  PyObject* parse = nullptr;
  PyObject* scenario = nullptr;
  PyObject* store = nullptr;
};
ErrorClasses classes;

PyObject* NewClass(py::module_& m, const char* name, PyObject* base, const char* doc) {
  const std::string qualified = std::string("tpmlab.") + name;
  PyObject* cls = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, base, nullptr);
  if (cls == nullptr) throw py::error_already_set();
  m.add_object(name, py::handle(cls));  // the module keeps the reference
  return cls;
}

PyObject* ClassFor(const Status& status) {
  switch (status.layer()) {
    case Layer::kTpm: return classes.tpm;
    case Layer::kTransport: return classes.transport;
    case Layer::kEmulator: return classes.emulator;
    case Layer::kEnvironment: return classes.missing;
    case Layer::kParse: return classes.parse;
    case Layer::kScenario: return classes.scenario;
    case Layer::kStore: return classes.store;
    default: return classes.base;
  }
}

// "dir/x.yaml:12:5: unknown key" → (file, 12, 5); the file may contain ':'.
void SetScenarioLocation(py::object& exc, const std::string& message) {
  static const std::regex where(R"(^(.*?):(\d+):(\d+): )");
  std::smatch m;
  if (std::regex_search(message, m, where)) {
    exc.attr("file") = m[1].str();
    exc.attr("line") = std::stoi(m[2].str());
    exc.attr("column") = std::stoi(m[3].str());
  }
}

// A byte offset named in a parse message ("at byte 42", "offset 0x2a").
std::optional<uint64_t> OffsetInMessage(const std::string& message) {
  static const std::regex offset(R"((?:byte|offset)\s+(0x[0-9a-fA-F]+|\d+))");
  std::smatch m;
  if (!std::regex_search(message, m, offset)) return std::nullopt;
  return std::stoull(m[1].str(), nullptr, 0);
}

void Raise(const Status& status) {
  PyObject* cls = ClassFor(status);
  py::object exc = py::reinterpret_steal<py::object>(
      PyObject_CallFunction(cls, "s", status.message().c_str()));
  if (!exc) throw py::error_already_set();
  exc.attr("layer") = LayerName(status.layer());
  exc.attr("rc") = status.tpm_rc() != 0 ? py::object(py::int_(status.tpm_rc())) : py::object(py::none());
  exc.attr("timed_out") = status.timed_out();
  std::optional<uint64_t> off = status.offset();
  if (!off && status.layer() == Layer::kParse) off = OffsetInMessage(status.message());
  exc.attr("offset") = off ? py::object(py::int_(*off)) : py::object(py::none());
  exc.attr("file") = py::none();
  exc.attr("line") = py::none();
  exc.attr("column") = py::none();
  if (status.layer() == Layer::kScenario || status.layer() == Layer::kParse) SetScenarioLocation(exc, status.message());
  PyErr_SetObject(cls, exc.ptr());
}

}  // namespace

void RegisterErrors(py::module_& m) {
  classes.base = NewClass(m, "TpmlabError", PyExc_Exception,
                          "Base of every tpmlab error. Attributes: layer, rc, offset, file, line, column, timed_out.");
  classes.tpm = NewClass(m, "TpmError", classes.base, "The TPM answered with a response code (.rc).");
  classes.transport = NewClass(m, "TransportError", classes.base,
                               "Bytes did not reach the TPM or come back (socket, device, timeout).");
  classes.emulator = NewClass(m, "EmulatorError", classes.base, "The swtpm process died or refused a control command.");
  classes.missing = NewClass(m, "MissingDependencyError", classes.base,
                             "Something tpmlab needs is not installed; the message names the Debian package.");
  classes.parse = NewClass(m, "ParseError", classes.base, "Bytes that do not decode (.offset when known).");
  classes.scenario = NewClass(m, "ScenarioError", classes.base,
                              "A scenario or step is wrong (.file, .line, .column when known).");
  classes.store = NewClass(m, "StoreError", classes.base, "The SQLite results store failed.");

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const StatusError& e) {
      Raise(e.status());
    }
  });
  // For tests of the translator itself.
  m.def("_raise_status", [](const std::string& layer, const std::string& message, uint32_t rc) {
    for (Layer l : {Layer::kTpm, Layer::kTransport, Layer::kEmulator, Layer::kEnvironment, Layer::kParse,
                    Layer::kScenario, Layer::kStore, Layer::kHarness}) {
      if (layer == LayerName(l)) {
        if (l == Layer::kTpm) throw StatusError(Status::Tpm(rc, message));
        throw StatusError(Status::Error(l, message));
      }
    }
    throw StatusError(Status::Error(Layer::kHarness, "no layer named " + layer));
  });
}

}  // namespace tpmlab::python
