// Step family: ownership, clock and measurements — clear, new seeds, PCR
// bank allocation, the TPM clock, PCR extends.
#include "run.h"

namespace tpmlab {

const char* Run::HierarchyName(Hierarchy h) {
  switch (h) {
    case Hierarchy::kOwner: return "owner";
    case Hierarchy::kEndorsement: return "endorsement";
    case Hierarchy::kPlatform: return "platform";
    case Hierarchy::kLockout: return "lockout";
  }
  return "?";
}

Status Run::Clear(const ClearStep& c, StepResult& r) {
  TRY(dut_.tpm().Clear(c.auth));
  // A clear replaces the SRK and the AK; the identity to hold starts over.
  reference_.reset();
  r.checks.push_back({"clear", true, std::string("TPM2_Clear authorised by ") + HierarchyName(c.auth)});
  return Status::Ok();
}

Status Run::ChangeSeed(bool endorsement, StepResult& r) {
  auto before = dut_.tpm().EnsureEk();
  TRY(endorsement ? dut_.tpm().ChangeEps() : dut_.tpm().ChangePps());
  reference_.reset();
  if (endorsement) {
    // The EK at 0x81010001 was flushed with the old seed; the next snapshot
    // makes the new one, as a new board would.
    if (before.ok()) r.detail["ek_before"] = ToHex(before->name);
    r.checks.push_back({"change_eps", true, "new endorsement primary seed: EK and AK will be new"});
  } else {
    r.checks.push_back({"change_pps", true, "new platform primary seed"});
  }
  return Status::Ok();
}

Status Run::AllocateBanks(const AllocateBanksStep& al, StepResult& r) {
  std::vector<HashAlg> banks;
  for (const auto& b : al.banks) banks.push_back(*HashAlgFromName(b));
  TRY(dut_.tpm().PcrAllocate(banks));
  std::string list;
  for (const auto& b : al.banks) list += std::string(list.empty() ? "" : ",") + b;
  r.checks.push_back({"allocate_banks", true, "PCR banks " + list + " from the next TPM reset"});
  return Status::Ok();
}

Status Run::SetClock(uint64_t absolute, int64_t skew, StepResult& r) {
  TRY_ASSIGN(TimeInfo now, dut_.tpm().ReadClock());
  const uint64_t target = skew > 0 ? now.clock.clock_ms + static_cast<uint64_t>(skew) : absolute;
  TRY(dut_.tpm().ClockSet(target));
  r.detail["clock_before_ms"] = now.clock.clock_ms;
  r.detail["clock_set_ms"] = target;
  r.checks.push_back({"clock_set", true, "TPM clock " + std::to_string(now.clock.clock_ms) + " -> " +
                                             std::to_string(target) + " ms"});
  return Status::Ok();
}

Status Run::Extend(const ExtendStep& e, StepResult& r) {
  if (banks_.empty()) {
    TRY_ASSIGN(banks_, dut_.tpm().PcrBanks());
  }
  if (firmware_) {
    TRY(firmware_->Measure(dut_.tpm(), banks_, e.pcr, e.event_type, e.data, e.logged));
  } else {
    if (e.logged) {
      const std::string source = options_.bench ? BootLogSourceName(options_.bench->boot_log.source) : "nowhere";
      return Status::Error(Layer::kScenario, "event: tpmlab keeps no event log here (no firmware model, or the "
                                             "bench's log comes from " + source + "), so there is none to append to");
    }
    std::map<HashAlg, Bytes> digests;
    const ByteView bytes(reinterpret_cast<const uint8_t*>(e.data.data()), e.data.size());
    for (HashAlg bank : banks_) {
      TRY_ASSIGN(digests[bank], Hash(bank, bytes));
    }
    TRY(dut_.tpm().Extend(e.pcr, digests));
  }
  r.checks.push_back({e.logged ? "event" : "extend", true,
                      "PCR " + std::to_string(e.pcr) + (e.logged ? " extended and logged" : " extended, not logged")});
  return Status::Ok();
}
}  // namespace tpmlab
