// Enrollment: what a verifier stores when a DUT is added (as vCenter does
// when a host joins): its EK (public key and certificate), its AK, its TPM
// firmware version, and a golden reference — the PCRs and event log of a
// known-good boot.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "harness/snapshot.h"

namespace tpmlab {

struct Enrollment {
  std::string dut;
  std::string enrolled_at;
  Bytes ek_name;
  Bytes ek_public_der;
  std::optional<Bytes> ek_certificate;
  Bytes ak_name;
  Bytes ak_public_der;
  uint64_t firmware_version = 0;
  std::vector<HashAlg> banks;
  PcrValues golden_pcrs;
  std::optional<Bytes> golden_eventlog;
};

/// Enrolls a DUT from a known-good snapshot.
Enrollment EnrollFromSnapshot(const Snapshot& snapshot, const std::string& dut);

nlohmann::json EnrollmentToJson(const Enrollment& enrollment);

/// Reads what EnrollmentToJson wrote; `where` names the source in errors.
Result<Enrollment> EnrollmentFromJson(const nlohmann::json& json, const std::string& where);

}  // namespace tpmlab
