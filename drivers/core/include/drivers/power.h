// PowerControl: the switch in front of a TPM.
#pragma once

#include "drivers/status.h"

namespace tpmlab {

enum class PowerCut {
  kSoft,  // the TPM loses power but its host stays (swtpm: CMD_INIT without Shutdown)
  kHard,  // everything goes (swtpm: the process is killed; hardware: the rail is cut)
};

class PowerControl {
 public:
  virtual ~PowerControl() = default;

  /// Removes power. What survives is what the TPM had written to its NV.
  Status Off(PowerCut cut) { return DoOff(cut); }
  /// Restores power and delivers _TPM_Init; the TPM then waits for Startup.
  Status On() { return DoOn(); }
  /// Off then On, as fast as the backend can do it.
  Status Cycle(PowerCut cut) { return DoCycle(cut); }

 private:
  virtual Status DoOff(PowerCut cut) = 0;
  virtual Status DoOn() = 0;
  virtual Status DoCycle(PowerCut cut) {
    TRY(DoOff(cut));
    return DoOn();
  }
};

}  // namespace tpmlab
