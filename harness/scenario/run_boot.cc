// Step family: boot and power cycles, with what the TPM 2.0 rules say must
// survive each kind of cycle.
#include "run.h"

namespace tpmlab {

namespace {

// Draws from weights with a generator whose output is fixed by the seed
// (std::discrete_distribution's is not portable across standard libraries).
PowerCycleKind Draw(const std::vector<std::pair<PowerCycleKind, double>>& mix, std::mt19937_64& rng) {
  double total = 0;
  for (const auto& [kind, w] : mix) total += w;
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * total;
  double acc = 0;
  for (const auto& [kind, w] : mix) {
    acc += w;
    if (u < acc && w > 0) return kind;
  }
  return mix.back().first;
}

// On a board the firmware measured before the harness could look: after a
// reset only the PCRs no firmware or OS of the board extends (16-23) are at
// their initial values, and the log says what 0-15 hold; after a resume
// 0-15 are kept as on any TPM.
Check BoardStartupPcrs(StartupType startup, const PcrValues& before, const PcrValues& now) {
  std::string wrong;
  for (const auto& [bank, values] : now) {
    for (int pcr = 0; pcr < kPcrCount; ++pcr) {
      const bool kept = startup == StartupType::kState && pcr <= 15 && before.count(bank);
      if (pcr <= 15 && !kept) continue;
      const Bytes expected = kept ? before.at(bank)[pcr] : PcrResetValue(bank, pcr);
      if (values[pcr] != expected && wrong.size() < 400) {
        wrong += std::string(wrong.empty() ? "" : "; ") + HashAlgName(bank) + ":" + std::to_string(pcr) + " (" +
                 (kept ? "kept" : "reset") + ") expected " + ToHex(expected).substr(0, 16) + "… saw " +
                 ToHex(values[pcr]).substr(0, 16) + "…";
      }
    }
  }
  const char* what = startup == StartupType::kClear
                         ? "PCRs 16-23 at their initial values after the board's Startup(CLEAR) (0-15: its firmware's)"
                         : "PCRs 0-15 kept and 16-23 reset after the board's Startup(STATE)";
  return {"pcrs_after_startup", wrong.empty(), wrong.empty() ? what : wrong};
}

// What the board's firmware and OS said to the chip while it came up.
nlohmann::json BusCommandsJson(std::vector<BusCommand> commands) {
  nlohmann::json list = nlohmann::json::array();
  for (const BusCommand& c : commands) {
    if (c.tpm_init) {
      list.push_back({{"command", "_TPM_Init"}});
      continue;
    }
    nlohmann::json one = {{"command", TpmCommandName(TpmHeaderCode(c.command))}};
    if (TpmHeaderCode(c.command) == 0x144 || TpmHeaderCode(c.command) == 0x145) {  // Startup, Shutdown
      if (c.command.size() >= 12) one["type"] = (c.command[10] << 8 | c.command[11]) == 1 ? "STATE" : "CLEAR";
    }
    if (c.response.size() >= kTpmHeaderSize) one["rc"] = TpmHeaderCode(c.response);
    list.push_back(std::move(one));
  }
  return list;
}

}  // namespace

// After Startup: check the PCRs against the rules, measure, snapshot.
Status Run::AfterStartup(StartupType startup, const PcrValues& before, bool snapshot, StepResult& r) {
  // A bank allocation takes effect at a reset: ask again after each one.
  if (banks_.empty() || startup == StartupType::kClear) {
    TRY_ASSIGN(banks_, dut_.tpm().PcrBanks());
  }
  TRY_ASSIGN(PcrValues now, dut_.tpm().ReadPcrs(banks_));
  if (Board* board = dut_.board()) {
    r.checks.push_back(BoardStartupPcrs(startup, before, now));
    r.detail["board"] = board->Describe();
    r.detail["platform_commands"] = BusCommandsJson(board->TakeBusCommands());
  } else {
    r.checks.push_back(CheckStartupPcrs(startup, scenario_.platform.boot, before, now));
  }
  // The platform firmware measures and logs (not again on an S3 resume).
  if (firmware_) TRY(firmware_->AfterStartup(dut_.tpm(), startup, banks_));
  if (snapshot) TRY(Snap(r));
  return Status::Ok();
}

Status Run::Boot(const BootStep& b, StepResult& r) {
  banks_.clear();
  if (dut_.board()) {
    // The board's firmware sends Startup and measures; tpmlab powers it on.
    TRY(dut_.PowerOn());
    return AfterStartup(StartupType::kClear, {}, b.snapshot, r);
  }
  if (dut_.platform_started()) {
    // This machine's firmware booted and measured the TPM; tpmlab attests
    // what it finds, so there is no reset state to check.
    r.checks.push_back({"boot", true, "started and measured by this machine's platform at its own boot"});
    TRY_ASSIGN(banks_, dut_.tpm().PcrBanks());
    return b.snapshot ? Snap(r) : Status::Ok();
  }
  TRY(dut_.PowerOn());
  Status started = dut_.Startup(scenario_.platform.boot, StartupType::kClear);
  if (!started.ok() && IsTpmResponse(started, rc::kInitialize) &&
      !dut_.can_switch_power()) {
    return Status::Error(Layer::kScenario, started.message() + ": the chip was started before this run, and " +
                                               dut_.no_power_reason() +
                                               ": switch it off and on by hand, or give the bench a power switch");
  }
  TRY(started);
  return AfterStartup(StartupType::kClear, {}, b.snapshot, r);
}

Status Run::PowerCycle(const PowerCycleStep& p, StepResult& r) {
  const PowerCycleKind kind = p.kind ? *p.kind : Draw(p.mix, rng_);
  // Refused by a DUT without a switch: no cycle happened, nothing counts.
  if (!dut_.can_switch_power()) return dut_.PowerCycle(kind, scenario_.platform.boot);
  r.cycle = ++cycles_;
  r.kind = PowerCycleKindName(kind);
  if (banks_.empty()) {
    TRY_ASSIGN(banks_, dut_.tpm().PcrBanks());
  }
  // What the TPM held when it went down, to judge what it kept.
  TRY_ASSIGN(TimeInfo before_clock, dut_.tpm().ReadClock());
  TRY_ASSIGN(PcrValues before_pcrs, dut_.tpm().ReadPcrs(banks_));
  if (!IsOrderly(kind)) power_lost_ = true;
  TRY(dut_.PowerCycle(kind, scenario_.platform.boot));
  // Where the clock restarted after a loss: a quote that says safe = YES
  // is right when the clock was saved to NV since (a slow, loaded step).
  std::optional<ClockInfo> clock_at_startup;
  // A board's chip has run through its firmware's and OS's boot by now.
  std::optional<uint64_t> ran_before_read;
  if (Board* board = dut_.board(); board && board->last_boot().startup_seen != std::chrono::steady_clock::time_point{}) {
    ran_before_read = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::steady_clock::now() - board->last_boot().startup_seen)
                                                .count());
  }
  if (!IsOrderly(kind)) {
    TRY_ASSIGN(TimeInfo started, dut_.tpm().ReadClock());
    clock_at_startup = started.clock;
  }
  TRY(AfterStartup(StartupAfter(kind), before_pcrs, p.snapshot, r));
  if (r.snapshot) {
    auto counters = CheckCounters(kind, before_clock.clock, r.snapshot->clock(), clock_at_startup, ran_before_read);
    r.checks.insert(r.checks.end(), counters.begin(), counters.end());
  }
  return Status::Ok();
}
}  // namespace tpmlab
