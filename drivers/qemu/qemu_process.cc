#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "drivers/qemu.h"

namespace tpmlab {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using json = nlohmann::json;

namespace {

Status MissingPackage(const std::string& what, const std::string& package) {
  return Status::Error(Layer::kEnvironment, what + ": install the Debian package '" + package +
                                                "' (apt-get install " + package + ")");
}

Status NeedFile(const fs::path& file, const std::string& role, const std::string& package) {
  std::error_code ec;
  if (file.empty()) return MissingPackage(role + " not given", package);
  if (!fs::is_regular_file(file, ec)) return MissingPackage(role + " " + file.string() + " is absent", package);
  return Status::Ok();
}

// Runs a 64 KiB BIOS whose reset vector writes 0x10 to isa-debug-exit:
// QEMU exits with (0x10 << 1) | 1 = 33 only when the accelerator really runs
// guest code (here KVM opens /dev/kvm but fails with "KVM internal error").
bool KvmRunsGuestCode(const std::string& binary) {
  if (::access("/dev/kvm", R_OK | W_OK) != 0) return false;
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  ::close(fd);
  const fs::path dir = fs::temp_directory_path() / ("tpmlab-kvm-probe-" + std::to_string(::getpid()));
  std::error_code ec;
  fs::create_directories(dir, ec);
  std::string bios(65536, '\xf4');  // hlt everywhere
  const char reset_vector[] = {'\xb0', '\x10', '\xe6', '\xf4', '\xf4'};  // mov al,0x10; out 0xf4,al; hlt
  std::copy(std::begin(reset_vector), std::end(reset_vector), bios.begin() + 0xfff0);
  std::ofstream(dir / "probe.bin", std::ios::binary) << bios;
  // With SMM on: Secure Boot builds of OVMF need it, and a nested KVM (a
  // VM in a cloud VM) may run guest code yet refuse SMM ("System Management
  // Mode not supported by this hypervisor"); such a host boots with TCG.
  auto rc = RunProgram({binary, "-accel", "kvm", "-machine", "pc,smm=on", "-nodefaults", "-display", "none",
                        "-bios", (dir / "probe.bin").string(), "-device",
                        "isa-debug-exit,iobase=0xf4,iosize=0x04"},
                       dir / "probe.log", milliseconds(10000));
  fs::remove_all(dir, ec);
  return rc.ok() && *rc == 33;
}

}  // namespace

std::string ResolveAccel(const std::string& binary, const std::string& requested) {
  if (requested != "auto") return requested;
  static std::mutex mutex;
  static std::string resolved;
  std::lock_guard<std::mutex> lock(mutex);
  if (resolved.empty()) resolved = KvmRunsGuestCode(binary) ? "kvm" : "tcg";
  return resolved;
}

Result<std::unique_ptr<QemuProcess>> QemuProcess::Launch(QemuConfig config) {
  auto binary = FindProgram(config.binary);
  if (!binary) return MissingPackage(config.binary + " not found on PATH", "qemu-system-x86");
  if (config.flash_chip.empty()) {
    TRY(NeedFile(config.ovmf_code, "OVMF code image", "ovmf"));
    TRY(NeedFile(config.ovmf_vars, "OVMF vars image", "ovmf"));
  } else {
    TRY(NeedFile(config.flash_chip, "firmware flash chip file", "ovmf"));
  }
  TRY(NeedFile(config.kernel, "kernel", "linux-image-cloud-amd64"));
  std::error_code ec;
  if (!config.initrd.empty() && !fs::is_regular_file(config.initrd, ec)) {
    return Status::Error(Layer::kHarness, "initramfs " + config.initrd.string() + " is absent");
  }
  if (config.tpm_interface != "tpm-tis" && config.tpm_interface != "tpm-crb") {
    return Status::Error(Layer::kScenario, "TPM interface '" + config.tpm_interface +
                                               "' is neither tpm-tis nor tpm-crb");
  }
  if (config.accel != "auto" && config.accel != "kvm" && config.accel != "tcg") {
    return Status::Error(Layer::kScenario, "accelerator '" + config.accel + "' is not kvm, tcg or auto");
  }
  if (config.work_dir.empty()) return Status::Error(Layer::kHarness, "QEMU work folder not given");
  config.work_dir = fs::absolute(config.work_dir);
  fs::create_directories(config.work_dir, ec);
  if (ec) {
    return Status::Error(Layer::kHarness, "cannot create " + config.work_dir.string() + ": " + ec.message());
  }
  if (!fs::is_socket(config.swtpm_ctrl_socket, ec)) {
    return Status::Error(Layer::kEmulator, "no swtpm listens on " + config.swtpm_ctrl_socket.string() +
                                               ": launch it (SwtpmConfig::qemu_ctrl_socket) first");
  }

  std::unique_ptr<QemuProcess> q(new QemuProcess(std::move(config)));
  const QemuConfig& c = q->config_;
  q->accel_ = ResolveAccel(binary->string(), c.accel);
  for (const fs::path& stale : {q->qmp_socket(), q->agent_socket()}) fs::remove(stale, ec);

  auto& a = q->argv_;
  a = {binary->string(), "-name", "tpmlab", "-nodefaults", "-no-user-config", "-display", "none",
       "-no-shutdown", "-machine", c.machine + (c.smm ? ",smm=on" : ""), "-accel", q->accel_,
       "-m", std::to_string(c.memory_mb)};
  if (c.smm) a.insert(a.end(), {"-global", "driver=cfi.pflash01,property=secure,value=on"});
  if (!c.flash_chip.empty()) {
    a.insert(a.end(), {"-drive", "if=pflash,format=raw,unit=0,file=" + fs::absolute(c.flash_chip).string()});
  } else {
    a.insert(a.end(), {"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + fs::absolute(c.ovmf_code).string(),
                       "-drive", "if=pflash,format=raw,unit=1,file=" + fs::absolute(c.ovmf_vars).string()});
  }
  if (c.s3) a.insert(a.end(), {"-global", "ICH9-LPC.disable_s3=0"});
  a.insert(a.end(), {"-chardev", "socket,id=chrtpm,path=" + fs::absolute(c.swtpm_ctrl_socket).string(),
                     "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
                     "-device", c.tpm_interface + ",tpmdev=tpm0",
                     "-chardev", "file,id=console,append=on,path=" + q->console_log().string(),
                     "-serial", "chardev:console",
                     "-chardev", "socket,id=agent,server=on,wait=off,path=" + q->agent_socket().string(),
                     "-serial", "chardev:agent",
                     "-chardev", "socket,id=qmp,server=on,wait=off,path=" + q->qmp_socket().string(),
                     "-mon", "chardev=qmp,mode=control",
                     "-kernel", fs::absolute(c.kernel).string()});
  if (!c.initrd.empty()) a.insert(a.end(), {"-initrd", fs::absolute(c.initrd).string()});
  if (!c.append.empty()) a.insert(a.end(), {"-append", c.append});

  {
    std::ofstream log(q->stderr_log(), std::ios::app);
    log << "tpmlab: launching";
    for (const auto& arg : a) log << ' ' << arg;
    log << '\n';
  }
  ChildProcess::Options options;
  options.die_with_parent = true;
  TRY_ASSIGN(q->child_, ChildProcess::Spawn(a, q->stderr_log(), options));
  TRY(q->ConnectQmp());
  return q;
}

QemuProcess::~QemuProcess() { Kill(); }

Status QemuProcess::Dead(const std::string& doing) {
  if (child_.Wait(milliseconds(500))) return CheckAlive().Wrap(doing);
  return Status::Error(Layer::kEmulator, doing + ": QEMU's QMP connection dropped");
}

Status QemuProcess::ConnectQmp() {
  const auto deadline = Clock::now() + config_.start_timeout;
  for (;;) {
    if (!child_.running()) return CheckAlive().Wrap("QEMU while starting");
    std::error_code ec;
    if (fs::exists(qmp_socket(), ec)) {
      auto socket = Socket::Connect(Endpoint{"", 0, qmp_socket().string()}, milliseconds(2000));
      if (socket.ok()) {
        qmp_ = std::move(socket).value();
        break;
      }
    }
    if (Clock::now() >= deadline) {
      Kill();
      return Status::Timeout("QEMU's QMP socket " + qmp_socket().string() + " did not answer within " +
                             std::to_string(config_.start_timeout.count()) + " ms; stderr tail:\n" +
                             StderrTail());
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  // The greeting, then capabilities negotiation leaves command mode.
  TRY_ASSIGN(std::string greeting, ReadMessage(milliseconds(10000)));
  if (greeting.find("\"QMP\"") == std::string::npos) {
    return Status::Error(Layer::kEmulator, "QMP greeting expected, got: " + greeting);
  }
  return Execute("qmp_capabilities", milliseconds(10000)).status();
}

Result<std::string> QemuProcess::ReadMessage(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto end = qmp_buffer_.find('\n');
    if (end != std::string::npos) {
      std::string line = qmp_buffer_.substr(0, end);
      qmp_buffer_.erase(0, end + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) return line;
      continue;
    }
    if (!qmp_.is_open()) return Dead("QMP");
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Status::Timeout("no QMP message within " + std::to_string(timeout.count()) + " ms");
    pollfd pfd{qmp_.fd(), POLLIN, 0};
    int n = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) return Status::Error(Layer::kEmulator, std::string("poll QMP: ") + std::strerror(errno));
    if (n <= 0) continue;
    char chunk[4096];
    ssize_t got = ::read(qmp_.fd(), chunk, sizeof chunk);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0) {
      qmp_.Close();
      return Dead("QMP");
    }
    qmp_buffer_.append(chunk, static_cast<size_t>(got));
  }
}

