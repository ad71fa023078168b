// The Session: opens a run (its locks, store, inputs and DUT), executes the
// steps it is given through a Run, and finishes it (run.json, junit.xml).
#include <unistd.h>

#include "harness/open_dut.h"
#include "harness/run_files.h"
#include "harness/run_folder.h"
#include "run.h"

namespace tpmlab {

namespace fs = std::filesystem;
using nlohmann::json;

struct Session::State {
  Scenario scenario;
  RunOptions options;
  std::vector<RunFolderLock> locks;  // out_dir's, and a kept chip's folder: held until Finish
  std::unique_ptr<Store> store;
  std::unique_ptr<Dut> dut;
  std::unique_ptr<Run> run;
  json dut_json, inputs;
  std::string started_at;
  int64_t run_id = 0;
  std::optional<RunResult> finished;
};

namespace {

std::string Hostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof(buf) - 1);
  return buf;
}

json ScenarioConfigJson(const Scenario& s, uint64_t seed) {
  json banks = s.platform.banks;
  return {{"scenario", s.name},
          {"file", s.file},
          {"seed", seed},
          {"platform",
           {{"banks", banks},
            {"ak", KeyTypeName(s.platform.ak)},
            {"startup_locality", s.platform.boot.startup_locality},
            {"hcrtm", s.platform.boot.hcrtm_data
                          ? json(std::string(s.platform.boot.hcrtm_data->begin(),
                                             s.platform.boot.hcrtm_data->end()))
                          : json(nullptr)},
            {"firmware", s.platform.firmware ? json({{"name", s.platform.firmware->name},
                                                     {"file", s.platform.firmware->file}})
                                              : json(nullptr)},
            {"command_timeout_ms", s.platform.command_timeout_ms},
            {"bus", EmulatedBusName(s.platform.bus)}}}};
}

// The emulated DUT's state folder.
fs::path StateDirOf(const RunOptions& options) {
  return options.state_dir.empty() ? options.out_dir / options.dut_name : options.state_dir;
}

RunInfo RunInfoOf(const Scenario& scenario, const RunOptions& options, const json& dut_json,
                  const std::string& started_at, uint64_t seed) {
  RunInfo info;
  info.scenario = scenario.name;
  info.scenario_file = scenario.file;
  info.seed = seed;
  info.started_at = started_at;
  info.tpmlab_version = kTpmlabVersion;
  info.host = Hostname();
  info.dut = dut_json.value("label", options.dut_name);
  info.config_json = json({{"scenario", ScenarioConfigJson(scenario, seed)}, {"dut", dut_json}}).dump();
  return info;
}

// The DUT the scenario's platform and the run's options ask for: its name,
// command timeouts, seed and (a real chip) this machine's parts.
DutRequest DutRequestOf(const Scenario& scenario, const RunOptions& options, uint64_t seed) {
  DutRequest request;
  request.name = options.dut_name;
  request.command_timeout = std::chrono::milliseconds(scenario.platform.command_timeout_ms);
  for (const auto& [code, ms] : scenario.platform.command_timeouts_ms) {
    request.command_timeouts[code] = std::chrono::milliseconds(ms);
  }
  request.fault_seed = seed;
  request.hardware = options.hardware;
  request.board.work_dir = options.out_dir / "board";
  request.board.banks = scenario.platform.banks;
  if (scenario.platform.firmware) request.board.firmware = scenario.platform.firmware->name;
  return request;
}

std::string ChipId(const DutBusInfo& bus) {
  char id[24];
  std::snprintf(id, sizeof id, "%04x:%04x:%02x", bus.vendor_id, bus.device_id, bus.revision);
  return id;
}

}  // namespace

