// tpmlab serve: a bench's TPM (or the embedded default's swtpm) offered to
// other tools as a simulator socket pair on loopback — data port P, control
// (swtpm) or platform (mssim) port P+1 — so tpm2-tools or any TSS drives the
// chip through tpmlab's trace and fault injection (harness/serve). The
// relayed commands are one run in the results database (scenario "serve"),
// streamed as steps while serving; SIGINT or SIGTERM closes the DUT in
// order, ends the run and writes OUT/run.json.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "exit_codes.h"
#include "harness/open_dut.h"
#include "harness/response_codes.h"
#include "harness/run_files.h"
#include "harness/run_folder.h"
#include "harness/serve.h"
#include "harness/snapshot.h"
#include "harness/version.h"
#include "commands.h"

namespace tpmlab::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};
void OnSignal(int number) {
  g_signal = number;
  g_stop = true;
}

struct ServeArgs {
  std::string bench, out_dir, db, protocol = "swtpm";
  int port = 2321;
  std::vector<std::string> faults;
  uint64_t seed = 1;
  bool no_startup = false, quiet = false;
};

int Fail(const Status& s) {
  std::cerr << "tpmlab serve: " << s.ToString() << "\n";
  return ExitFor(s);
}

int Usage(const std::string& message) {
  std::cerr << "tpmlab serve: " << message << "\n";
  return kExitUsage;
}

std::string Hostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof(buf) - 1);
  return buf;
}

// Field 22 of /proc/self/stat, as the scenario session stores it: with the
// pid it tells a serve still running from one that was killed.
std::string ProcessStartTime() {
  std::ifstream in("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return "";
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return field;
  }
  return "";
}

// Boots the DUT as `tpmlab run` would before its first step: a board boots
// (its firmware starts the chip); a chip this machine's platform started is
// left as it is; otherwise _TPM_Init and, unless --no-startup, Startup(CLEAR)
// (a real chip already started, with no switch to reset it, is served as it is).
Result<std::string> Boot(Dut& dut, bool startup) {
  if (dut.board() != nullptr) {
    TRY(dut.PowerOn());
    return std::string("board booted (its firmware sent Startup)");
  }
  if (dut.platform_started()) return std::string("started by this machine's platform");
  TRY(dut.PowerOn());
  if (!startup) return std::string("powered on, not started (--no-startup: the client sends Startup)");
  Status started = dut.Startup(BootOptions{}, StartupType::kClear);
  if (!started.ok() && !dut.emulated() && IsTpmResponse(started, rc::kInitialize)) {
    return std::string("already started (" + dut.no_power_reason() + ")");
  }
  TRY(started);
  return std::string("Startup(CLEAR)");
}

