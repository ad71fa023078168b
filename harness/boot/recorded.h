// Recorded firmware: a real event log as a firmware model (recorded_firmware.cc).
#pragma once

#include <filesystem>

#include "harness/firmware_model.h"

namespace tpmlab {

/// Reads `log` into `model` and takes from it what the platform must do for
/// the log to replay on an emulated TPM: the banks (when the model gives
/// none), the startup locality, and the H-CRTM (whose data the model must
/// give as `hcrtm`: a log records only its digest). Errors name the event.
Status AttachRecordedLog(FirmwareModel& model, const std::filesystem::path& log);

}  // namespace tpmlab
