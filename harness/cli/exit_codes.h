// Exit codes of the tpmlab command (stable; scripts and CI rely on them).
#pragma once

#include "drivers/status.h"

namespace tpmlab::cli {

enum ExitCode {
  kExitPassed = 0,       // every step and check passed; no alarm; no drift
  kExitFailed = 1,       // a check failed, a verifier alarmed, or snapshots differ
  kExitUsage = 2,        // bad input or usage: nothing ran
  kExitRunError = 3,     // the run could not complete (TPM, emulator, transport, store)
  kExitEnvironment = 4,  // something tpmlab needs is not installed
  kExitInterrupted = 130,
};

inline int ExitFor(const Status& s) {
  switch (s.layer()) {
    case Layer::kScenario:
    case Layer::kParse:
      return kExitUsage;
    case Layer::kEnvironment:
      return kExitEnvironment;
    default:
      return kExitRunError;
  }
}

}  // namespace tpmlab::cli
