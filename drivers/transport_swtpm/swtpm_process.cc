#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <thread>

#include "drivers/swtpm.h"

namespace tpmlab {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

Status MissingPackage(const std::string& program, const std::string& package) {
  return Status::Error(Layer::kEnvironment, program + " not found on PATH: install the Debian package '" +
                                             package + "' (apt-get install " + package +
                                             ", or run tools/setup)");
}

uint16_t RandomPortPair() {
  static thread_local std::mt19937 rng(std::random_device{}());
  // Even base, below the usual ephemeral range so the kernel does not hand
  // the same ports to outgoing connections.
  return static_cast<uint16_t>(std::uniform_int_distribution<int>(10000, 16000)(rng) * 2);
}

}  // namespace

Result<SwtpmCapabilities> ProbeSwtpm(const std::string& binary) {
  if (!FindProgram(binary)) return MissingPackage(binary, "swtpm");
  static std::atomic<unsigned> probes{0};
  fs::path out = fs::temp_directory_path() /
                 ("tpmlab-swtpm-caps-" + std::to_string(::getpid()) + "-" +
                  std::to_string(probes++) + ".json");
  auto rc = RunProgram({binary, "socket", "--print-capabilities"}, out,
                       std::chrono::milliseconds(10000));
  std::string json = FileTail(out, 100);
  std::error_code ignored;
  fs::remove(out, ignored);
  if (!rc.ok()) return rc.status().Wrap(binary + " --print-capabilities");
  if (*rc != 0) {
    return Status::Error(Layer::kEmulator, binary + " socket --print-capabilities exited with " +
                                               std::to_string(*rc) + ": " + json);
  }
  SwtpmCapabilities caps;
  caps.raw_json = json;
  if (json.find("\"tpm-2.0\"") == std::string::npos) {
    return Status::Error(Layer::kEmulator, binary + " does not offer TPM 2.0: " + json);
  }
  caps.disable_auto_shutdown =
      json.find("\"flags-opt-disable-auto-shutdown\"") != std::string::npos;
  auto at = json.find("\"version\"");
  if (at != std::string::npos) {
    auto q1 = json.find('"', json.find(':', at) + 1);
    auto q2 = q1 == std::string::npos ? q1 : json.find('"', q1 + 1);
    if (q2 != std::string::npos) caps.version = json.substr(q1 + 1, q2 - q1 - 1);
  }
  return caps;
}

Result<std::unique_ptr<SwtpmProcess>> SwtpmProcess::Launch(SwtpmConfig config) {
  TRY_ASSIGN(SwtpmCapabilities caps, ProbeSwtpm(config.binary));
  std::error_code ec;
  if (!config.qemu_ctrl_socket.empty()) {
    // swtpm started by QEMU's CMD_INIT fails with 0x9 on a relative state folder.
    config.state_dir = fs::absolute(config.state_dir);
    config.qemu_ctrl_socket = fs::absolute(config.qemu_ctrl_socket);
  }
  fs::create_directories(config.state_dir, ec);
  if (ec) {
    return Status::Error(Layer::kEmulator, "cannot create state folder " +
                                               config.state_dir.string() + ": " + ec.message());
  }
  std::unique_ptr<SwtpmProcess> p(new SwtpmProcess(std::move(config)));
  p->caps_ = std::move(caps);
  TRY(p->Start(/*keep_ports=*/false));
  return p;
}

SwtpmProcess::~SwtpmProcess() { Stop(); }

std::vector<std::string> SwtpmProcess::CommandLine() const {
  const std::string dir = config_.state_dir.string();
  std::vector<std::string> argv;
  // env(1) execs swtpm in place, so the pid stays the emulator's.
  if (!config_.library_dir.empty()) argv = {"env", "LD_LIBRARY_PATH=" + config_.library_dir};
  argv.insert(argv.end(), {config_.binary, "socket", "--tpm2", "--tpmstate", "dir=" + dir});
  const std::string log = "file=" + log_file().string() + ",level=" + std::to_string(config_.log_level);
  if (qemu_mode()) {
    // QEMU hands over the data channel and sends CMD_INIT itself.
    argv.insert(argv.end(), {"--ctrl", "type=unixio,path=" + ctrl_.path});
    if (caps_.disable_auto_shutdown) argv.insert(argv.end(), {"--flags", "disable-auto-shutdown"});
    argv.insert(argv.end(), {"--log", log});
    return argv;
  }
  if (data_.is_unix()) {
    argv.insert(argv.end(), {"--server", "type=unixio,path=" + data_.path,
                             "--ctrl", "type=unixio,path=" + ctrl_.path});
  } else {
    argv.insert(argv.end(),
                {"--server", "type=tcp,port=" + std::to_string(data_.port) + ",bindaddr=127.0.0.1",
                 "--ctrl", "type=tcp,port=" + std::to_string(ctrl_.port) + ",bindaddr=127.0.0.1"});
  }
  // swtpm >= 0.8 would send its own Shutdown before every init and on exit,
  // turning each power loss into an orderly cycle; keep losses unorderly.
  std::string flags = "not-need-init";
  if (caps_.disable_auto_shutdown) flags += ",disable-auto-shutdown";
  argv.insert(argv.end(), {"--flags", flags, "--locality", "allow-set-locality", "--log", log});
  return argv;
}

