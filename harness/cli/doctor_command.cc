// tpmlab doctor: the troubleshooting checklist (harness/doctor.h) on the
// embedded default — a freshly manufactured swtpm in a temporary folder, or
// a run's kept chip (--state RUN/dut0), booted as `tpmlab run` boots it, with
// a firmware model measured so the event log check has a log to replay: the
// one the run ended with (its recorded inputs), the one --firmware names, or
// else the baseline — or on a bench file's chip (--bench): /dev/tpmrm0 as
// this machine booted it, with its own event log.
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <variant>

#include "exit_codes.h"
#include "harness/boot_source.h"
#include "harness/doctor.h"
#include "harness/dut.h"
#include "harness/ek_certificate.h"
#include "harness/eventlog.h"
#include "harness/firmware_model.h"
#include "harness/open_dut.h"
#include "harness/response_codes.h"
#include "harness/scenario_yaml.h"
#include "commands.h"

namespace tpmlab::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct DoctorArgs {
  bool json_out = false, quiet = false;
  std::string state, enrollment, eventlog, bench, run, firmware, ek_roots;
};

// The platform firmware the doctor measures, and where it came from (said in
// the output, so a PCR mismatch can be read against the right firmware).
struct MeasuredFirmware {
  std::optional<FirmwareModel> model;  // none: a bare platform (the run had no firmware)
  BootOptions boot;
  std::string source;  // "the run's inputs (RUN/inputs/x.yaml)", "--firmware", "the default"
};

// The temporary swtpm state, removed on every way out.
struct TempDir {
  fs::path path;
  ~TempDir() {
    std::error_code ignored;
    if (!path.empty()) fs::remove_all(path, ignored);
  }
};

// scenarios/firmware/baseline.yaml above the executable (a build tree inside
// the source tree), above the current folder, or among the installed models
// (share/tpmlab/firmware, $TPMLAB_SOURCE_DIR; see InstalledFirmwareDirs).
std::optional<fs::path> FindBaselineModel() {
  const fs::path model = fs::path("scenarios") / "firmware" / "baseline.yaml";
  std::vector<fs::path> starts;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) starts.push_back(exe.parent_path());
  starts.push_back(fs::current_path(ec));
  for (fs::path dir : starts) {
    for (; !dir.empty(); dir = dir.parent_path()) {
      if (fs::is_regular_file(dir / model, ec)) return dir / model;
      if (dir == dir.parent_path()) break;
    }
  }
  for (const fs::path& dir : InstalledFirmwareDirs()) {
    if (fs::is_regular_file(dir / "baseline.yaml", ec)) return dir / "baseline.yaml";
  }
  return std::nullopt;
}

// The firmware a run ended with: its scenario's model, then each platform
// firmware_update it ran, read from the run's own copy of its inputs.
Result<MeasuredFirmware> FirmwareOfRun(const fs::path& run_dir) {
  const fs::path run_json = run_dir / "run.json";
  std::ifstream in(run_json);
  if (!in) return Status::Parse(run_json.string() + ": cannot read: " + std::strerror(errno));
  const json run = json::parse(in, nullptr, false);
  if (run.is_discarded() || !run.is_object()) return Status::Parse(run_json.string() + ": not JSON");
  const json inputs = run.value("inputs", json::object());
  if (!inputs.is_object() || !inputs.contains("scenario") || !inputs["scenario"].is_string()) {
    return Status::Parse(run_json.string() + ": records no scenario among its inputs (a run built in code); "
                         "give the firmware with --firmware");
  }
  const fs::path scenario_file = run_dir / inputs["scenario"].get<std::string>();
  auto scenario = LoadScenarioFile(scenario_file);
  if (!scenario.ok()) return Status::Parse("the run's scenario: " + scenario.status().message());
  // Every model the scenario can switch to, by name.
  std::map<std::string, const FirmwareModel*> models;
  std::function<void(const std::vector<Step>&)> collect = [&](const std::vector<Step>& steps) {
    for (const Step& step : steps) {
      if (const auto* f = std::get_if<FirmwareUpdateStep>(&step.action); f && f->model) models[f->model->name] = &*f->model;
      if (const auto* r = std::get_if<RepeatStep>(&step.action)) collect(r->steps);
      if (const auto* c = std::get_if<ChooseStep>(&step.action)) collect(c->steps);
    }
  };
  collect(scenario->steps);
  MeasuredFirmware out;
  out.model = scenario->platform.firmware;
  out.boot = scenario->platform.boot;
  out.source = "the run's inputs (" + scenario_file.string() + ")";
  for (const json& step : run.value("steps", json::array())) {
    if (!step.is_object() || !step.contains("detail") || !step["detail"].is_object()) continue;
    const json& platform = step["detail"].value("platform", json());
    if (!platform.is_object() || !platform.contains("to") || !platform["to"].is_string()) continue;
    const std::string to = platform["to"].get<std::string>();
    auto it = models.find(to);
    if (it == models.end()) return Status::Parse(run_json.string() + ": the run updated to firmware '" + to +
                                                 "', which its scenario does not name");
    out.model = *it->second;
    out.source = "the run's inputs (" + scenario_file.string() + ", after firmware_update to " + to + ")";
  }
  return out;
}

