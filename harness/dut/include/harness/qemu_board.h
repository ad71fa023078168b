// The QEMU + OVMF board (bench dut transport `qemu`): swtpm manufactured as
// for any emulated DUT, QEMU booting a real OVMF image that measures into it,
// the Debian kernel and an initramfs whose /init is tpmlab-agent, which
// carries the harness's TPM commands over the board's second serial port.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "drivers/transport.h"
#include "harness/bench.h"
#include "harness/board.h"

namespace tpmlab {

struct QemuBoardOptions {
  std::filesystem::path work_dir;       // the board's flash copies, kernel, initramfs, sockets, logs
  std::vector<std::string> banks = {"sha1", "sha256"};  // the chip is manufactured with these
  std::string firmware;                 // the image to boot first ("" = the bench's default)
  // A bench with a flash: chip keeps the chip's previous contents in
  // run_dir/firmware at each flash ("" = work_dir's parent).
  std::filesystem::path run_dir;
};

struct OpenedBoard {
  std::unique_ptr<Board> board;
  std::unique_ptr<Transport> transport;  // to the TPM, through the agent; needs the board
};

// What a board boots besides its platform firmware: the kernel (signed when
// the bench's Secure Boot images need it), an initramfs whose /init is
// tpmlab-agent, a manufactured chip, and the kernel command line.
struct BoardKit {
  std::filesystem::path kernel;
  std::filesystem::path initramfs;
  std::filesystem::path tpm_state;  // a swtpm state folder (tpm2-00.permall)
  std::string append;               // the kernel command line: console on ttyS0, the agent on ttyS1
};

/// Writes the kit into `dir` (the chip only when `dir`/tpm holds none): what
/// OpenQemuBoard boots, and what a lab that launches its board itself uses
/// (hw/sim/up, through `tpmlab bench kit`).
/// @returns kind missing_package naming the Debian package of what is absent.
Result<BoardKit> WriteBoardKit(const Bench& bench, const std::filesystem::path& dir,
                               const std::vector<std::string>& banks = {"sha1", "sha256"});

/// Prepares the board (manufactures its chip, signs the kernel when the
/// bench says so, writes the initramfs) without powering it on: Boot() does.
/// @returns kind missing_package naming the Debian package of what is absent
///          (qemu-system-x86, ovmf, linux-image-cloud-amd64, sbsigntool).
Result<OpenedBoard> OpenQemuBoard(const Bench& bench, const QemuBoardOptions& options);

/// Where tpmlab-agent is: $TPMLAB_AGENT, beside the running tpmlab binary,
/// in ../libexec/tpmlab, or on PATH.
Result<std::filesystem::path> FindAgentBinary();

}  // namespace tpmlab