// The embedded default, or an emulated bench (the simulated SPI TPM).
Status Session::LaunchEmulatedDut(State& st, uint64_t seed) {
  const Scenario& scenario = st.scenario;
  const RunOptions& options = st.options;
  DutRequest request = DutRequestOf(scenario, options, seed);
  EmulatedDutConfig& emulated = request.emulated;
  emulated.state_dir = StateDirOf(options);
  emulated.banks = scenario.platform.banks;
  emulated.unix_sockets = options.unix_sockets;
  emulated.initial_state = options.initial_state;
  emulated.bus = scenario.platform.bus;
  emulated.tis = scenario.platform.tis;
  const EmulatedDutConfig config = EmulatedConfigOf(options.bench, request);
  // A run starts from a newly manufactured chip (or the state it is given)
  // unless told to keep one.
  const bool had_state = HasChipState(config.state_dir);
  request.manufacture_new = !options.keep_state;
  // Said in run.json's provenance: above all a --keep-state that found no chip.
  std::string state = "new";
  if (options.keep_state && had_state) {
    state = "kept: continued the chip in " + fs::absolute(config.state_dir).string();
  } else if (!options.initial_state.empty()) {
    state = "copied from " + options.initial_state.string();
  } else if (options.keep_state) {
    state = "new: --keep-state found no chip state in " + fs::absolute(config.state_dir).string();
  }
  TRY_ASSIGN(st.dut, OpenDut(options.bench, request));
  // The chip as it was before the first command, so a bundle can start a
  // replay from exactly here.
  TRY(CopySwtpmState(config.state_dir, options.out_dir / "initial-state"));
  st.inputs["initial_state"] = "initial-state";

  Dut& dut = *st.dut;
  const std::string version = dut.emulator()->capabilities().version;
  st.dut_json = {{"name", dut.name()},
                 {"kind", "swtpm"},
                 {"label", dut.name() + " (swtpm " + version + ")"},
                 {"swtpm_version", version},
                 {"state_dir", fs::absolute(config.state_dir).string()},
                 {"endpoint", dut.emulator()->data_endpoint().ToString()},
                 {"banks", scenario.platform.banks},
                 {"bus", EmulatedBusName(dut.bus_info().bus)},
                 {"state", state}};
  if (const DutBusInfo bus = dut.bus_info(); bus.bus == EmulatedBus::kTisSpi) {
    st.dut_json["tis"] = {{"vid_did_rid", ChipId(bus)}, {"vendor_id", bus.vendor_id}, {"device_id", bus.device_id},
                          {"revision", bus.revision}, {"wait_states", config.tis.wait_states},
                          {"burst_count", config.tis.burst_count}, {"description", bus.description}};
  }
  return Status::Ok();
}

// A real chip from the bench file: /dev/tpmrm0 or a TPM on a USB bridge.
Status Session::OpenHardwareDut(State& st, uint64_t seed) {
  const RunOptions& options = st.options;
  const Bench& bench = *options.bench;
  TRY_ASSIGN(st.dut, OpenDut(options.bench, DutRequestOf(st.scenario, options, seed)));
  Dut& dut = *st.dut;
  const DutBusInfo bus = dut.bus_info();
  st.dut_json = {{"name", dut.name()},
                 {"kind", dut.kind()},
                 {"label", dut.name() + " (" + dut.kind() + " " + bus.description + ")"},
                 {"description", bus.description},
                 {"platform_started", dut.platform_started()},
                 {"power", PowerKindName(bench.power.kind)},
                 {"boot_log", BootLogSourceName(bench.boot_log.source)},
                 {"bus", EmulatedBusName(bus.bus)},
                 {"warnings", dut.warnings()}};
  if (bus.vendor_id != 0) {
    st.dut_json["tis"] = {{"vid_did_rid", ChipId(bus)}, {"vendor_id", bus.vendor_id}, {"device_id", bus.device_id},
                          {"revision", bus.revision}, {"description", bus.description}};
  }
  return Status::Ok();
}

Result<std::unique_ptr<Session>> Session::Open(Scenario scenario_in, RunOptions options_in) {
  std::unique_ptr<Session> session(new Session());
  session->state_ = std::make_unique<State>();
  State& st = *session->state_;
  st.scenario = std::move(scenario_in);
  st.options = std::move(options_in);
  const Scenario& scenario = st.scenario;
  const RunOptions& options = st.options;
  // Bad input first: nothing is made for a scenario that cannot run.
  TRY(ValidateScenario(scenario));
  if (options.bench) TRY(RefusedSteps(PlanOf(scenario.steps), *options.bench));
  const uint64_t seed = options.seed.value_or(scenario.seed);
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (ec) {
    return Status::Error(Layer::kStore, "cannot create " + options.out_dir.string() + ": " + ec.message());
  }
  // One run at a time in a folder: a second one says so at once instead of
  // fighting the first over its emulator state.
  TRY_ASSIGN(RunFolderLock out_lock, RunFolderLock::Acquire(options.out_dir));
  st.locks.push_back(std::move(out_lock));
  if (!options.state_dir.empty() && !(options.bench && !options.bench->emulated())) {
    const fs::path chip_folder = fs::absolute(options.state_dir).parent_path();
    if (!fs::equivalent(chip_folder, options.out_dir, ec)) {
      fs::create_directories(chip_folder, ec);
      TRY_ASSIGN(RunFolderLock chip_lock, RunFolderLock::Acquire(chip_folder));
      st.locks.push_back(std::move(chip_lock));
    }
  }
  if (Status started = Start(st, seed); !started.ok()) {
    // CI reads run.json and junit.xml: a run that could not start leaves
    // both, saying why, as any failed run does.
    RecordFailedStart(st, seed, started);
    return started;
  }
  if (options.on_dut_ready) options.on_dut_ready(*st.dut);
  st.run = std::make_unique<Run>(st.scenario, st.options, *st.store, *st.dut, st.run_id, seed);
  return session;
}

