#include "harness/tss2_version.h"

namespace tpmlab {

std::string Tss2Version() {
#ifdef TPMLAB_TSS2_VERSION
  return TPMLAB_TSS2_VERSION;
#else
  return "";
#endif
}

}  // namespace tpmlab
