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

// The exit code of a failed command comes from what kind of error stopped it,
// never from the layer that noticed it nor from its message.
inline int ExitFor(const Status& s) {
  switch (s.kind()) {
    case ErrorKind::kBadInput:
      return kExitUsage;
    case ErrorKind::kMissingPackage:
      return kExitEnvironment;
    case ErrorKind::kNone:  // not an error; callers never ask (kept as it always was)
    case ErrorKind::kTpmRefusal:
    case ErrorKind::kTransport:
    case ErrorKind::kEmulator:
    case ErrorKind::kStore:
    case ErrorKind::kInternal:
      return kExitRunError;
  }
  return kExitRunError;
}

// Many DUTs at once (tpmlab run --duts, several --bench) exit with the worst
// of their codes, in this order: 0 passed < 1 failed (a DUT was judged and
// found wanting) < 3 run error (a DUT could not be judged: its run did not
// complete or start) < 4 environment (this host lacks something) < 2 usage
// (the inputs are wrong) < 130 interrupted (the user stopped the fleet:
// no verdict). An unknown code counts as a run error.
inline int ExitSeverity(int code) {
  switch (code) {
    case kExitPassed: return 0;
    case kExitFailed: return 1;
    case kExitRunError: return 2;
    case kExitEnvironment: return 3;
    case kExitUsage: return 4;
    case kExitInterrupted: return 5;
  }
  return 2;
}
inline int WorstExit(int a, int b) { return ExitSeverity(b) > ExitSeverity(a) ? b : a; }

}  // namespace tpmlab::cli
