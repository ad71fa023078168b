#include "harness/bench_policy.h"

namespace tpmlab {

namespace {

// A QEMU board: its firmware is real OVMF, its chip an emulator tpmlab does
// not reach past the board.
std::string UnrunnableOnBoard(const BenchDemand& demand, const Bench& bench) {
  for (PowerCycleKind kind : demand.power_cycle_kinds) {
    if (kind == PowerCycleKind::kRestart) {
      return "a restart resumes from hibernation (Shutdown(STATE), Startup(CLEAR)), which the board's "
             "initramfs-only Linux cannot do";
    }
  }
  if (demand.emulator_process) return "this fault freezes or kills the emulator behind the board's firmware";
  if (demand.emulator_state) return "checkpoints copy the emulator's NV state behind the board's back";
  if (demand.tpm_image) return "TPM images are swtpm builds: the board's chip is launched by the board";
  if (demand.firmware_model && bench.flash && !bench.flash->Image(demand.firmware_name)) {
    return "the board boots what its flash chip holds, and the bench's flash.images name none '" +
           demand.firmware_name + "' (it has: " + bench.flash->ImageNames() + ")";
  }
  if (demand.firmware_model && !bench.flash && !bench.board->Image(demand.firmware_name)) {
    return "the board boots real firmware images, and the bench names none '" + demand.firmware_name +
           "' (it has: " + bench.board->ImageNames() + ")";
  }
  return "";
}

}  // namespace

std::string UnrunnableOn(const BenchDemand& demand, const Bench& bench) {
  if (bench.emulated()) return "";
  if (bench.is_board()) return UnrunnableOnBoard(demand, bench);
  if (bench.is_machine()) return UnrunnableOnMachine(demand, bench);  // bench_machine.cc
  const bool has_power = bench.power.kind != PowerKind::kNone;
  if (demand.power_switch && !has_power) {
    return "a power cycle needs a power switch, and the bench has power: none";
  }
  if (demand.emulator_process) return "this fault freezes or kills the emulator: an emulated DUT only";
  if (demand.emulator_state) return "checkpoints copy the emulator's NV state: an emulated DUT only";
  if (demand.tpm_image) return "TPM images are swtpm builds: tpmlab has no firmware installer for a real chip";
  if (demand.firmware_model && !bench.harness_boots()) {
    return "this machine's platform measures its own firmware, not a firmware model";
  }
  return "";
}

Status RefusedSteps(const std::vector<PlannedStep>& steps, const Bench& bench) {
  std::string refused, unrunnable;
  for (const PlannedStep& step : steps) {
    if (const std::string why = UnrunnableOn(step.demand, bench); !why.empty()) {
      unrunnable += "\n  " + step.where + ": " + step.action + ": " + why;
      continue;
    }
    auto op = step.demand.operation;
    // A platform firmware update on a bench with a flash chip writes it.
    if (!op && step.demand.firmware_model && bench.flash) op = Operation::kFlash;
    if (op && !CheckAllowed(bench, *op).ok()) {
      refused += "\n  " + step.where + ": " + step.action + " needs allow." + OperationKey(*op);
    }
  }
  if (refused.empty() && unrunnable.empty()) return Status::Ok();
  std::string message = "bench '" + bench.name + "' (" + bench.file + ") is " +
                        (bench.is_board() ? "a QEMU board" : bench.is_machine() ? "a whole machine" : "a real chip");
  if (!unrunnable.empty()) message += "; these steps cannot run on it:" + unrunnable;
  if (!refused.empty()) {
    message += std::string(unrunnable.empty() ? "" : "\nand it") + " does not allow what this scenario does:" +
               refused + "\n(set those keys under allow: in the bench file to permit them)";
  }
  return Status::Error(Layer::kScenario, message);
}

}  // namespace tpmlab
