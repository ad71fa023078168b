// What a step hands back, for Python: Snapshot (the C++ one, kept whole so
// diff() works on it), EventLog (parse, events, replay) and diff().
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <cstdio>

#include "bindings.h"
#include "harness/drift.h"
#include "harness/event_data.h"
#include "harness/eventlog.h"
#include "harness/replay.h"
#include "harness/run_files.h"
#include "harness/snapshot_json.h"

namespace tpmlab::python {
namespace {

py::bytes ToPyBytes(ByteView b) {
  return py::bytes(reinterpret_cast<const char*>(b.data()), b.size());
}

Bytes FromPyBytes(const py::bytes& b) {
  const std::string_view s = b;
  return Bytes(s.begin(), s.end());
}

std::string AlgName(uint16_t id) {
  if (auto alg = HashAlgFromId(id)) return HashAlgName(*alg);
  char name[16];
  std::snprintf(name, sizeof(name), "0x%04x", id);
  return name;
}

// {"sha256": {0: b"...", ...}, ...}
py::dict PcrsToDict(const std::map<HashAlg, PcrBank>& pcrs) {
  py::dict out;
  for (const auto& [alg, bank] : pcrs) {
    py::dict values;
    for (int i = 0; i < kPcrCount; ++i) values[py::int_(i)] = ToPyBytes(bank[i]);
    out[py::str(HashAlgName(alg))] = values;
  }
  return out;
}

py::dict EventToDict(const EventLog& log, const Event& e, size_t index) {
  py::dict digests;
  for (uint32_t i = 0; i < e.digest_count; ++i) {
    const auto& d = log.DigestAt(e, i);
    digests[py::str(AlgName(d.alg))] = ToPyBytes(log.DigestBytes(d));
  }
  py::dict out;
  out["index"] = index;
  out["pcr"] = e.pcr;
  out["type"] = e.type;
  out["type_name"] = EventTypeName(e.type);
  out["digests"] = digests;
  out["data"] = ToPyBytes(log.Data(e));
  out["summary"] = DecodeEventData(log, e).summary;
  out["offset"] = e.log_offset;
  return out;
}

}  // namespace

void RegisterResults(py::module_& m) {
  py::class_<Snapshot>(m, "Snapshot", "One snapshot as the harness took it (private; tpmlab.Snapshot wraps it)")
      .def("to_json", [](const Snapshot& s) { return SnapshotToJson(s).dump(); })
      .def_property_readonly("pcrs", [](const Snapshot& s) { return PcrsToDict(s.pcrs); })
      .def_property_readonly("eventlog", [](const Snapshot& s) -> py::object {
        if (!s.eventlog) return py::none();
        return ToPyBytes(*s.eventlog);
      })
      .def_property_readonly("clock", [](const Snapshot& s) {
        const ClockInfo& c = s.clock();
        py::dict d;
        d["clock_ms"] = c.clock_ms;
        d["reset_count"] = c.reset_count;
        d["restart_count"] = c.restart_count;
        d["safe"] = c.safe;
        return d;
      })
      .def_property_readonly("ek_name", [](const Snapshot& s) { return ToHex(s.ek.name); })
      .def_property_readonly("srk_name", [](const Snapshot& s) { return ToHex(s.srk.name); })
      .def_property_readonly("ak_name", [](const Snapshot& s) { return ToHex(s.ak.name); })
      .def_property_readonly("firmware_version", [](const Snapshot& s) { return s.properties.firmware_version; })
      .def_property_readonly("taken_at", [](const Snapshot& s) { return s.taken_at; })
      .def_property_readonly("quote_verified", [](const Snapshot& s) { return s.quote_check.verified(); })
      // A past run's snapshot (run.json's form); its event log is read from
      // base_dir. A compact run.json's reference is read from its database.
      .def_static("from_json",
                  [](const std::string& text, const std::filesystem::path& base_dir, const std::string& where) {
                    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
                    if (j.is_discarded()) throw StatusError(Status::Parse(where + ": the snapshot is not JSON"));
                    return Unwrap(SnapshotOfRunStep(j, base_dir, where));
                  },
                  py::arg("text"), py::arg("base_dir"), py::arg("where"));

  py::class_<EventLog>(m, "EventLog", "A parsed TCG event log (private; tpmlab.EventLog wraps it)")
      .def_static("parse", [](const py::bytes& data) {
        Bytes bytes = FromPyBytes(data);
        py::gil_scoped_release release;
        return Unwrap(ParseEventLog(std::move(bytes)));
      })
      .def("__len__", &EventLog::size)
      .def_property_readonly("format", [](const EventLog& log) { return LogFormatName(log.format()); })
      .def("events", [](const EventLog& log) {
        py::list out;
        for (size_t i = 0; i < log.events().size(); ++i) out.append(EventToDict(log, log.events()[i], i));
        return out;
      })
      .def("replay", [](const EventLog& log) {
        Result<Replay> replay = [&] {
          py::gil_scoped_release release;
          return ReplayEventLog(log);
        }();
        return PcrsToDict(Unwrap(std::move(replay)).pcrs);
      })
      .def("to_bytes", [](const EventLog& log) { return ToPyBytes(WriteEventLog(log)); });

  m.def("diff", [](const Snapshot& a, const Snapshot& b) {
    Drift drift;
    {
      py::gil_scoped_release release;
      drift = DiffSnapshots(a, b);
    }
    return DriftToJson(drift).dump();
  }, "DriftToJson(DiffSnapshots(a, b)) as JSON text");
  m.def("diff_eventlogs", [](const EventLog& a, const EventLog& b) {
    return DriftToJson(DiffEventLogs(a, b)).dump();
  }, "DriftToJson(DiffEventLogs(a, b)) as JSON text");
}

}  // namespace tpmlab::python
