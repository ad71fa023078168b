// What a bench lets a scenario do to its chip, judged before anything runs so
// a real chip never gets half a scenario. The scenario says what each of its
// steps asks of the chip (a BenchDemand); the bench answers here.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "drivers/status.h"
#include "harness/bench.h"
#include "harness/platform.h"

namespace tpmlab {

// What one step asks of the bench's chip.
struct BenchDemand {
  std::optional<Operation> operation;  // a guarded operation (allow:)
  bool power_switch = false;           // a power cycle
  bool emulator_process = false;       // a fault that freezes or kills the emulator
  bool emulator_state = false;         // a checkpoint or rollback: copies the emulator's NV state
  bool tpm_image = false;              // installs a TPM image (a swtpm build)
  bool firmware_model = false;         // switches the platform firmware model tpmlab measures
  std::string firmware_name;           // ...named so (a board boots the image of that name)
  std::vector<PowerCycleKind> power_cycle_kinds;  // the kinds a power cycle may take
};

/// Why a step asking `demand` cannot run on the bench's chip at all, or ""
/// when it can (an emulated bench runs anything).
std::string UnrunnableOn(const BenchDemand& demand, const Bench& bench);

// One step of a scenario as the bench judges it, with where it is written.
struct PlannedStep {
  std::string where;   // "clears.yaml:4:32"
  std::string action;  // "clear"
  BenchDemand demand;
};

/// Every planned step the bench cannot run or does not allow, in one
/// kScenario error naming the bench file, each step's place and the allow:
/// key to set; Ok when there is none.
Status RefusedSteps(const std::vector<PlannedStep>& steps, const Bench& bench);

}  // namespace tpmlab
