// The scenario model: what a run does, independent of where it was written
// (YAML today, Python later). The runner executes only this model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "harness/dut.h"
#include "harness/firmware_model.h"
#include "harness/response_codes.h"
#include "harness/yaml_reader.h"

namespace tpmlab {


// A TPM firmware image for an emulated DUT: the swtpm executable and the
// libtpms it loads. `firmware_version` derives an image from the installed
// libtpms whose version constant is changed (two builds of one source).
struct TpmImage {
  std::string name;
  std::string swtpm = "swtpm";
  std::string library_dir;               // put first on LD_LIBRARY_PATH
  std::optional<uint64_t> firmware_version;
};

struct Platform {
  std::vector<std::string> banks = {"sha1", "sha256"};
  KeyType ak = KeyType::kRsa2048;
  BootOptions boot;
  // What the emulated firmware measures and logs at every cold boot; none
  // means a bare platform that measures nothing and has no log.
  std::optional<FirmwareModel> firmware;
  int command_timeout_ms = 30000;
  std::map<uint32_t, int> command_timeouts_ms;  // by command code, over the one above
  // TPM firmware images a firmware_update step may switch to.
  std::vector<TpmImage> images;
  // Ends the run after this many step errors in a row (a TPM that stays gone).
  int max_consecutive_errors = 3;
  // How the harness reaches the emulated TPM, and the simulated SPI chip's knobs.
  EmulatedBus bus = EmulatedBus::kSocket;
  EmulatedTisOptions tis;
};

struct BootStep {
  bool snapshot = true;
};

struct PowerCycleStep {
  std::optional<PowerCycleKind> kind;                        // a fixed kind, or
  std::vector<std::pair<PowerCycleKind, double>> mix;        // weights drawn with the seed
  bool snapshot = true;
};

// Takes a snapshot and judges it (`snapshot` and `verify` are the same step;
// `verify` reads better where the point is the verdict).
struct SnapshotStep {
  bool verify_wording = false;
};

// Enrolls the DUT from the latest snapshot: its EK, AK, firmware version and
// the golden reference (PCRs and log) every later boot is verified against.
struct EnrollStep {};

// What the step before it must have produced. Alarms named in `alarms` must
// be raised there; those in `absent` must not; any other alarm fails the
// expectation unless it is in `allow` (or `others_allowed`).
struct ExpectStep {
  std::vector<std::string> alarms;
  std::vector<std::string> one_of;   // at least one of these (a seeded fault's outcome)
  std::vector<std::string> absent;
  std::vector<std::string> allow;
  // Allowed only once the run has had a power loss (CLOCK_NOT_SAFE).
  std::vector<std::string> allow_after_power_loss;
  bool others_allowed = false;
  // PCRs that must / must not differ from the reference snapshot.
  std::vector<int> pcrs_drift, pcrs_steady;
  std::string pcr_bank = "sha256";
  bool against_golden = false;  // reference: the enrolled snapshot, else the one before
  // Counter movement since the snapshot before: "up", "same", "reset" (to 0), "down".
  std::optional<std::string> reset_count, restart_count;
  std::optional<bool> safe;
  // The step before was refused by the TPM with this response code ("TPM_RC_DISABLED" or 0x120).
  std::optional<uint32_t> rc;
  // The step before failed (a TPM that did not answer, a fault).
  std::optional<bool> error;
};

// Ownership events.
struct ClearStep {
  Hierarchy auth = Hierarchy::kLockout;  // or kPlatform
};
struct ClearControlStep {
  bool disable = true;
  Hierarchy auth = Hierarchy::kPlatform;
};
struct ChangeEpsStep {};
struct ChangePpsStep {};
struct HierarchyStep {
  Hierarchy hierarchy = Hierarchy::kEndorsement;
  bool enable = false;
};
struct AllocateBanksStep {
  std::vector<std::string> banks;  // takes effect at the next TPM reset
};

// A platform firmware update (a new model for the next cold boot) or a TPM
// firmware update (another image, restarted on the same state).
struct FirmwareUpdateStep {
  std::optional<FirmwareModel> model;
  std::string image;  // a name from Platform::images
};

struct ClockSetStep {
  uint64_t clock_ms = 0;  // absolute; the TPM refuses to go back
};
struct ClockSkewStep {
  int64_t skew_ms = 0;    // moves the TPM clock this far ahead of wall time
};

// A measurement a platform component makes after boot. Logged, it is in the
// event log; not logged, it models a firmware that extends without logging.
struct ExtendStep {
  int pcr = 16;
  std::string data;                     // hashed per bank
  uint32_t event_type = 0x0000000D;     // EV_IPL
  bool logged = true;
};

// Faults. Transport ones hook the DUT's fault injector; DUT-level ones act
// on the emulator.
struct FaultStep {
  enum class Kind {
    kLatency, kDrop, kCorrupt, kResponseCode, kDisconnect,  // transport
    kHang,       // SIGSTOP the emulator: the TPM stops answering
    kUnhang,     // SIGCONT it
    kKill,       // kill the emulator while the next (matching) command runs
    kCutPower,   // a hard power loss at a seeded random command of the next step
    kClear,      // remove every transport rule
  } kind = Kind::kLatency;
  uint32_t count = UINT32_MAX;          // commands it may hit
  std::optional<uint32_t> command_code;
  double probability = 1.0;
  int latency_ms = 0;
  uint32_t response_code = rc::kRetry;
  int within = 20;                      // kCutPower: commands the point is drawn from
};

struct WaitStep {
  int ms = 0;
};

// Saves the DUT's NV state under a name, and later restores it (a vTPM
// snapshot revert, a cloned chip): the TPM comes back with its old counters
// and clock, after a power loss.
struct CheckpointStep {
  std::string name;
};
struct RollbackStep {
  std::string name;
  bool snapshot = true;
};

// The troubleshooting checklist (tpmlab doctor) as a step.
struct DoctorStep {};

struct Step;
struct RepeatStep {
  int count = 1;
  std::vector<Step> steps;
};
// Runs one of `steps`, drawn with the seed by `weights` (equal when empty).
struct ChooseStep {
  std::vector<Step> steps;
  std::vector<double> weights;
};

struct Step {
  using Action = std::variant<BootStep, PowerCycleStep, SnapshotStep, EnrollStep, ExpectStep, RepeatStep, ChooseStep,
               ClearStep, ClearControlStep, ChangeEpsStep, ChangePpsStep, HierarchyStep,
               AllocateBanksStep, FirmwareUpdateStep, ClockSetStep, ClockSkewStep, ExtendStep, FaultStep,
               WaitStep, CheckpointStep, RollbackStep, DoctorStep>;
  SourceLocation where;
  Action action;
};

struct Scenario {
  std::string name;
  std::string description;
  uint64_t seed = 1;
  Platform platform;
  std::vector<Step> steps;
  // Any alarm not covered by an `expect` step fails the run (library
  // scenarios); otherwise alarms are reported and the run still passes.
  bool unexpected_alarms_fail = false;
  std::string file;                  // empty when built in code
  std::string text;                  // the YAML as loaded (what ran, even if the file changes)
  std::vector<std::string> sources;  // the firmware model files it read
  std::vector<ModelReference> model_references;  // each model name and the file it resolved to
  std::optional<int> cycles;         // set by OverrideCycles (`--cycles`), kept for replays
};

const char* StepActionName(const Step& step);

/// Sets the count of the scenario's one top-level `repeat` (--cycles).
Status OverrideCycles(Scenario& scenario, int cycles);

/// Number of steps the run will execute, repeats expanded.
int CountSteps(const std::vector<Step>& steps);

/// Checks the model for values no run can use; the YAML loader calls it too.
Status ValidateScenario(const Scenario& scenario);

}  // namespace tpmlab
