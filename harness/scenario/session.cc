// The Session: opens a run (its locks, store, inputs and DUT), executes the
// steps it is given through a Run, and finishes it (run.json, junit.xml).
#include <unistd.h>

#include <fstream>
#include <sstream>

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
  RunInfo info;  // as BeginRun stored it
  int64_t run_id = 0;
  std::optional<RunResult> finished;
  Status WriteFiles(RunResult& result, const std::string& finished_at);
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

// This process's start time (field 22 of /proc/self/stat, in clock ticks
// since boot): with the pid, it tells a killed run from one still running
// even after the pid is reused.
std::string ProcessStartTime() {
  std::ifstream in("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces and parentheses: count after its last ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return "";
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return field;
  }
  return "";
}

RunInfo RunInfoOf(const Scenario& scenario, const RunOptions& options, const json& dut_json,
                  const json& inputs, const std::string& started_at, uint64_t seed) {
  RunInfo info;
  info.scenario = scenario.name;
  info.scenario_file = scenario.file;
  info.seed = seed;
  info.started_at = started_at;
  info.tpmlab_version = kTpmlabVersion;
  info.host = Hostname();
  info.dut = dut_json.value("label", options.dut_name);
  // The inputs too, so a run that is killed still exports with them.
  info.config_json =
      json({{"scenario", ScenarioConfigJson(scenario, seed)}, {"dut", dut_json}, {"inputs", inputs}}).dump();
  info.pid = ::getpid();
  info.pid_started = ProcessStartTime();
  return info;
}

// What export needs, beyond the steps, to write this run's files again.
json OutcomeJson(const RunResult& result, const json& dut, const json& inputs) {
  json expectations = json::array();
  for (const auto& e : result.expectations) {
    expectations.push_back({{"step", e.step}, {"where", e.where}, {"name", e.name}, {"passed", e.passed},
                            {"detail", e.detail}});
  }
  return {{"expectations", expectations},
          {"error", result.error},
          {"expected_failures", result.expected_failures},
          {"dut", dut},
          {"inputs", inputs}};
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
  request.board.run_dir = options.out_dir;
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
  st.info = RunInfoOf(st.scenario, st.options, st.dut_json, st.inputs, st.started_at, seed);
  auto run_id = st.store->BeginRun(st.info);
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
  st.info = RunInfoOf(st.scenario, st.options, st.dut_json, st.inputs, st.started_at, seed);
  if (st.store && st.run_id == 0) {
    // The database lists it too, so a run id in run.json always resolves.
    if (auto id = st.store->BeginRun(st.info); id.ok()) st.run_id = *id;
  }
  result.run_id = st.run_id;
  result.run_json = options.out_dir / "run.json";
  (void)st.WriteFiles(result, UtcNow());
}

// Stores the run's end, then writes run.json and junit.xml from the store:
// the code `tpmlab export` runs, so both write the same files. When the
// store cannot take the end (a full disk) the files still say it, from here.
Status Session::State::WriteFiles(RunResult& result, const std::string& finished_at) {
  const json outcome = OutcomeJson(result, dut_json, inputs);
  Status ended = Status::Ok();
  if (store && run_id != 0) ended = store->FinishRun(run_id, RunStatusName(result.status), finished_at, outcome);
  StoredRun stored;
  stored.id = run_id;
  stored.info = info;
  stored.status = RunStatusName(result.status);
  stored.finished_at = finished_at;
  stored.steps = static_cast<int>(result.steps.size());
  stored.outcome = outcome;
  auto form = ParseRunJsonForm(options.run_json_form);
  StepSource steps = [&](const std::function<Status(StepResult&&)>& each) {
    return store && run_id != 0 ? store->ForEachStep(run_id, each) : Status::Ok();
  };
  Status written = form.ok() ? WriteRunFiles(stored, steps, options.database, options.out_dir, *form) : form.status();
  if (std::error_code ec; !written.ok() && !fs::exists(options.out_dir / "run.json", ec)) {
    written = written.Wrap("run.json and junit.xml could not be written to " + options.out_dir.string() +
                           " (the steps stored are in " + DatabaseDisplayName(options.database) + ", run " +
                           std::to_string(run_id) + "; `tpmlab export` writes them later)");
  }
  for (const Status& s : {ended, written}) {
    if (s.ok()) continue;
    if (result.status != RunStatus::kError && store && run_id != 0) {
      // What the database says must not be a pass the files could not show.
      (void)store->FinishRun(run_id, RunStatusName(RunStatus::kError), finished_at,
                             OutcomeJson(result, dut_json, inputs));
    }
    result.status = RunStatus::kError;
    result.error += (result.error.empty() ? "" : "; ") + s.ToString();
  }
  return ended.ok() ? written : ended;
}

Session::Session() = default;

Session::~Session() {
  // A session that never opened fully has nothing to finish.
  if (state_ && state_->run && !state_->finished) (void)Finish();
}

std::vector<StepResult> Session::Execute(const Step& step) {
  std::vector<StepResult> results;
  if (!state_->finished) state_->run->Execute(step, &results);
  return results;
}

void Session::ExecuteUnkept(const Step& step) {
  if (!state_->finished) state_->run->Execute(step);
}

bool Session::ended() const { return state_->finished.has_value() || state_->run->Stopped(); }

Dut& Session::dut() { return *state_->dut; }

const Scenario& Session::scenario() const { return state_->scenario; }

const RunResult& Session::Finish() {
  State& st = *state_;
  if (st.finished) return *st.finished;
  RunResult result = st.run->Finish();
  const int steps_stored = st.run->steps_stored();
  st.dut->Close();
  result.run_json = st.options.out_dir / "run.json";
  result.steps = StoredSteps(st.options.database, st.run_id, static_cast<size_t>(steps_stored));
  (void)st.WriteFiles(result, UtcNow());
  st.locks.clear();  // the folder is free for the next run
  st.finished = std::move(result);
  return *st.finished;
}

Result<RunResult> RunScenario(const Scenario& scenario, const RunOptions& options) {
  TRY_ASSIGN(std::unique_ptr<Session> session, Session::Open(scenario, options));
  for (const auto& step : session->scenario().steps) {
    if (session->ended()) break;
    session->ExecuteUnkept(step);
  }
  return session->Finish();
}
}  // namespace tpmlab
