// The tpm2-tss tpmlab was built with (here, since only harness/tpm includes
// tpm2-tss).
#pragma once

#include <string>

namespace tpmlab {

/// "3.2.1" from the tss2-esys pkg-config file at build time, or "" when the
/// build could not tell.
std::string Tss2Version();

}  // namespace tpmlab