Result<std::string> QemuProcess::Execute(const std::string& command, milliseconds timeout) {
  if (!qmp_.is_open()) return Dead("QMP " + command);
  const std::string request = json{{"execute", command}}.dump() + "\n";
  Status sent = qmp_.SendAll(ByteView(reinterpret_cast<const uint8_t*>(request.data()), request.size()), timeout);
  if (!sent.ok()) {
    qmp_.Close();
    return Dead("QMP " + command);
  }
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    auto line = ReadMessage(std::max(left, milliseconds(1)));
    if (!line.ok()) return line.status().Wrap("QMP " + command);
    json message = json::parse(*line, nullptr, /*allow_exceptions=*/false);
    if (message.is_discarded()) return Status::Error(Layer::kEmulator, "QMP sent what is not JSON: " + *line);
    if (message.contains("event")) {
      events_.push_back(message["event"].get<std::string>());
      continue;
    }
    if (message.contains("error")) {
      return Status::Error(Layer::kEmulator, "QMP " + command + " refused: " +
                                                 message["error"].value("desc", message["error"].dump()));
    }
    if (message.contains("return")) return message["return"].dump();
  }
}

Result<bool> QemuProcess::EventQueued(const std::string& name, milliseconds wait, bool consume) {
  const auto deadline = Clock::now() + wait;
  for (;;) {
    auto it = std::find(events_.begin(), events_.end(), name);
    if (it != events_.end()) {
      if (consume) events_.erase(it);
      return true;
    }
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    auto line = ReadMessage(left);
    if (!line.ok()) {
      if (line.status().timed_out()) return false;
      return line.status();
    }
    json message = json::parse(*line, nullptr, false);
    if (!message.is_discarded() && message.contains("event")) {
      events_.push_back(message["event"].get<std::string>());
    }
  }
}

