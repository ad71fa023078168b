// IPMI through the ipmitool program: run without a shell, the password in
// the child's environment only (-E), its output read from a private file.
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "drivers/bmc_power.h"
#include "drivers/process.h"
#include "drivers/process_env.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;

// Replaces every occurrence of `secret` (should a program ever echo it).
std::string Scrub(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
    text.replace(at, secret.size(), "********");
  }
  return text;
}

std::string Trim(const std::string& text) {
  const size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t\r\n") - begin + 1);
}

// ipmitool's own lines, without the noise -v adds; on one line for a message.
std::string OneLine(const std::string& output) {
  std::istringstream lines(output);
  std::string line, out;
  while (std::getline(lines, line)) {
    line = Trim(line);
    if (line.empty() || line.rfind("Loading IANA", 0) == 0) continue;
    if (line.rfind("> ", 0) == 0) line = line.substr(2);
    out += (out.empty() ? "" : "; ") + line;
  }
  return out;
}

// What went wrong, from what ipmitool -v says about the session it could not open.
std::string Diagnose(const std::string& output) {
  if (output.find("RAKP 2 HMAC is invalid") != std::string::npos) {
    return "the BMC refused the password (RAKP 2 HMAC is invalid)";
  }
  if (output.find("unauthorized name") != std::string::npos) return "the BMC does not know this user";
  if (output.find("Get Auth Capabilities error") != std::string::npos ||
      output.find("Get Channel Authentication Capabilities") != std::string::npos) {
    return "no BMC answered there (check host, port and that IPMI over LAN is enabled)";
  }
  if (output.find("cipher suite") != std::string::npos || output.find("Invalid cipher") != std::string::npos) {
    return "the BMC does not offer this cipher suite";
  }
  if (output.find("Insufficient privilege") != std::string::npos) {
    return "the user's privilege does not allow chassis control";
  }
  return "";
}

}  // namespace

Result<std::unique_ptr<IpmiPower>> IpmiPower::Create(IpmiPowerConfig config) {
  if (config.host.empty()) return Status::Error(Layer::kScenario, "IPMI power: needs a host");
  if (config.user.empty()) return Status::Error(Layer::kScenario, "IPMI power " + config.host + ": needs a user");
  if (config.interface != "lanplus" && config.interface != "lan") {
    return Status::Error(Layer::kScenario, "IPMI power: interface must be lanplus or lan, not '" +
                                               config.interface + "'");
  }
  auto secret = ReadBmcSecret(config.password);
  if (!secret.ok()) {
    return secret.status().Wrap("IPMI BMC " + config.host + ":" + std::to_string(config.port));
  }
  if (!FindProgram(config.program)) {
    return Status::Error(Layer::kEnvironment, "IPMI power: " + config.program +
                                                  " is not installed (Debian package ipmitool)");
  }
  return std::unique_ptr<IpmiPower>(new IpmiPower(std::move(config), std::move(*secret)));
}

std::string IpmiPower::Endpoint() const { return config_.host + ":" + std::to_string(config_.port); }

Result<std::string> IpmiPower::Run(const std::vector<std::string>& command) {
  std::vector<std::string> argv = {config_.program,   "-v",
                                   "-I",              config_.interface,
                                   "-H",              config_.host,
                                   "-p",              std::to_string(config_.port),
                                   "-U",              config_.user,
                                   "-E",  // the password: IPMI_PASSWORD in ipmitool's environment only
                                   "-R",              std::to_string(config_.retries),
                                   "-N",              std::to_string(config_.retry_seconds)};
  if (config_.interface == "lanplus") {
    argv.push_back("-C");
    argv.push_back(std::to_string(config_.cipher));
  }
  argv.insert(argv.end(), command.begin(), command.end());
  std::string what;
  for (const auto& word : command) what += (what.empty() ? "" : " ") + word;
  const std::string where = "IPMI BMC " + Endpoint() + " (user " + config_.user + ")";

  // A private file for the output: mode 0600, removed after reading.
  std::string name = (fs::temp_directory_path() / "tpmlab-ipmitool-XXXXXX").string();
  const int fd = ::mkstemp(name.data());
  if (fd < 0) return Status::Error(Layer::kHarness, where + ": cannot create a temporary file for ipmitool's output");
  ::close(fd);
  auto code = RunProgramWithEnvironment(argv, name, config_.timeout,
                                        {{"IPMI_PASSWORD", secret_}, {"IPMITOOL_PASSWORD", secret_}});
  std::string output;
  {
    std::ifstream in(name);
    std::ostringstream text;
    text << in.rdbuf();
    output = Scrub(text.str(), secret_);
  }
  std::error_code ec;
  fs::remove(name, ec);
  if (!code.ok()) {
    if (code.status().timed_out()) {
      return Status::Timeout(where + ": " + what + ": no answer within " + std::to_string(config_.timeout.count()) +
                             " ms" + (output.empty() ? "" : " (ipmitool: " + OneLine(output) + ")"));
    }
    return code.status().Wrap(where + ": " + what);
  }
  if (*code != 0) {
    const std::string why = Diagnose(output);
    return Status::Error(Layer::kTransport, where + ": " + what + " failed" + (why.empty() ? "" : ": " + why) +
                                                " (ipmitool exited with " + std::to_string(*code) + ": " +
                                                OneLine(output) + ")");
  }
  return output;
}

Result<bool> IpmiPower::IsOn() {
  TRY_ASSIGN(std::string out, Run({"chassis", "power", "status"}));
  if (out.find("Chassis Power is on") != std::string::npos) return true;
  if (out.find("Chassis Power is off") != std::string::npos) return false;
  return Status::Error(Layer::kTransport, "IPMI BMC " + Endpoint() + ": chassis power status: unexpected answer '" +
                                              OneLine(out) + "'");
}

Status IpmiPower::Power(const std::string& action) {
  TRY(Run({"chassis", "power", action}).status());
  return Status::Ok();
}

// A BMC may report the old state for a while (ipmi_sim: until the started
// program ends, up to poweroff_wait): wait until it agrees.
Status IpmiPower::WaitFor(bool on) {
  Clock& clock = config_.clock ? *config_.clock : DefaultClock();
  const auto deadline = clock.Now() + std::chrono::duration_cast<Clock::Duration>(config_.settle);
  while (true) {
    TRY_ASSIGN(bool is_on, IsOn());
    if (is_on == on) return Status::Ok();
    if (clock.Now() >= deadline) {
      return Status::Timeout("IPMI BMC " + Endpoint() + ": the machine still reports power " + (on ? "off" : "on") +
                             " " + std::to_string(config_.settle.count()) + " ms after chassis power " +
                             (on ? "on" : "off"));
    }
    clock.Sleep(std::chrono::milliseconds(250));
  }
}

Status IpmiPower::DoOff(PowerCut) {
  TRY(Power("off"));
  return WaitFor(false);
}

Status IpmiPower::DoOn() {
  TRY(Power("on"));
  return WaitFor(true);
}

Status IpmiPower::DoCycle(PowerCut cut) {
  if (cut == PowerCut::kSoft) return Power("reset");  // the machine resets in place; power stays on
  TRY(DoOff(cut));
  Clock& clock = config_.clock ? *config_.clock : DefaultClock();
  clock.Sleep(std::chrono::duration_cast<Clock::Duration>(config_.off_time));
  return DoOn();
}

}  // namespace tpmlab
