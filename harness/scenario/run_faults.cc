// Step family: faults and checkpoints — faults injected between the TPM and
// the trace, a hung or killed emulator, power cuts, waits, NV checkpoints.
#include <algorithm>
#include <thread>

#include "run.h"

namespace tpmlab {

namespace fs = std::filesystem;

Status Run::Fault(const FaultStep& f, StepResult& r) {
  using K = FaultStep::Kind;
  FaultRule rule;
  rule.count = f.count;
  rule.command_code = f.command_code;
  rule.probability = f.probability;
  rule.latency = std::chrono::milliseconds(f.latency_ms);
  rule.response_code = f.response_code;
  std::string what;
  switch (f.kind) {
    case K::kLatency: rule.kind = FaultKind::kLatency; break;
    case K::kDrop: rule.kind = FaultKind::kDrop; break;
    case K::kCorrupt: rule.kind = FaultKind::kCorrupt; break;
    case K::kResponseCode: rule.kind = FaultKind::kResponseCode; break;
    case K::kDisconnect: rule.kind = FaultKind::kDisconnect; break;
    case K::kHang:
      TRY(dut_.Hang(true));
      what = "the TPM hangs (emulator stopped): commands time out after " +
             std::to_string(scenario_.platform.command_timeout_ms) + " ms";
      break;
    case K::kUnhang:
      TRY(dut_.Hang(false));
      what = "the TPM answers again";
      break;
    case K::kKill: {
      FaultRule cut;
      cut.count = 1;
      cut.command_code = f.command_code;
      TRY(dut_.CutPowerDuring(cut));
      what = "power cut while the next " + (f.command_code ? TpmCommandName(*f.command_code) : std::string("command")) +
             " runs";
      break;
    }
    case K::kCutPower: {
      FaultRule cut;
      cut.count = 1;
      cut.skip = static_cast<uint32_t>(rng_() % static_cast<uint64_t>(f.within));
      TRY(dut_.CutPowerDuring(cut));
      cut_armed_for_ = 1;
      r.detail["cut_at_command"] = cut.skip + 1;
      what = "power cut at command " + std::to_string(cut.skip + 1) + " of the next step (drawn from 1.." +
             std::to_string(f.within) + ")";
      break;
    }
    case K::kClear:
      dut_.faults().ClearRules();
      TRY(dut_.Hang(false));
      what = "all faults removed";
      break;
  }
  if (what.empty()) {
    dut_.faults().Add(rule);
    what = std::string(FaultKindName(rule.kind)) +
           (rule.command_code ? " on " + TpmCommandName(*rule.command_code) : std::string(" on any command")) +
           (rule.count != UINT32_MAX ? ", next " + std::to_string(rule.count) : std::string()) +
           (rule.probability < 1 ? ", p=" + std::to_string(rule.probability) : std::string());
  }
  r.checks.push_back({"fault", true, what});
  return Status::Ok();
}

Status Run::Wait(int ms) {
  const auto until = Clock::now() + std::chrono::milliseconds(ms);
  while (Clock::now() < until && !(options_.stop && options_.stop->load())) {
    std::this_thread::sleep_for(std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(100)));
  }
  return Status::Ok();
}

Status Run::Checkpoint(const CheckpointStep& c, StepResult& r) {
  const fs::path dir = options_.out_dir / "checkpoints" / c.name;
  TRY(dut_.SaveState(dir));
  checkpoints_[c.name] = dir;
  r.checks.push_back({"checkpoint", true, "NV state saved to " + dir.string()});
  return Status::Ok();
}

Status Run::Rollback(const RollbackStep& rb, StepResult& r) {
  auto it = checkpoints_.find(rb.name);
  if (it == checkpoints_.end()) {
    return Status::Error(Layer::kScenario, "rollback: checkpoint '" + rb.name + "' was not taken in this run");
  }
  power_lost_ = true;  // the restored state was saved mid-session
  TRY(dut_.RestoreState(it->second));
  TRY(dut_.Startup(scenario_.platform.boot, StartupType::kClear));
  r.checks.push_back({"rollback", true, "NV state restored from checkpoint '" + rb.name + "'"});
  return AfterStartup(StartupType::kClear, {}, rb.snapshot, r);
}
}  // namespace tpmlab