// --firmware NAME|PATH: a path, a model beside the current folder
// (firmware/NAME.yaml, NAME.yaml), or a stock model.
Result<MeasuredFirmware> FirmwareByName(const std::string& name) {
  auto path = ResolveFirmwareModel(name, ".");
  if (!path.ok()) {
    if (auto baseline = FindBaselineModel()) path = ResolveFirmwareModel(name, baseline->parent_path().parent_path());
  }
  if (!path.ok()) return Status::Parse("--firmware " + name + ": " + path.status().message());
  auto model = LoadFirmwareModel(*path);
  if (!model.ok()) return Status::Parse("--firmware " + name + ": " + model.status().message());
  MeasuredFirmware out;
  // The model's platform options, as a scenario naming it takes them.
  if (model->startup_locality) out.boot.startup_locality = *model->startup_locality;
  if (model->hcrtm) out.boot.hcrtm_data = Bytes(model->hcrtm->begin(), model->hcrtm->end());
  out.model = std::move(*model);
  out.source = "--firmware";
  return out;
}

// What to measure: --firmware, else the run the state belongs to (--run, or
// the state folder's parent when it holds a run.json), else the baseline.
Result<std::optional<MeasuredFirmware>> ChooseFirmware(const DoctorArgs& a) {
  if (!a.firmware.empty()) {
    TRY_ASSIGN(MeasuredFirmware chosen, FirmwareByName(a.firmware));
    return std::optional<MeasuredFirmware>(std::move(chosen));
  }
  fs::path run_dir = a.run;
  std::error_code ec;
  if (run_dir.empty() && !a.state.empty()) {
    // RUN/dut0 of `tpmlab run --out RUN`.
    fs::path state = fs::absolute(a.state, ec).lexically_normal();
    if (!state.has_filename()) state = state.parent_path();  // "RUN/dut0/"
    if (fs::is_regular_file(state.parent_path() / "run.json", ec)) run_dir = state.parent_path();
  }
  if (!run_dir.empty()) {
    TRY_ASSIGN(MeasuredFirmware ran, FirmwareOfRun(run_dir));
    return std::optional<MeasuredFirmware>(std::move(ran));
  }
  return std::optional<MeasuredFirmware>();
}

int Usage(const std::string& message) {
  std::cerr << "tpmlab doctor: " << message << "\n";
  return kExitUsage;
}

int Unreachable(const Status& s) {
  std::cerr << "tpmlab doctor: no TPM to examine: " << s.ToString() << "\n";
  return ExitFor(s);
}

const char* Tag(DoctorStatus status) {
  switch (status) {
    case DoctorStatus::kOk: return "[ OK ]";
    case DoctorStatus::kWarn: return "[WARN]";
    case DoctorStatus::kFail: return "[FAIL]";
    case DoctorStatus::kSkipped: return "[SKIP]";
  }
  return "[ ?? ]";
}