Status SwtpmProcess::Start(bool keep_ports) {
  constexpr int kAttempts = 8;
  Status last;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (qemu_mode()) {
      data_ = Endpoint{"", 0, ""};
      ctrl_ = Endpoint{"", 0, config_.qemu_ctrl_socket.string()};
      std::error_code ignored;
      fs::remove(ctrl_.path, ignored);
    } else if (config_.unix_sockets) {
      data_ = Endpoint{"", 0, (config_.state_dir / "swtpm-data.sock").string()};
      ctrl_ = Endpoint{"", 0, (config_.state_dir / "swtpm-ctrl.sock").string()};
      std::error_code ignored;
      fs::remove(data_.path, ignored);
      fs::remove(ctrl_.path, ignored);
    } else if (attempt == 0 && keep_ports && data_.port != 0) {
      // A relaunch keeps its ports, so clients reconnect where they were.
    } else if (attempt == 0 && config_.port != 0) {
      data_ = Endpoint{"127.0.0.1", config_.port, ""};
      ctrl_ = Endpoint{"127.0.0.1", static_cast<uint16_t>(config_.port + 1), ""};
    } else {
      uint16_t port = RandomPortPair();
      if (!(LoopbackPortFree(port) && LoopbackPortFree(port + 1))) continue;
      data_ = Endpoint{"127.0.0.1", port, ""};
      ctrl_ = Endpoint{"127.0.0.1", static_cast<uint16_t>(port + 1), ""};
    }
    last = StartOnce();
    if (last.ok()) return last;
    // swtpm exits when it cannot bind: the port was taken (by someone else,
    // or between our check and its bind). Try another pair. A swtpm that
    // runs but does not answer is a different failure: give up.
    if (qemu_mode() || config_.unix_sockets || last.timed_out()) break;
  }
  return last.ok() ? Status::Error(Layer::kEmulator, "no free loopback port pair found") : last;
}

