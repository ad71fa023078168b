// A whole machine (bench dut transport `machine`): a board or a server with
// its own firmware and TPM, reached through tpmlab-agent on its Linux over
// SSH, a serial console or a TCP console. Its firmware starts and measures
// the chip; tpmlab switches its power (the bench's switch, or none: it must
// already be up), reboots and suspends it through the agent, and reads its
// firmware's event log through the agent. Its TPM bus is not observed.
#pragma once

#include <memory>

#include "drivers/power.h"
#include "harness/bench.h"
#include "harness/qemu_board.h"

namespace tpmlab {

/// Prepares the machine's link without touching the machine: Boot() powers
/// it (when the bench has a switch) and waits for the agent's hello.
/// `options.work_dir` receives ssh's stderr (ssh.log). `power` is the
/// bench's switch (null for power: none).
Result<OpenedBoard> OpenMachineBoard(const Bench& bench, const QemuBoardOptions& options,
                                     std::unique_ptr<PowerControl> power);

}  // namespace tpmlab