// -q: only the items to act on (warn, fail) and the count line.
void PrintChecklist(const std::string& tpm, const std::string& firmware, const std::vector<DoctorItem>& items,
                    bool quiet) {
  if (!quiet) {
    std::cout << "tpmlab doctor: " << tpm << "\n";
    if (!firmware.empty()) std::cout << "firmware measured: " << firmware << "\n";
  }
  std::map<DoctorStatus, int> counts;
  for (const auto& i : items) {
    ++counts[i.status];
    const bool act = i.status == DoctorStatus::kFail || i.status == DoctorStatus::kWarn;
    if (quiet && !act) continue;
    std::cout << Tag(i.status) << " " << i.title << ": " << i.detail << "\n";
    if (act && !i.advice.empty()) {
      // One advice line per alarm code (the attestation item): each indented.
      std::istringstream lines(i.advice);
      for (std::string line; std::getline(lines, line);) std::cout << "       " << line << "\n";
    }
  }
  std::cout << counts[DoctorStatus::kOk] << " ok, " << counts[DoctorStatus::kWarn] << " warn, "
            << counts[DoctorStatus::kFail] << " fail, " << counts[DoctorStatus::kSkipped] << " skipped\n";
}

// The platform firmware tpmlab plays, measured into the TPM so the event log
// check has a log to replay (unless --eventlog gave one): `chosen`, else the
// baseline model. `measured` says which, for the output (null: none).
Status MeasureFirmware(Dut& dut, const std::optional<MeasuredFirmware>& chosen, DoctorOptions& options,
                       json& measured) {
  if (options.eventlog) return Status::Ok();
  MeasuredFirmware firmware;
  if (chosen) {
    firmware = *chosen;
  } else if (auto model_file = FindBaselineModel()) {
    auto model = LoadFirmwareModel(*model_file);
    if (!model.ok()) {
      options.eventlog_missing_reason = "the baseline firmware model did not load: " + model.status().message();
      return Status::Ok();
    }
    firmware.model = std::move(*model);
    firmware.source = "the default";
  } else {
    options.eventlog_missing_reason =
        "no firmware model measured: scenarios/firmware/baseline.yaml not found above the tpmlab executable, "
        "above the current folder or in the source tree it was built from (give one with --firmware, or a "
        "log with --eventlog)";
    return Status::Ok();
  }
  if (!firmware.model) {
    options.eventlog_missing_reason = "the run's platform measures nothing (its scenario names no firmware)";
    measured = {{"name", nullptr}, {"file", nullptr}, {"source", firmware.source}};
    return Status::Ok();
  }
  auto banks = dut.tpm().PcrBanks();
  if (!banks.ok()) return banks.status();
  EmulatedFirmware emulated(*firmware.model, firmware.boot);
  if (Status s = emulated.AfterStartup(dut.tpm(), StartupType::kClear, *banks); !s.ok()) return s;
  options.eventlog = WriteEventLog(emulated.log());
  measured = {{"name", firmware.model->name}, {"file", firmware.model->file}, {"source", firmware.source}};
  return Status::Ok();
}

// "baseline (scenarios/firmware/baseline.yaml), from the default"
std::string FirmwareLine(const json& measured) {
  if (measured.is_null()) return "";
  const std::string name = measured["name"].is_string() ? measured["name"].get<std::string>() : "none";
  const std::string file = measured["file"].is_string() ? " (" + measured["file"].get<std::string>() + ")" : "";
  return name + file + ", from " + measured["source"].get<std::string>();
}