int Serve(const ServeArgs& a) {
  auto flavour = serve::ParseFlavour(a.protocol);
  if (!flavour.ok()) return Usage(flavour.status().message());
  std::vector<FaultRule> rules;
  for (const std::string& spec : a.faults) {
    auto rule = serve::ParseFaultSpec(spec);
    if (!rule.ok()) return Usage(rule.status().message());
    rules.push_back(*rule);
  }
  std::optional<Bench> bench;
  if (!a.bench.empty()) {
    auto loaded = LoadBench(a.bench);
    if (!loaded.ok()) return Usage(loaded.status().message());
    bench = std::move(*loaded);
  }

  const fs::path out_dir = a.out_dir.empty() ? fs::path(DefaultOutDir("serve")) : fs::path(a.out_dir);
  if (std::error_code ec; fs::exists(out_dir / "run.json", ec)) {
    return Usage(out_dir.string() + " already holds a run (" + (out_dir / "run.json").string() +
                 "); tpmlab does not overwrite it: choose another --out");
  }
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return Fail(Status::Error(Layer::kStore, "cannot create " + out_dir.string() + ": " + ec.message()));
  auto lock = RunFolderLock::Acquire(out_dir);
  if (!lock.ok()) return Fail(lock.status());
  const std::string db = a.db.empty() ? DefaultDatabase(out_dir) : a.db;
  auto store = Store::Open(db);
  if (!store.ok()) return Fail(store.status());

  serve::ServeOptions options;
  options.flavour = *flavour;
  options.port = static_cast<uint16_t>(a.port);
  options.stop = &g_stop;
  options.first_step_index = 1;
  options.log = [](const std::string& line) { std::cerr << "tpmlab serve: " << line << "\n"; };
  auto server = serve::Server::Listen(options);
  if (!server.ok()) return Fail(server.status());

  DutRequest request;
  request.fault_seed = a.seed;
  if (!bench || bench->emulated()) request.emulated.state_dir = out_dir / request.name;
  if (bench && bench->is_board()) request.board.work_dir = out_dir / "board";
  auto opened = OpenDut(bench, request);
  if (!opened.ok()) return Fail(opened.status());
  std::unique_ptr<Dut> dut = std::move(*opened);

  const auto boot_start = std::chrono::steady_clock::now();
  const std::string boot_started_at = UtcNow();
  auto booted = Boot(*dut, !a.no_startup);
  if (!booted.ok()) {
    dut->Close();
    return Fail(booted.status().Wrap("booting the DUT"));
  }

  const DutBusInfo bus = dut->bus_info();
  std::string label = dut->name() + " (" + (bench ? "bench " + bench->name + ", " : std::string()) + dut->kind();
  if (dut->emulated() && dut->emulator() != nullptr) label += " " + dut->emulator()->capabilities().version;
  if (!bus.description.empty()) label += ", " + bus.description;
  label += ")";
  json dut_json = {{"name", dut->name()}, {"kind", dut->kind()}, {"label", label},
                   {"description", bus.description}, {"bus", EmulatedBusName(bus.bus)},
                   {"platform_started", dut->platform_started()}, {"warnings", dut->warnings()}};
  json inputs = json::object();
  if (bench) {
    dut_json["bench"] = bench->name;
    dut_json["bench_file"] = bench->file;
    fs::create_directories(out_dir / "inputs", ec);
    fs::copy_file(bench->file, out_dir / "inputs" / "bench.yaml", fs::copy_options::overwrite_existing, ec);
    if (!ec) inputs["bench"] = "inputs/bench.yaml";
  }
  json serve_json = {{"protocol", a.protocol}, {"host", "127.0.0.1"}, {"port", (*server)->data_port()}, {"faults", a.faults},
                     {"startup", !a.no_startup}, {"seed", a.seed}};

  // The signals are ours from here: the DUT is open and must close in order.
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  RunInfo info;
  info.scenario = "serve";
  info.scenario_file = bench ? bench->file : "";
  info.seed = a.seed;
  info.started_at = boot_started_at;
  info.tpmlab_version = kTpmlabVersion;
  info.host = Hostname();
  info.dut = label;
  info.config_json = json({{"serve", serve_json}, {"dut", dut_json}, {"inputs", inputs}}).dump();
  info.pid = ::getpid();
  info.pid_started = ProcessStartTime();
  auto run_id = (*store)->BeginRun(info);
  if (!run_id.ok()) {
    dut->Close();
    return Fail(run_id.status());
  }

  // Step 0: the boot, with the commands it sent.
  int next_index = 0;
  Status stored = Status::Ok();
  auto record = [&](StepResult&& step) -> Status {
    next_index = step.index + 1;
    Status s = (*store)->RecordStep(*run_id, step);
    if (!s.ok()) stored = s;
    return s;
  };
  {
    StepResult boot;
    boot.index = 0;
    boot.action = "boot";
    boot.status = "passed";
    boot.started_at = boot_started_at;
    boot.duration_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - boot_start).count();
    boot.trace = dut->trace().TakeRecords();
    for (auto& t : boot.trace) t.since_step_start = t.started - boot_start;
    boot.detail = {{"boot", *booted}};
    (void)record(std::move(boot));
  }
  for (const FaultRule& rule : rules) dut->faults().Add(rule);

  const uint16_t port = (*server)->data_port();
  const std::string tcti = std::string(serve::FlavourName(*flavour)) + ":host=127.0.0.1,port=" + std::to_string(port);
  std::cout << "tpmlab serve: " << label << " (" << *booted << ")\n"
            << "  data port     127.0.0.1:" << port << "\n"
            << "  " << (*flavour == serve::Flavour::kSwtpm ? "control port  " : "platform port ") << "127.0.0.1:"
            << (*server)->control_port() << " (" << serve::FlavourName(*flavour) << " protocol)\n";
  if (!rules.empty()) {
    std::cout << "  faults       ";
    for (const auto& f : a.faults) std::cout << " " << f;
    std::cout << "\n";
  }
  std::cout << "  database      " << DatabaseDisplayName(db) << " (run " << *run_id << ")\n"
            << "export TPM2TOOLS_TCTI=" << tcti << "\n"
            << "  (tpm2-tools: -T " << tcti << "; Ctrl-C or SIGTERM stops)" << std::endl;

  Status served = (*server)->Serve(*dut, record);
  const serve::ServeCounts counts = (*server)->counts();
  server->reset();

  // Closed in order: Shutdown(CLEAR) if the TPM answers, then the emulator
  // stops or the bench's parts are released; what the close sent is a step.
  const auto close_start = std::chrono::steady_clock::now();
  StepResult closing;
  closing.index = next_index;
  closing.action = "close";
  closing.status = "passed";
  closing.started_at = UtcNow();
  dut->faults().ClearRules();  // the Shutdown is tpmlab's, not a client's
  dut->Close();
  closing.duration_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - close_start).count();
  closing.trace = dut->trace().TakeRecords();
  for (auto& t : closing.trace) t.since_step_start = t.started - close_start;
  if (stored.ok()) (void)record(std::move(closing));

  const bool error = !served.ok() || !stored.ok();
  json outcome = {{"expectations", json::array()},
                  {"error", served.ok() ? (stored.ok() ? "" : stored.ToString()) : served.ToString()},
                  {"expected_failures", json::array()},
                  {"dut", dut_json},
                  {"inputs", inputs},
                  {"serve", {{"commands", counts.commands},
                             {"unanswered", counts.failed},
                             {"data_connections", counts.data_connections},
                             {"control_connections", counts.control_connections},
                             {"protocol_errors", counts.protocol_errors},
                             {"power_ons", counts.power_ons}}}};
  Status finished = (*store)->FinishRun(*run_id, error ? "error" : "passed", UtcNow(), outcome);
  Status written = finished.ok() ? WriteRunFiles(**store, *run_id, out_dir, RunJsonForm::kAuto) : finished;

  std::cout << "tpmlab serve: stopped: " << counts.commands << " commands relayed, " << counts.failed
            << " unanswered, " << counts.data_connections << " data and " << counts.control_connections
            << " " << (*flavour == serve::Flavour::kSwtpm ? "control" : "platform") << " connections, "
            << counts.protocol_errors << " closed for bad bytes, " << counts.power_ons << " _TPM_Init\n"
            << "  results: " << (out_dir / "run.json").string() << "\n"
            << "  database: " << DatabaseDisplayName(db) << " (run " << *run_id << ")" << std::endl;
  if (!served.ok()) return Fail(served);
  if (!stored.ok()) return Fail(stored);
  if (!written.ok()) return Fail(written);
  return g_signal != 0 ? kExitInterrupted : kExitPassed;
}

}  // namespace

