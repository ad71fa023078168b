#include "drivers/status.h"

namespace tpmlab {

const char* LayerName(Layer layer) {
  switch (layer) {
    case Layer::kNone: return "ok";
    case Layer::kTpm: return "tpm";
    case Layer::kTransport: return "transport";
    case Layer::kEmulator: return "emulator";
    case Layer::kEnvironment: return "environment";
    case Layer::kParse: return "parse";
    case Layer::kScenario: return "scenario";
    case Layer::kStore: return "store";
    case Layer::kHarness: return "harness";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(LayerName(layer_)) + ": " + message_;
}

}  // namespace tpmlab
