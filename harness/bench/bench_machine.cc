// The `machine:` section of a bench file, what a machine refuses before a run
// starts, and what `bench check` looks for on this machine.
#include "harness/bench_machine.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "drivers/agent_links.h"
#include "drivers/process.h"
#include "harness/bench.h"
#include "harness/bench_policy.h"

namespace tpmlab {
namespace {

Result<uint16_t> Port(const YamlReader& r, const YAML::Node& n, const std::string& what) {
  TRY_ASSIGN(uint64_t port, r.Unsigned(n, what));
  if (port < 1 || port > 65535) return r.Error(n, what + " must be 1..65535");
  return static_cast<uint16_t>(port);
}

Status ParseSsh(const YamlReader& r, const YAML::Node& n, BenchMachine& m) {
  TRY(r.Keys(n, "machine.agent.ssh", {"host", "user", "port", "options", "command"}));
  if (!n["host"]) return r.Error(n, "machine.agent.ssh needs a host (a name ssh resolves, or one in your ssh config)");
  TRY_ASSIGN(m.ssh_host, r.String(n["host"], "machine.agent.ssh.host"));
  if (m.ssh_host.empty() || m.ssh_host[0] == '-') {
    return r.Error(n["host"], "machine.agent.ssh.host must be a host name, not '" + m.ssh_host + "'");
  }
  if (n["user"]) { TRY_ASSIGN(m.ssh_user, r.String(n["user"], "machine.agent.ssh.user")); }
  if (n["port"]) { TRY_ASSIGN(m.ssh_port, Port(r, n["port"], "machine.agent.ssh.port")); }
  if (n["options"]) {
    TRY_ASSIGN(m.ssh_options, r.StringList(n["options"], "machine.agent.ssh.options"));
    // tpmlab never stores a password; a tool that types one is not an ssh option.
    for (const std::string& option : m.ssh_options) {
      if (option.find("PasswordAuthentication=yes") != std::string::npos || option.find("sshpass") != std::string::npos) {
        return r.Error(n["options"], "machine.agent.ssh.options: tpmlab logs in with keys only (BatchMode=yes); "
                                     "use a key and your ssh config, not '" + option + "'");
      }
    }
  }
  if (n["command"]) {
    TRY_ASSIGN(m.ssh_command, r.String(n["command"], "machine.agent.ssh.command"));
    if (m.ssh_command.empty()) return r.Error(n["command"], "machine.agent.ssh.command is empty");
  }
  return Status::Ok();
}

Status ParseConsole(const YamlReader& r, const YAML::Node& n, BenchMachine& m) {
  TRY_ASSIGN(std::string console, r.String(n, "machine.agent.console"));
  // tcp:HOST:PORT; the host may be a bracketed IPv6 address.
  const std::string bad = "machine.agent.console must be tcp:HOST:PORT (a console server's port), not '" + console + "'";
  if (console.rfind("tcp:", 0) != 0) return r.Error(n, bad);
  const std::string rest = console.substr(4);
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) return r.Error(n, bad);
  std::string host = rest.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port = rest.substr(colon + 1);
  if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 || std::stoul(port) < 1 ||
      std::stoul(port) > 65535) {
    return r.Error(n, bad);
  }
  m.console_host = host;
  m.console_port = static_cast<uint16_t>(std::stoul(port));
  return Status::Ok();
}

}  // namespace

std::string BenchMachine::LinkDescription() const {
  switch (link) {
    case MachineLink::kSsh: {
      std::string s = "ssh " + (ssh_user.empty() ? "" : ssh_user + "@") + ssh_host;
      return ssh_port ? s + ":" + std::to_string(ssh_port) : s;
    }
    case MachineLink::kSerial: return "serial " + serial_device + " at " + std::to_string(baud);
    case MachineLink::kTcp: return "tcp console " + console_host + ":" + std::to_string(console_port);
  }
  return "?";
}

