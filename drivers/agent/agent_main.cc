// tpmlab-agent: serves the harness the board's TPM, its firmware event log
// and orderly power transitions over one byte channel (hw/README.md).
//
// As PID 1 (the /init of an initramfs tpmlab generates) it mounts what it
// needs, reads its settings from the kernel command line, reports progress on
// /dev/console and never exits: on a fatal error it says so and powers off.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "agent_server.h"
#include "agent_system.h"
#include "harness/version.h"

namespace {

using namespace tpmlab;
using namespace tpmlab::agent;

constexpr const char* kDefaultTpm = "/dev/tpmrm0";
constexpr const char* kDefaultEventLog = "/sys/kernel/security/tpm0/binary_bios_measurements";
constexpr const char* kDefaultPid1Channel = "/dev/ttyS1";
constexpr auto kDeviceWait = std::chrono::seconds(10);

constexpr const char* kUsage =
    "usage: tpmlab-agent (--stdio | --channel DEV) [--tpm PATH | --tpm-fd N] [--event-log PATH]\n"
    "                    [--power-dry-run] [--version]\n"
    "  --stdio           serve on stdin/stdout (status lines on stderr)\n"
    "  --channel DEV     serve on a serial tty (raw, 115200 baud, no flow control)\n"
    "                    or a virtio serial port\n"
    "  --tpm PATH        the TPM device (default /dev/tpmrm0)\n"
    "  --tpm-fd N        an already-open fd that behaves like /dev/tpmrm0 (tests)\n"
    "  --event-log PATH  the firmware event log (default\n"
    "                    /sys/kernel/security/tpm0/binary_bios_measurements)\n"
    "  --power-dry-run   acknowledge POWER requests without acting on them (tests)\n"
    "As PID 1, tpmlab.channel= and tpmlab.tpm= on the kernel command line apply;\n"
    "the channel defaults to /dev/ttyS1.\n";

struct Options {
  bool stdio = false;
  std::string channel;
  std::string tpm = kDefaultTpm;
  std::optional<int> tpm_fd;
  std::string event_log = kDefaultEventLog;
  bool power_dry_run = false;
};

// PID 1 must never exit (the kernel panics): say why, power off, and if even
// that fails, wait forever.
[[noreturn]] void Pid1Fatal(const std::string& why) {
  Say("fatal: " + why + "; powering off");
  (void)RebootNow(true);
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

// Parses argv; false with a message for bad usage. As PID 1 the kernel may
// pass stray words from its command line: those are ignored.
bool ParseOptions(int argc, char** argv, bool pid1, Options& options, std::string& error) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) {
        error = arg + " needs a value";
        return false;
      }
      out = argv[++i];
      return true;
    };
    std::string text;
    if (arg == "--stdio") {
      options.stdio = true;
    } else if (arg == "--channel") {
      if (!value(options.channel)) return false;
    } else if (arg == "--tpm") {
      if (!value(options.tpm)) return false;
    } else if (arg == "--tpm-fd") {
      if (!value(text)) return false;
      char* end = nullptr;
      const long fd = std::strtol(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || fd < 0 || fd > 65535 || ::fcntl(static_cast<int>(fd), F_GETFD) < 0) {
        error = "--tpm-fd " + text + " is not an open file descriptor";
        return false;
      }
      options.tpm_fd = static_cast<int>(fd);
    } else if (arg == "--event-log") {
      if (!value(options.event_log)) return false;
    } else if (arg == "--power-dry-run") {
      options.power_dry_run = true;
    } else if (!pid1) {
      error = "unknown option '" + arg + "'";
      return false;
    }
  }
  if (options.stdio && !options.channel.empty()) {
    error = "--stdio and --channel exclude each other";
    return false;
  }
  return true;
}

int Serve(const Options& options, bool pid1) {
  ServerOptions server;
  server.pid1 = pid1;
  server.tpm_path = options.tpm;
  server.tpm_fd = options.tpm_fd;
  server.event_log = options.event_log;
  server.power_dry_run = options.power_dry_run;
  if (pid1) server.tpm_wait = kDeviceWait;
  if (options.stdio) {
    server.in_fd = 0;
    server.out_fd = 1;
    server.channel = "stdio";
  } else {
    if (pid1 && !WaitForPath(options.channel, kDeviceWait)) {
      Pid1Fatal("the channel " + options.channel + " did not appear within 10 s");
    }
    auto fd = OpenSerial(options.channel);
    if (!fd.ok()) {
      if (pid1) Pid1Fatal(fd.status().message());
      Say(fd.status().message());
      return 1;
    }
    server.in_fd = *fd;
    server.out_fd = *fd;
    server.channel = options.channel;
  }
  Server agent(server);
  // Log size is what the HELLO reports too.
  const std::string tpm_text = options.tpm_fd ? "fd " + std::to_string(*options.tpm_fd) : options.tpm;
  const AgentHello self = DescribeAgent(tpm_text, options.event_log, "start", "");
  Say("serving on " + server.channel + ", TPM " + tpm_text +
      (agent.tpm_error().empty() ? "" : " (not open: " + agent.tpm_error() + ")") + ", log " +
      std::to_string(self.log_size) + " bytes");
  const int code = agent.Run();
  if (pid1) Pid1Fatal("the serving loop ended");
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  const bool pid1 = ::getpid() == 1;
  // A harness that went away must not kill the agent mid-write: EPIPE is handled.
  ::signal(SIGPIPE, SIG_IGN);
  Options options;
  if (pid1) {
    const std::string failed = MountPseudoFilesystems();
    const int console = ::open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (console >= 0) SetStatusFd(console);
    Say(std::string("started (tpmlab ") + kTpmlabVersion + ")");
    if (!failed.empty()) Say(failed);
    if (auto tpm = KernelParameter("tpmlab.tpm")) options.tpm = *tpm;
  }
  std::string error;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--version") {
      std::printf("tpmlab-agent %s (protocol %d)\n", kTpmlabVersion, kAgentProtocolVersion);
      return 0;
    }
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  if (!ParseOptions(argc, argv, pid1, options, error)) {
    if (pid1) Pid1Fatal(error);
    std::fprintf(stderr, "tpmlab-agent: %s\n%s", error.c_str(), kUsage);
    return 2;
  }
  // As PID 1 the kernel command line picks the channel, unless argv says --stdio or --channel.
  if (pid1 && !options.stdio && options.channel.empty()) {
    options.channel = KernelParameter("tpmlab.channel").value_or(kDefaultPid1Channel);
  }
  if (!options.stdio && options.channel.empty()) {
    std::fprintf(stderr, "tpmlab-agent: say where to serve: --stdio or --channel DEV\n%s", kUsage);
    return 2;
  }
  return Serve(options, pid1);
}