// The store, the inputs, the DUT and the run's row.
Status Session::Start(State& st, uint64_t seed) {
  const RunOptions& options = st.options;
  TRY_ASSIGN(st.store, Store::Open(options.database));
  TRY_ASSIGN(st.inputs, SaveRunInputs(st.scenario, options.out_dir));
  if (options.bench) {
    std::error_code copy_error;
    fs::create_directories(options.out_dir / "inputs", copy_error);
    fs::copy_file(options.bench->file, options.out_dir / "inputs" / "bench.yaml",
                  fs::copy_options::overwrite_existing, copy_error);
    if (!copy_error) st.inputs["bench"] = "inputs/bench.yaml";
  }
  st.started_at = UtcNow();
  if (options.bench && !options.bench->emulated()) {
    TRY(OpenHardwareDut(st, seed));
  } else {
    TRY(LaunchEmulatedDut(st, seed));
  }
  if (options.bench) {
    st.dut_json["bench"] = options.bench->name;
    st.dut_json["bench_file"] = options.bench->file;
  }
  auto run_id = st.store->BeginRun(RunInfoOf(st.scenario, st.options, st.dut_json, st.started_at, seed));
  if (!run_id.ok()) {
    st.dut->Close();
    return run_id.status();
  }
  st.run_id = *run_id;
  return Status::Ok();
}

void Session::RecordFailedStart(State& st, uint64_t seed, const Status& why) {
  const RunOptions& options = st.options;
  if (st.started_at.empty()) st.started_at = UtcNow();
  if (!st.dut_json.contains("label")) {
    const std::string what = options.bench ? "bench " + options.bench->name : std::string("swtpm");
    st.dut_json["name"] = options.dut_name;
    st.dut_json["label"] = options.dut_name + " (" + what + ", not started)";
    if (options.bench) {
      st.dut_json["bench"] = options.bench->name;
      st.dut_json["bench_file"] = options.bench->file;
    }
  }
  RunResult result;
  result.status = RunStatus::kError;
  result.seed = seed;
  result.error = "the run could not start: " + why.ToString();
  if (st.store && st.run_id == 0) {
    // The database lists it too, so a run id in run.json always resolves.
    if (auto id = st.store->BeginRun(RunInfoOf(st.scenario, st.options, st.dut_json, st.started_at, seed)); id.ok()) {
      st.run_id = *id;
      (void)st.store->FinishRun(st.run_id, RunStatusName(result.status), UtcNow());
    }
  }
  result.run_id = st.run_id;
  result.run_json = options.out_dir / "run.json";
  (void)WriteRunJson(result.run_json, st.scenario, result, st.dut_json, options, st.started_at, st.inputs);
}

Session::Session() = default;

Session::~Session() {
  // A session that never opened fully has nothing to finish.
  if (state_ && state_->run && !state_->finished) (void)Finish();
}

std::vector<StepResult> Session::Execute(const Step& step) {
  if (state_->finished) return {};
  const size_t before = state_->run->result().steps.size();
  state_->run->Execute(step);
  const auto& steps = state_->run->result().steps;
  return std::vector<StepResult>(steps.begin() + static_cast<std::ptrdiff_t>(before), steps.end());
}

bool Session::ended() const { return state_->finished.has_value() || state_->run->Stopped(); }

Dut& Session::dut() { return *state_->dut; }

const Scenario& Session::scenario() const { return state_->scenario; }

const RunResult& Session::Finish() {
  State& st = *state_;
  if (st.finished) return *st.finished;
  RunResult result = st.run->Finish();
  st.dut->Close();
  result.run_json = st.options.out_dir / "run.json";
  // The event logs run.json names: a run whose evidence is not kept is not a pass.
  if (Status saved = SaveEventLogs(st.options.out_dir, result); !saved.ok()) {
    result.status = RunStatus::kError;
    result.error += (result.error.empty() ? "" : "; ") + saved.ToString();
  }
  Status finished = st.store->FinishRun(st.run_id, RunStatusName(result.status), UtcNow());
  Status written = WriteRunJson(result.run_json, st.scenario, result, st.dut_json, st.options, st.started_at, st.inputs);
  for (const Status& s : {finished, written}) {
    if (!s.ok()) {
      result.status = RunStatus::kError;
      result.error += (result.error.empty() ? "" : "; ") + s.ToString();
    }
  }
  st.locks.clear();  // the folder is free for the next run
  st.finished = std::move(result);
  return *st.finished;
}

Result<RunResult> RunScenario(const Scenario& scenario, const RunOptions& options) {
  TRY_ASSIGN(std::unique_ptr<Session> session, Session::Open(scenario, options));
  for (const auto& step : session->scenario().steps) {
    if (session->ended()) break;
    session->Execute(step);
  }
  return session->Finish();
}
}  // namespace tpmlab