Result<BenchMachine> ParseBenchMachine(const YamlReader& r, const YAML::Node& n) {
  TRY(r.Keys(n, "machine", {"agent", "boot_timeout_s", "suspend", "firmware"}));
  BenchMachine m;
  m.where = r.Where(n);
  const YAML::Node agent = n["agent"];
  const std::string how = "machine needs agent: with one of ssh: {host: ...}, serial: {device: ...} or console: tcp:HOST:PORT";
  if (!agent) return r.Error(n, how);
  TRY(r.Keys(agent, "machine.agent", {"ssh", "serial", "console"}));
  const int links = (agent["ssh"] ? 1 : 0) + (agent["serial"] ? 1 : 0) + (agent["console"] ? 1 : 0);
  if (links != 1) return r.Error(agent, links == 0 ? how : "machine.agent takes one of ssh, serial and console, not several");
  if (const YAML::Node ssh = agent["ssh"]) {
    m.link = MachineLink::kSsh;
    TRY(ParseSsh(r, ssh, m));
  } else if (const YAML::Node serial = agent["serial"]) {
    m.link = MachineLink::kSerial;
    TRY(r.Keys(serial, "machine.agent.serial", {"device", "baud"}));
    if (!serial["device"]) return r.Error(serial, "machine.agent.serial needs a device (/dev/ttyUSB0)");
    TRY_ASSIGN(m.serial_device, r.String(serial["device"], "machine.agent.serial.device"));
    if (serial["baud"]) {
      TRY_ASSIGN(uint64_t baud, r.Unsigned(serial["baud"], "machine.agent.serial.baud"));
      static constexpr uint64_t kRates[] = {9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600};
      bool known = false;
      for (uint64_t rate : kRates) known = known || rate == baud;
      if (!known) {
        return r.Error(serial["baud"], "machine.agent.serial.baud must be one of 9600, 19200, 38400, 57600, 115200, "
                                       "230400, 460800, 921600");
      }
      m.baud = static_cast<uint32_t>(baud);
    }
  } else {
    m.link = MachineLink::kTcp;
    TRY(ParseConsole(r, agent["console"], m));
  }
  if (n["boot_timeout_s"]) {
    TRY_ASSIGN(uint64_t s, r.Unsigned(n["boot_timeout_s"], "machine.boot_timeout_s"));
    if (s < 1 || s > 7200) return r.Error(n["boot_timeout_s"], "machine.boot_timeout_s must be 1..7200");
    m.boot_timeout_s = static_cast<uint32_t>(s);
  }
  if (n["suspend"]) { TRY_ASSIGN(m.suspend, r.Bool(n["suspend"], "machine.suspend")); }
  if (const YAML::Node fw = n["firmware"]) {
    TRY(r.Keys(fw, "machine.firmware", {"default"}));
    if (!fw["default"]) return r.Error(fw, "machine.firmware needs default: NAME (what the installed firmware is called)");
    TRY_ASSIGN(m.firmware, r.String(fw["default"], "machine.firmware.default"));
  }
  return m;
}

std::string MachineRefusesCycle(const Bench& bench, PowerCycleKind kind) {
  const std::string machine = "bench '" + bench.name + "' is a whole machine";
  switch (kind) {
    case PowerCycleKind::kReset:
      return "";  // an OS reboot through the agent
    case PowerCycleKind::kRestart:
      return machine + ": a restart (Shutdown(STATE), then Startup(CLEAR)) is a resume from hibernation, which "
                       "tpmlab does not ask of a machine";
    case PowerCycleKind::kResume:
      if (bench.machine && bench.machine->suspend) return "";
      return machine + " without machine.suspend: true (set it only when the platform does S3 and has a wake "
                       "source configured, or the machine stays asleep)";
    case PowerCycleKind::kPowerLoss:
    case PowerCycleKind::kHardLoss:
      if (bench.power.kind == PowerKind::kNone) {
        return machine + " with power: none: a " + std::string(PowerCycleKindName(kind)) +
               " needs a power switch (a BMC, a relay, a command)";
      }
      return "";
  }
  return machine + ": unknown power cycle kind";
}