int RunDoctorCommand(const DoctorArgs& a) {
  DoctorOptions options;
  // Inputs first: a bad file means nothing runs.
  if (!a.enrollment.empty()) {
    std::ifstream in(a.enrollment);
    if (!in) return Usage(a.enrollment + ": cannot read the enrollment");
    json j = json::parse(in, nullptr, false);
    if (j.is_discarded()) return Usage(a.enrollment + ": not JSON");
    auto e = EnrollmentFromJson(j, a.enrollment);
    if (!e.ok()) return Usage(e.status().message());
    options.enrollment = std::move(*e);
  }
  if (!a.ek_roots.empty()) {
    auto roots = LoadEkRoots(a.ek_roots);
    if (!roots.ok()) return Usage("--ek-roots: " + roots.status().message());
    options.ek_roots = std::move(*roots);
  }
  if (!a.eventlog.empty()) {
    std::ifstream in(a.eventlog, std::ios::binary);
    if (!in) return Usage(a.eventlog + ": cannot read the event log");
    Bytes bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (auto log = ParseEventLog(ByteView(bytes)); !log.ok()) return Usage(a.eventlog + ": " + log.status().message());
    options.eventlog = std::move(bytes);
  }

  std::optional<Bench> bench;
  if (!a.bench.empty()) {
    auto loaded = LoadBench(a.bench);
    if (!loaded.ok()) return Usage(loaded.status().message());
    bench = std::move(*loaded);
    if (!bench->emulated() && !a.state.empty()) return Usage("--state is for an emulated DUT, not bench " + bench->name);
  }

  TempDir temp;
  std::unique_ptr<Dut> dut;
  std::string tpm;
  // What to measure, before anything starts: a run whose inputs do not load
  // is bad input (2).
  std::optional<MeasuredFirmware> chosen;
  if (!a.eventlog.empty() && (!a.firmware.empty() || !a.run.empty())) {
    return Usage("--eventlog gives the log; --firmware and --run choose a firmware to measure instead");
  }
  if (a.eventlog.empty()) {
    auto picked = ChooseFirmware(a);
    if (!picked.ok()) return Usage(picked.status().message());
    chosen = std::move(*picked);
  }
  const BootOptions boot = chosen ? chosen->boot : BootOptions{};
  json measured;  // null: nothing measured by tpmlab
  // The embedded default or an emulated bench gets a state folder: a new
  // temporary one, or --state.
  DutRequest request;
  request.name = "doctor";
  const bool emulated = !bench || bench->emulated();
  if (emulated) {
    EmulatedDutConfig& config = request.emulated;
    if (a.state.empty()) {
      std::string tmpl = (fs::temp_directory_path() / "tpmlab-doctor-XXXXXX").string();
      if (::mkdtemp(tmpl.data()) == nullptr) {
        return Unreachable(Status::Error(Layer::kHarness, "cannot make a temporary folder in " +
                                                              fs::temp_directory_path().string()));
      }
      temp.path = tmpl;
      config.state_dir = temp.path / "state";
    } else {
      config.state_dir = a.state;
    }
    std::error_code ec;
    fs::create_directories(config.state_dir, ec);
    if (ec) return Usage("--state " + a.state + ": " + ec.message());
  }
  if (bench && (bench->is_board() || bench->is_machine())) {
    std::string tmpl = (fs::temp_directory_path() / "tpmlab-doctor-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return Unreachable(Status::Error(Layer::kHarness, "cannot make a temporary folder in " +
                                                            fs::temp_directory_path().string()));
    }
    temp.path = tmpl;
    request.board.work_dir = temp.path / "board";
    if (chosen && chosen->model && bench->board && bench->board->Image(chosen->model->name)) {
      request.board.firmware = chosen->model->name;
    }
  }
  auto opened = OpenDut(bench, request);
  if (!opened.ok()) return Unreachable(opened.status());
  dut = std::move(*opened);
  if (Board* board = dut->board()) {
    // A board is examined as booted: its firmware measured, its OS's agent
    // hands over the log.
    if (Status s = dut->PowerOn(); !s.ok()) return Unreachable(s);
    tpm = bench->name + ": " + dut->bus_info().description;
    if (!options.eventlog) {
      if (auto log = board->ReadEventLog(); log.ok()) {
        options.eventlog = *log;
      } else {
        options.eventlog_missing_reason = "boot log (agent): " + log.status().message();
      }
    }
  } else if (!emulated) {
    tpm = bench->name + ": " + dut->kind() + " " + dut->bus_info().description;
    if (dut->platform_started()) {
      // This machine booted it: examine it as it is, with the platform's log.
      if (!options.eventlog) {
        if (auto log = ReadEventLogFile(bench->boot_log.path); log.ok()) {
          options.eventlog = WriteEventLog(*log);
        } else {
          options.eventlog_missing_reason = "boot log (" + std::string(BootLogSourceName(bench->boot_log.source)) +
                                            "): " + log.status().message();
        }
      }
    } else {
      if (Status s = dut->PowerOn(); !s.ok()) return Unreachable(s);
      Status started = dut->Startup(boot, StartupType::kClear);
      if (!started.ok() && IsTpmResponse(started, rc::kInitialize)) {
        // Started before and no switch to reset it: examine it as it is.
        if (!options.eventlog) {
          options.eventlog_missing_reason = "the chip was already started (" + dut->no_power_reason() +
                                            "), so tpmlab did not measure this boot; give a log with --eventlog";
        }
      } else if (!started.ok()) {
        return Unreachable(started);
      } else if (Status s = MeasureFirmware(*dut, chosen, options, measured); !s.ok()) {
        return Unreachable(s);
      }
    }
  } else {
    // Booted as the scenario runner boots: power on, Startup(CLEAR).
    if (Status s = dut->PowerOn(); !s.ok()) return Unreachable(s);
    if (Status s = dut->Startup(boot, StartupType::kClear); !s.ok()) return Unreachable(s);
    if (Status s = MeasureFirmware(*dut, chosen, options, measured); !s.ok()) return Unreachable(s);
    tpm = "swtpm " + dut->emulator()->capabilities().version + " (" +
          (a.state.empty() ? std::string("auto-launched, newly manufactured")
                           : "state " + request.emulated.state_dir.string()) +
          (bench ? ", bench " + bench->name : "") + ")";
  }

  const std::vector<DoctorItem> items = RunDoctor(dut->tpm(), options);
  dut->Close();
  if (a.json_out) {
    json out = DoctorToJson(items);
    out["tpm"] = tpm;
    out["firmware"] = measured;  // {"name", "file", "source"}, or null when the log came from elsewhere
    std::cout << out.dump(2) << "\n";
  } else {
    PrintChecklist(tpm, FirmwareLine(measured), items, a.quiet);
  }
  if (!DoctorReachedTpm(items)) return kExitRunError;
  return DoctorOverall(items) == DoctorStatus::kFail ? kExitFailed : kExitPassed;
}

}  // namespace

