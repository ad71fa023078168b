// tpmlab doctor: the troubleshooting checklist (harness/doctor.h) on the
// embedded default — a freshly manufactured swtpm in a temporary folder,
// booted as `tpmlab run` boots it, with the baseline firmware model measured
// so the event log check has a log to replay — or on a bench file's chip
// (--bench): /dev/tpmrm0 as this machine booted it, with its own event log.
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <memory>

#include "exit_codes.h"
#include "harness/bench_dut.h"
#include "harness/boot_source.h"
#include "harness/doctor.h"
#include "harness/dut.h"
#include "harness/eventlog.h"
#include "commands.h"

namespace tpmlab::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct DoctorArgs {
  bool json_out = false;
  std::string state, enrollment, eventlog, bench;
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
// the source tree), above the current folder, or in the source tree this
// tpmlab was built from (a build folder elsewhere).
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
#ifdef TPMLAB_SOURCE_DIR
  if (fs::is_regular_file(fs::path(TPMLAB_SOURCE_DIR) / model, ec)) return fs::path(TPMLAB_SOURCE_DIR) / model;
#endif
  return std::nullopt;
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

void PrintChecklist(const std::string& tpm, const std::vector<DoctorItem>& items) {
  std::cout << "tpmlab doctor: " << tpm << "\n";
  std::map<DoctorStatus, int> counts;
  for (const auto& i : items) {
    ++counts[i.status];
    std::cout << Tag(i.status) << " " << i.title << ": " << i.detail << "\n";
    if ((i.status == DoctorStatus::kFail || i.status == DoctorStatus::kWarn) && !i.advice.empty()) {
      std::cout << "       " << i.advice << "\n";
    }
  }
  std::cout << counts[DoctorStatus::kOk] << " ok, " << counts[DoctorStatus::kWarn] << " warn, "
            << counts[DoctorStatus::kFail] << " fail, " << counts[DoctorStatus::kSkipped] << " skipped\n";
}

// The platform firmware tpmlab plays: the baseline model measured into the
// TPM, so the event log check has a log to replay (unless --eventlog gave one).
Status MeasureBaseline(Dut& dut, const BootOptions& boot, DoctorOptions& options) {
  if (!options.eventlog) {
    // The platform firmware: the baseline model measured into the TPM.
    if (auto model_file = FindBaselineModel()) {
      auto model = LoadFirmwareModel(*model_file);
      auto banks = dut.tpm().PcrBanks();
      if (!banks.ok()) return banks.status();
      if (!model.ok()) {
        options.eventlog_missing_reason = "the baseline firmware model did not load: " + model.status().message();
      } else {
        EmulatedFirmware firmware(*model, boot);
        if (Status s = firmware.AfterStartup(dut.tpm(), StartupType::kClear, *banks); !s.ok()) return s;
        options.eventlog = WriteEventLog(firmware.log());
      }
    } else {
      options.eventlog_missing_reason =
          "no firmware model measured: scenarios/firmware/baseline.yaml not found above the tpmlab executable, "
          "above the current folder or in the source tree it was built from (give a log with --eventlog)";
    }
  }
  return Status::Ok();
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
  const BootOptions boot;
  if (bench && !bench->emulated()) {
    auto opened = OpenBenchDut(*bench, BenchDutOptions{"doctor", std::chrono::milliseconds(30000), {}, 1});
    if (!opened.ok()) return Unreachable(opened.status());
    dut = std::move(*opened);
    dut->tpm().set_evict_foreign_keys(bench->allow.nv_write);
    dut->tpm().set_persist_keys(bench->allow.nv_write);
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
      if (!started.ok() && started.layer() == Layer::kTpm && (started.tpm_rc() & 0xFFF) == 0x100) {
        // Started before and no switch to reset it: examine it as it is.
        if (!options.eventlog) {
          options.eventlog_missing_reason = "the chip was already started (" + dut->no_power_reason() +
                                            "), so tpmlab did not measure this boot; give a log with --eventlog";
        }
      } else if (!started.ok()) {
        return Unreachable(started);
      } else if (Status s = MeasureBaseline(*dut, boot, options); !s.ok()) {
        return Unreachable(s);
      }
    }
  } else {
    EmulatedDutConfig config;
    config.name = "doctor";
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

    if (bench) ApplyEmulatedBench(*bench, config);
    auto launched = Dut::LaunchEmulated(config);
    if (!launched.ok()) return Unreachable(launched.status());
    dut = std::move(*launched);
    // Booted as the scenario runner boots: power on, Startup(CLEAR).
    if (Status s = dut->PowerOn(); !s.ok()) return Unreachable(s);
    if (Status s = dut->Startup(boot, StartupType::kClear); !s.ok()) return Unreachable(s);
    if (Status s = MeasureBaseline(*dut, boot, options); !s.ok()) return Unreachable(s);
    tpm = "swtpm " + dut->emulator()->capabilities().version + " (" +
          (a.state.empty() ? std::string("auto-launched, newly manufactured") : "state " + config.state_dir.string()) +
          (bench ? ", bench " + bench->name : "") + ")";
  }

  const std::vector<DoctorItem> items = RunDoctor(dut->tpm(), options);
  dut->Close();
  if (a.json_out) {
    json out = DoctorToJson(items);
    out["tpm"] = tpm;
    std::cout << out.dump(2) << "\n";
  } else {
    PrintChecklist(tpm, items);
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
  doctor->add_option("--state", a->state, "swtpm state folder to use and keep (manufactured if empty)");
  doctor->add_option("--enrollment", a->enrollment, "enrollment.json to judge the attestation against");
  doctor->add_option("--eventlog", a->eventlog, "TCG event log to replay instead of measuring the baseline model");
  doctor->add_option("--bench", a->bench, "Bench file: examine its chip (e.g. hw/benches/host-tpmrm0.yaml)");
  return {doctor, [a] { return RunDoctorCommand(*a); }};
}

}  // namespace tpmlab::cli