std::string UnrunnableOnMachine(const BenchDemand& demand, const Bench& bench) {
  for (PowerCycleKind kind : demand.power_cycle_kinds) {
    if (std::string why = MachineRefusesCycle(bench, kind); !why.empty()) return why;
  }
  if (demand.emulator_process) return "this fault freezes or kills an emulator: an emulated DUT only";
  if (demand.emulator_state) return "checkpoints copy an emulator's NV state: an emulated DUT only";
  if (demand.tpm_image) return "TPM images are swtpm builds: tpmlab has no firmware installer for a machine's chip";
  if (demand.firmware_model && bench.flash) {
    // The chip is written with flashrom while the machine is off: tpmlab must be able to switch it off.
    if (bench.power.kind == PowerKind::kNone) {
      return "writing platform firmware '" + demand.firmware_name + "' needs the machine off, and the bench has "
             "power: none";
    }
    if (!bench.flash->Image(demand.firmware_name)) {
      return "the bench's flash.images name no '" + demand.firmware_name + "' (it has: " + bench.flash->ImageNames() + ")";
    }
    return "";
  }
  if (demand.firmware_model) {
    const std::string& installed = bench.machine ? bench.machine->firmware : std::string();
    if (installed.empty() || installed != demand.firmware_name) {
      return "the machine's platform firmware is what it has installed" +
             (installed.empty() ? std::string() : " ('" + installed + "')") +
             "; this bench gives tpmlab no way to install '" + demand.firmware_name + "'";
    }
  }
  return "";
}

std::vector<MachineProbe> ProbeMachine(const BenchMachine& m) {
  std::vector<MachineProbe> items;
  switch (m.link) {
    case MachineLink::kSsh: {
      if (auto ssh = FindProgram("ssh")) {
        items.push_back({"machine.agent.ssh", true, "ssh at " + ssh->string()});
      } else {
        items.push_back({"machine.agent.ssh", false, "ssh not found on PATH: install the Debian package openssh-client"});
      }
      // A name from the user's ssh config (Host alias) may not resolve by
      // itself; ssh would map it. Said as it is.
      if (Status resolved = ResolveHost(m.ssh_host); resolved.ok()) {
        items.push_back({"machine.agent.ssh", true, "host " + m.ssh_host + " resolves"});
      } else {
        items.push_back({"machine.agent.ssh", false, resolved.message() + " (an alias only your ssh config knows "
                                                                          "resolves when ssh maps it)"});
      }
      break;
    }
    case MachineLink::kSerial: {
      std::error_code ec;
      if (!std::filesystem::exists(m.serial_device, ec)) {
        items.push_back({"machine.agent.serial", false, m.serial_device + ": no such device (is the USB-serial adapter plugged in?)"});
        break;
      }
      const int fd = ::open(m.serial_device.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) {
        items.push_back({"machine.agent.serial", false, m.serial_device + ": " + std::strerror(errno) +
                                                            (errno == EACCES ? " (join group dialout)" : "")});
        break;
      }
      const bool tty = ::isatty(fd) == 1;
      ::close(fd);
      items.push_back({"machine.agent.serial", tty, m.serial_device + (tty ? " opens (a tty)" : " is not a tty")});
      break;
    }
    case MachineLink::kTcp: {
      auto channel = ConnectTcpAgentChannel(m.console_host, m.console_port, std::chrono::milliseconds(5000));
      if (channel.ok()) {
        items.push_back({"machine.agent.console", true, m.console_host + ":" + std::to_string(m.console_port) +
                                                            " accepts a connection (closed again, nothing sent)"});
      } else {
        items.push_back({"machine.agent.console", false, channel.status().message()});
      }
      break;
    }
  }
  return items;
}

nlohmann::json MachineSummaryJson(const BenchMachine& m) {
  return {{"agent", m.LinkDescription()},
          {"boot_timeout_s", m.boot_timeout_s},
          {"suspend", m.suspend},
          {"firmware", m.firmware}};
}

}  // namespace tpmlab
