#include "harness/open_dut.h"

#include <filesystem>
#include <system_error>

namespace tpmlab {
namespace {

namespace fs = std::filesystem;

Result<std::unique_ptr<Dut>> LaunchEmulatedDut(const std::optional<Bench>& bench, const DutRequest& request) {
  const EmulatedDutConfig config = EmulatedConfigOf(bench, request);
  if (request.manufacture_new) {
    // Left over, it would be launched as the chip: a new one is promised.
    std::error_code ec;
    fs::remove_all(config.state_dir, ec);
    if (ec) {
      return Status::Error(Layer::kEmulator, "cannot remove the old emulator state in " + config.state_dir.string() +
                                                 " to manufacture a new chip: " + ec.message());
    }
  }
  return Dut::LaunchEmulated(config);
}

Result<std::unique_ptr<Dut>> OpenHardwareDut(const Bench& bench, const DutRequest& request) {
  BenchDutOptions o;
  o.name = request.name;
  o.command_timeout = request.command_timeout;
  o.command_timeouts = request.command_timeouts;
  o.fault_seed = request.fault_seed;
  o.board = request.board;
  TRY_ASSIGN(std::unique_ptr<Dut> dut, OpenBenchDut(bench, o, request.hardware));
  // Persisting tpmlab's EK, SRK and AK, or evicting someone else's key at
  // their handles, writes NV: only when the bench allows NV writes.
  dut->tpm().set_evict_foreign_keys(bench.allow.nv_write);
  dut->tpm().set_persist_keys(bench.allow.nv_write);
  return dut;
}

}  // namespace

EmulatedDutConfig EmulatedConfigOf(const std::optional<Bench>& bench, const DutRequest& request) {
  EmulatedDutConfig config = request.emulated;
  config.name = request.name;
  config.command_timeout = request.command_timeout;
  config.command_timeouts = request.command_timeouts;
  config.fault_seed = request.fault_seed;
  if (bench) ApplyEmulatedBench(*bench, config);
  config.tis.seed = request.fault_seed;
  return config;
}

Result<std::unique_ptr<Dut>> OpenDut(const std::optional<Bench>& bench, const DutRequest& request) {
  if (bench && !bench->emulated()) return OpenHardwareDut(*bench, request);
  return LaunchEmulatedDut(bench, request);
}

}  // namespace tpmlab