Status SwtpmProcess::StartOnce() {
  const auto deadline = Clock::now() + config_.start_timeout;
  ChildProcess::Options options;
  options.die_with_parent = qemu_mode();
  TRY_ASSIGN(child_, ChildProcess::Spawn(CommandLine(), log_file(), options));
  ++generation_;
  // Ready means the control channel answers a command, not just accepts
  // (in QEMU mode too: the probe's connection closes before QEMU connects).
  for (;;) {
    if (!child_.running()) {
      return Status::Error(Layer::kEmulator, "swtpm " + child_.exit_description().value_or("ended") +
                                                 " while starting; log tail:\n" + LogTail());
    }
    SwtpmControl probe(ctrl_, std::chrono::milliseconds(500));
    if (probe.GetCapability().ok()) return Status::Ok();
    if (Clock::now() >= deadline) {
      child_.Kill(SIGKILL, std::chrono::milliseconds(1000));
      return Status::Timeout("swtpm did not answer on " + ctrl_.ToString() + " within " +
                             std::to_string(config_.start_timeout.count()) + " ms; log tail:\n" +
                             LogTail());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

Status SwtpmProcess::Relaunch() {
  if (alive()) return Status::Ok();
  return Start(/*keep_ports=*/true);
}

void SwtpmProcess::Kill(int signal) { child_.Kill(signal, std::chrono::milliseconds(2000)); }

void SwtpmProcess::Freeze(bool frozen) { child_.Signal(frozen ? SIGSTOP : SIGCONT); }

void SwtpmProcess::Stop() {
  if (!alive()) return;
  child_.Signal(SIGCONT);
  // CMD_SHUTDOWN makes swtpm write its state and exit on its own.
  SwtpmControl ctrl(ctrl_, std::chrono::milliseconds(2000));
  if (ctrl.Shutdown().ok() && child_.Wait(std::chrono::milliseconds(3000))) return;
  child_.Kill(SIGTERM, std::chrono::milliseconds(3000));
}

bool SwtpmProcess::alive() { return child_.running(); }

Status SwtpmProcess::SetImage(const std::string& binary, const std::string& library_dir) {
  TRY_ASSIGN(caps_, ProbeSwtpm(binary));
  config_.binary = binary;
  config_.library_dir = library_dir;
  return Status::Ok();
}

Status SwtpmProcess::CheckAlive() {
  if (alive()) return Status::Ok();
  return Status::Error(Layer::kEmulator, "swtpm (state " + config_.state_dir.string() + ") " +
                                             child_.exit_description().value_or("is not running") +
                                             "; log tail:\n" + LogTail());
}

std::string SwtpmProcess::LogTail(size_t lines) const { return FileTail(log_file(), lines); }

Status SwtpmTransport::Explain(Status error) {
  socket_.Close();
  // A dropped connection usually means swtpm died: say how, with its log.
  if (!error.timed_out() && process_.EndedWithin(std::chrono::milliseconds(250))) {
    return process_.CheckAlive().Wrap(error.message());
  }
  return error;
}

Status SwtpmTransport::DoTransmit(ByteView command) {
  // Reconnect after a relaunch, or when swtpm dropped the connection.
  if (!socket_.is_open() || connected_generation_ != process_.generation() ||
      socket_.HasPendingInputOrEof()) {
    socket_.Close();
    auto s = Socket::Connect(process_.data_endpoint(), std::chrono::milliseconds(5000));
    if (!s.ok()) return Explain(s.status());
    socket_ = std::move(*s);
    connected_generation_ = process_.generation();
  }
  Status sent = socket_.SendAll(command, command_timeout());
  return sent.ok() ? sent : Explain(sent);
}

Result<Bytes> SwtpmTransport::DoReceive(Duration timeout) {
  Bytes response(kTpmHeaderSize);
  Status got = socket_.ReadExact(response.data(), kTpmHeaderSize, timeout);
  if (!got.ok()) return Explain(got);
  const uint32_t size = TpmHeaderSize(response);
  if (size < kTpmHeaderSize || size > kTpmMaxMessage) {
    socket_.Close();
    return Status::Error(Layer::kTransport, "response header claims " + std::to_string(size) +
                                                " bytes from " + process_.data_endpoint().ToString());
  }
  response.resize(size);
  got = socket_.ReadExact(response.data() + kTpmHeaderSize, size - kTpmHeaderSize, timeout);
  if (!got.ok()) return Explain(got);
  return response;
}

Status SwtpmPower::DoOff(PowerCut cut) {
  if (cut == PowerCut::kHard) {
    process_.Kill(SIGKILL);
    return Status::Ok();
  }
  TRY(process_.CheckAlive());
  return process_.control().Stop();
}

Status SwtpmPower::DoOn() {
  TRY(process_.Relaunch());
  return process_.control().Init(true);
}

Status SwtpmPower::DoCycle(PowerCut cut) {
  if (cut == PowerCut::kHard) {
    TRY(DoOff(cut));
    return DoOn();
  }
  TRY(process_.CheckAlive());
  return process_.control().Init(true);
}

bool SwtpmStateExists(const fs::path& state_dir) {
  return fs::exists(state_dir / "tpm2-00.permall");
}

Status ProvisionSwtpmState(const fs::path& state_dir, const ProvisionOptions& options) {
  if (!FindProgram("swtpm_setup")) return MissingPackage("swtpm_setup", "swtpm-tools");
  if (!FindProgram(options.swtpm_binary)) return MissingPackage(options.swtpm_binary, "swtpm");
  std::error_code ec;
  fs::create_directories(state_dir, ec);
  std::string banks;
  for (const auto& b : options.banks) banks += (banks.empty() ? "" : ",") + b;
  std::vector<std::string> argv = {"swtpm_setup", "--tpm2", "--tpmstate", state_dir.string(),
                                   "--createek", "--pcr-banks", banks, "--overwrite",
                                   "--tpm", FindProgram(options.swtpm_binary)->string() + " socket"};
  if (options.ek_certificates) {
    argv.insert(argv.end(), {"--create-ek-cert", "--create-platform-cert"});
  }
  const fs::path log = state_dir / "swtpm_setup.log";
  TRY_ASSIGN(int rc, RunProgram(argv, log, options.timeout));
  if (rc != 0) {
    return Status::Error(Layer::kEmulator, "swtpm_setup exited with " + std::to_string(rc) +
                                               " for " + state_dir.string() + "; log tail:\n" +
                                               FileTail(log, 10));
  }
  return Status::Ok();
}

}  // namespace tpmlab