Command AddServeCommand(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand(
      "serve",
      "Offer a bench's TPM (default: an auto-launched swtpm) to other tools as a simulator on 127.0.0.1: "
      "data port P, control port P+1 (tpm2-tools -T swtpm:port=P, or mssim:port=P with --protocol mssim); "
      "every relayed command is traced to the results database; Ctrl-C stops (exit 130)");
  cmd->add_option("--bench", a->bench, "Bench file: the DUT to serve (hw/README.md); default the embedded swtpm");
  cmd->add_option("--port", a->port, "Data port P (the second port is P+1); 0 picks a free pair (default 2321)")
      ->check(CLI::Range(0, 65534));
  cmd->add_option("--protocol", a->protocol,
                  "What the second port speaks: swtpm (swtpm's control channel, for the swtpm TCTI; default) or "
                  "mssim (the Microsoft simulator's platform port, for the mssim TCTI). The data port takes both "
                  "framings")
      ->check(CLI::IsMember({"swtpm", "mssim"}));
  cmd->add_option("-o,--out", a->out_dir, "Folder for run.json and the emulated DUT's state (default tpmlab-runs/serve-TIME)");
  cmd->add_option("--db", a->db, "Results database: a SQLite file or postgresql://... (default $TPMLAB_DB, else OUT/tpmlab.db)");
  cmd->add_option("--fault", a->faults,
                  "Inject a fault into relayed commands (repeatable): KIND[,cc=CODE][,count=N][,skip=N][,p=P] with "
                  "KIND latency=MS, rc=CODE|retry|yielded|testing|failure, corrupt, drop, disconnect; "
                  "e.g. --fault rc=0x101,cc=0x17b,count=1");
  cmd->add_option("--seed", a->seed, "Seed for the faults' probability draws (default 1)");
  cmd->add_flag("--no-startup", a->no_startup,
                "Leave the TPM powered but not started, for a client that sends TPM2_Startup itself");
  return {cmd, [a] { return Serve(*a); }};
}

}  // namespace tpmlab::cli
