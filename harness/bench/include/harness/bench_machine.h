// A bench's `machine:` section: a whole machine (a board or a server with its
// own firmware and TPM) reached through tpmlab-agent on its Linux, over SSH
// (the system's OpenSSH client, the user's own keys and ssh config), a serial
// console or a TCP console (ser2net, a QEMU chardev socket). Its firmware
// starts and measures the chip at every boot; tpmlab powers it with the
// bench's switch (or not at all: power none), reboots and suspends it through
// the agent, and reads the log its firmware wrote.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "drivers/status.h"
#include "harness/platform.h"
#include "harness/yaml_reader.h"

namespace tpmlab {

struct Bench;
struct BenchDemand;

enum class MachineLink { kSsh, kSerial, kTcp };

struct BenchMachine {
  MachineLink link = MachineLink::kSsh;
  // ssh: ssh -T [-p PORT] [OPTIONS] [USER@]HOST COMMAND
  std::string ssh_host;
  std::string ssh_user;                  // "": ssh's own choice (ssh config, then the local user)
  uint32_t ssh_port = 0;                 // 0: ssh's own choice (ssh config, then 22)
  std::vector<std::string> ssh_options;  // passed as they are ("-F", "~/.ssh/config", "-i", KEY)
  std::string ssh_command = "tpmlab-agent --stdio";
  // serial: the machine's agent serves `tpmlab-agent --channel /dev/ttyS0`
  std::string serial_device;
  uint32_t baud = 115200;
  // console: tcp:HOST:PORT (a console server or a QEMU chardev socket)
  std::string console_host;
  uint16_t console_port = 0;

  uint32_t boot_timeout_s = 300;  // power on (or reboot) to the agent's hello
  bool suspend = false;           // resume cycles: the platform does S3 and has a wake source
  std::string firmware;           // firmware.default: what the installed firmware is called ("" = unnamed)
  SourceLocation where;

  /// "ssh root@lab-board-7:22", "serial /dev/ttyUSB0 at 115200", "tcp console 127.0.0.1:7001".
  std::string LinkDescription() const;
};

/// Parses a bench's `machine:` mapping. Exactly one of agent.ssh,
/// agent.serial, agent.console; errors name file:line:column.
Result<BenchMachine> ParseBenchMachine(const YamlReader& reader, const YAML::Node& node);

/// Why a machine bench cannot do a power cycle of `kind`, or "" when it can:
/// reset through the agent always; resume only with machine.suspend; loss
/// cycles only with a power switch; restart (hibernation) never.
std::string MachineRefusesCycle(const Bench& bench, PowerCycleKind kind);

/// Why a step asking `demand` cannot run on a machine bench, or "".
std::string UnrunnableOnMachine(const BenchDemand& demand, const Bench& bench);

// What a machine bench needs on this machine, as `bench check` lines.
struct MachineProbe {
  std::string part;
  bool present = false;
  std::string detail;
};
/// ssh on PATH and the host resolvable; the serial device present and
/// openable; the TCP console's port accepting a connection (closed at once).
/// Nothing is sent to the machine.
std::vector<MachineProbe> ProbeMachine(const BenchMachine& machine);

/// For results: the link, boot budget, suspend and firmware name.
nlohmann::json MachineSummaryJson(const BenchMachine& machine);

}  // namespace tpmlab
