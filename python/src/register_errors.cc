// Status → exception, in one place. One class per layer under TpmlabError;
// each carries the Status's data as attributes, read from its fields (never
// parsed back out of the message): kind, layer, rc, timed_out, and where the
// error is, file/line/column/offset, plus reason (the message without that
// place in front).
#include <Python.h>
#include <pybind11/stl.h>

#include <optional>

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
  if (status.kind() == ErrorKind::kMissingPackage) return classes.missing;
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

void Raise(const Status& status) {
  PyObject* cls = ClassFor(status);
  py::object exc = py::reinterpret_steal<py::object>(
      PyObject_CallFunction(cls, "s", status.message().c_str()));
  if (!exc) throw py::error_already_set();
  exc.attr("layer") = LayerName(status.layer());
  exc.attr("kind") = ErrorKindName(status.kind());
  exc.attr("rc") = status.tpm_rc() != 0 ? py::object(py::int_(status.tpm_rc())) : py::object(py::none());
  exc.attr("timed_out") = status.timed_out();
  const Location& where = status.location();
  const auto or_none = [](const auto& value) { return value ? py::object(py::int_(*value)) : py::object(py::none()); };
  exc.attr("file") = where.file.empty() ? py::object(py::none()) : py::object(py::str(where.file));
  exc.attr("line") = or_none(where.line);
  exc.attr("column") = or_none(where.column);
  exc.attr("offset") = or_none(where.offset);
  exc.attr("reason") = status.reason();
  PyErr_SetObject(cls, exc.ptr());
}

}  // namespace

void RegisterErrors(py::module_& m) {
  classes.base = NewClass(m, "TpmlabError", PyExc_Exception,
                          "Base of every tpmlab error. Attributes: kind, layer, rc, file, line, column, offset, "
                          "reason, timed_out.");
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
  // For tests of the translator itself: a Status of `layer`, placed at what is given.
  m.def(
      "_raise_status",
      [](const std::string& layer, const std::string& message, uint32_t rc, const std::string& file,
         std::optional<uint32_t> line, std::optional<uint32_t> column, std::optional<uint64_t> offset) {
        Location where(file);
        where.line = line;
        where.column = column;
        where.offset = offset;
        for (Layer l : {Layer::kTpm, Layer::kTransport, Layer::kEmulator, Layer::kEnvironment, Layer::kParse,
                        Layer::kScenario, Layer::kStore, Layer::kHarness}) {
          if (layer == LayerName(l)) {
            if (l == Layer::kTpm) throw StatusError(Status::Tpm(rc, message).At(where));
            throw StatusError(Status::Error(l, message).At(where));
          }
        }
        throw StatusError(Status::Error(Layer::kHarness, "no layer named " + layer));
      },
      py::arg("layer"), py::arg("message"), py::arg("rc") = 0, py::arg("file") = "", py::arg("line") = py::none(),
      py::arg("column") = py::none(), py::arg("offset") = py::none());
}

}  // namespace tpmlab::python
