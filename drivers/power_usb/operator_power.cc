#include "drivers/operator_power.h"

#include <unistd.h>

#include <iostream>

#include "drivers/process.h"

namespace tpmlab {

Result<std::unique_ptr<CommandPower>> CommandPower::Create(CommandPowerConfig config) {
  if (!config.bench_allows_commands) {
    return Status::Error(Layer::kScenario,
                         "command power switch: the bench file does not allow running commands");
  }
  if (config.off.empty() || config.on.empty()) {
    return Status::Error(Layer::kScenario, "command power switch: needs both an off and an on command");
  }
  return std::unique_ptr<CommandPower>(new CommandPower(std::move(config)));
}

Status CommandPower::Run(const std::vector<std::string>& argv, const char* what) {
  std::string line;
  for (const std::string& a : argv) line += (line.empty() ? "" : " ") + a;
  TRY_ASSIGN(int code, RunProgram(argv, config_.log_file, config_.timeout));
  if (code != 0) {
    return Status::Error(Layer::kTransport, std::string("power ") + what + " command '" + line +
                                                "' exited with " + std::to_string(code));
  }
  return Status::Ok();
}

Status CommandPower::DoOff(PowerCut) { return Run(config_.off, "off"); }
Status CommandPower::DoOn() { return Run(config_.on, "on"); }

Result<std::unique_ptr<ManualPower>> ManualPower::Create(std::istream& in, std::ostream& out,
                                                         bool is_terminal, std::string dut_name) {
  if (!is_terminal) {
    return Status::Error(Layer::kEnvironment,
                         "manual power switch for " + dut_name +
                             ": no terminal to ask the operator on (run interactively, or give "
                             "the bench a relay or hub port)");
  }
  return std::unique_ptr<ManualPower>(new ManualPower(in, out, std::move(dut_name)));
}

Result<std::unique_ptr<ManualPower>> ManualPower::OnTerminal(std::string dut_name) {
  return Create(std::cin, std::cout, isatty(0) && isatty(1), std::move(dut_name));
}

Status ManualPower::Ask(const std::string& request) {
  out_ << request << ", then press Enter: " << std::flush;
  std::string line;
  if (!std::getline(in_, line)) {
    return Status::Error(Layer::kTransport, "manual power switch: the operator did not confirm (" +
                                                request + ")");
  }
  return Status::Ok();
}

Status ManualPower::DoOff(PowerCut cut) {
  return Ask(cut == PowerCut::kHard ? "Switch off " + dut_ + " and its host"
                                    : "Cut the TPM power of " + dut_);
}
Status ManualPower::DoOn() { return Ask("Restore the power of " + dut_); }

}  // namespace tpmlab
