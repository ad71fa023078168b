// Lets Boost.Test print a Layer when a comparison of two fails.
#pragma once

#include <ostream>

#include "drivers/status.h"

namespace tpmlab {

inline std::ostream& operator<<(std::ostream& out, Layer layer) { return out << LayerName(layer); }

}  // namespace tpmlab
