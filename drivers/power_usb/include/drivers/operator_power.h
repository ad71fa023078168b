// Power switches without a USB protocol: a command the bench file names
// (only when the bench file opts in), and the operator at a terminal.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "drivers/usb_power.h"

namespace tpmlab {

struct CommandPowerConfig {
  std::vector<std::string> off;  // argv, run without a shell
  std::vector<std::string> on;
  bool bench_allows_commands = false;  // the bench file's explicit opt-in
  std::chrono::milliseconds timeout{30000};
  std::filesystem::path log_file = "/dev/null";
  PowerSequence sequence;
};

class CommandPower final : public SequencedPower {
 public:
  /// @returns kScenario when the bench file did not opt in or a command is empty.
  static Result<std::unique_ptr<CommandPower>> Create(CommandPowerConfig config);

 private:
  explicit CommandPower(CommandPowerConfig config)
      : SequencedPower(config.sequence), config_(std::move(config)) {}
  Status Run(const std::vector<std::string>& argv, const char* what);
  Status DoOff(PowerCut cut) override;
  Status DoOn() override;

  CommandPowerConfig config_;
};

// Asks the operator to switch the power and waits for Enter.
class ManualPower final : public PowerControl {
 public:
  /// @param is_terminal whether `in` and `out` are a terminal (isatty);
  /// @returns kEnvironment without one: nobody could answer.
  static Result<std::unique_ptr<ManualPower>> Create(std::istream& in, std::ostream& out,
                                                     bool is_terminal, std::string dut_name);
  /// On std::cin / std::cout, when both are a terminal.
  static Result<std::unique_ptr<ManualPower>> OnTerminal(std::string dut_name);

 private:
  ManualPower(std::istream& in, std::ostream& out, std::string dut_name)
      : in_(in), out_(out), dut_(std::move(dut_name)) {}
  Status Ask(const std::string& request);
  Status DoOff(PowerCut cut) override;
  Status DoOn() override;

  std::istream& in_;
  std::ostream& out_;
  std::string dut_;
};

}  // namespace tpmlab