Command AddDoctorCommand(CLI::App& app) {
  auto a = std::make_shared<DoctorArgs>();
  auto* doctor = app.add_subcommand(
      "doctor", "Troubleshooting checklist on the embedded default (an auto-launched swtpm) or a bench's TPM; exit 1 if an item fails");
  doctor->add_flag("--json", a->json_out, "JSON output");
  doctor->add_flag("-q,--quiet", a->quiet, "Only the items that warn or fail, and the count line");
  doctor->add_option("--state", a->state, "swtpm state folder to use and keep (manufactured if empty)");
  doctor->add_option("--enrollment", a->enrollment, "enrollment.json to judge the attestation against");
  doctor->add_option("--eventlog", a->eventlog, "TCG event log to replay instead of measuring a firmware model");
  doctor->add_option("--firmware", a->firmware,
                     "Firmware model to measure (NAME or PATH; default: the run's, else baseline)");
  doctor->add_option("--run", a->run,
                     "Run folder whose recorded firmware to measure (default: the --state folder's parent "
                     "when it holds run.json)");
  doctor->add_option("--bench", a->bench, "Bench file: examine its chip (e.g. hw/benches/host-tpmrm0.yaml)");
  doctor->add_option("--ek-roots", a->ek_roots,
                     "TPM manufacturer root/intermediate certificates (PEM or DER file, or a folder of them) the "
                     "EK certificate must chain to; without it the chain is not checked");
  return {doctor, [a] { return RunDoctorCommand(*a); }};
}

}  // namespace tpmlab::cli
