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

const char* ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNone: return "ok";
    case ErrorKind::kBadInput: return "bad_input";
    case ErrorKind::kTpmRefusal: return "tpm_refusal";
    case ErrorKind::kTransport: return "transport";
    case ErrorKind::kEmulator: return "emulator";
    case ErrorKind::kMissingPackage: return "missing_package";
    case ErrorKind::kStore: return "store";
    case ErrorKind::kInternal: return "internal";
  }
  return "unknown";
}

ErrorKind DefaultKind(Layer layer) {
  switch (layer) {
    case Layer::kNone: return ErrorKind::kNone;
    case Layer::kTpm: return ErrorKind::kTpmRefusal;
    case Layer::kTransport: return ErrorKind::kTransport;
    case Layer::kEmulator: return ErrorKind::kEmulator;
    case Layer::kEnvironment: return ErrorKind::kMissingPackage;
    // Bytes that do not decode and scenarios that are wrong are both input
    // tpmlab was given; it refuses them before (or instead of) running.
    case Layer::kParse: return ErrorKind::kBadInput;
    case Layer::kScenario: return ErrorKind::kBadInput;
    case Layer::kStore: return ErrorKind::kStore;
    case Layer::kHarness: return ErrorKind::kInternal;
  }
  return ErrorKind::kInternal;
}

std::string Location::ToString() const {
  if (file.empty() && !line) return "";
  std::string out = file;
  if (line) out += (file.empty() ? "" : ":") + std::to_string(*line);
  if (line && column) out += ":" + std::to_string(*column);
  return out;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(LayerName(layer_)) + ": " + message_;
}

}  // namespace tpmlab