Status QemuProcess::SystemReset() {
  TRY_ASSIGN(std::string before, QueryStatus());
  TRY(Execute("system_reset", milliseconds(10000)));
  // From "shutdown" (a guest power-off under -no-shutdown) a reset leaves the
  // board in "prelaunch"; it boots only when continued.
  if (before == "shutdown" || before == "prelaunch" || before == "paused") {
    TRY_ASSIGN(bool reset, EventQueued("RESET", milliseconds(10000), /*consume=*/false));
    if (!reset) return Status::Timeout("QEMU sent no RESET event after system_reset");
    TRY_ASSIGN(std::string after, QueryStatus());
    if (after != "running") return Continue();
  }
  return Status::Ok();
}

Status QemuProcess::SystemWakeup() { return Execute("system_wakeup", milliseconds(10000)).status(); }

Status QemuProcess::Continue() { return Execute("cont", milliseconds(10000)).status(); }

Result<std::string> QemuProcess::QueryStatus() {
  TRY_ASSIGN(std::string reply, Execute("query-status", milliseconds(10000)));
  json status = json::parse(reply, nullptr, false);
  if (status.is_discarded() || !status.contains("status")) {
    return Status::Error(Layer::kEmulator, "QMP query-status without a status: " + reply);
  }
  return status["status"].get<std::string>();
}

Status QemuProcess::WaitStatus(const std::string& status, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string last;
  for (;;) {
    TRY_ASSIGN(last, QueryStatus());
    if (last == status) return Status::Ok();
    if (Clock::now() >= deadline) {
      return Status::Timeout("QEMU status is '" + last + "', not '" + status + "', after " +
                             std::to_string(timeout.count()) + " ms");
    }
    // Waiting on events between polls also keeps them queued for WaitEvent.
    auto ignored = EventQueued("\x01never", milliseconds(200), false);
    if (!ignored.ok()) return ignored.status();
  }
}

Status QemuProcess::WaitEvent(const std::string& name, milliseconds timeout) {
  TRY_ASSIGN(bool seen, EventQueued(name, timeout, /*consume=*/true));
  if (seen) return Status::Ok();
  return Status::Timeout("QEMU sent no " + name + " event within " + std::to_string(timeout.count()) + " ms");
}

void QemuProcess::ClearEvents() { events_.clear(); }

void QemuProcess::Kill() {
  qmp_.Close();
  child_.Kill(SIGKILL, milliseconds(5000));
}

void QemuProcess::Quit() {
  if (child_.running() && qmp_.is_open()) {
    auto ignored = Execute("quit", milliseconds(5000));
    (void)ignored;
    child_.Wait(milliseconds(10000));
  }
  Kill();
}

bool QemuProcess::alive() { return child_.running(); }

Status QemuProcess::CheckAlive() {
  if (alive()) return Status::Ok();
  return Status::Error(Layer::kEmulator, "QEMU " + child_.exit_description().value_or("is not running") +
                                             "; stderr tail:\n" + StderrTail());
}

std::string QemuProcess::StderrTail(size_t lines) const { return FileTail(stderr_log(), lines); }

uint64_t QemuProcess::console_size() const {
  std::error_code ec;
  auto size = fs::file_size(console_log(), ec);
  return ec ? 0 : size;
}

}  // namespace tpmlab
