#include "harness/platform.h"

namespace tpmlab {

const char* PowerCycleKindName(PowerCycleKind kind) {
  switch (kind) {
    case PowerCycleKind::kReset: return "reset";
    case PowerCycleKind::kRestart: return "restart";
    case PowerCycleKind::kResume: return "resume";
    case PowerCycleKind::kPowerLoss: return "power-loss";
    case PowerCycleKind::kHardLoss: return "hard-loss";
  }
  return "unknown";
}

std::optional<PowerCycleKind> PowerCycleKindFromName(std::string_view name) {
  for (PowerCycleKind k : kAllPowerCycleKinds) {
    if (name == PowerCycleKindName(k)) return k;
  }
  return std::nullopt;
}

bool IsOrderly(PowerCycleKind kind) {
  return kind == PowerCycleKind::kReset || kind == PowerCycleKind::kRestart ||
         kind == PowerCycleKind::kResume;
}

StartupType StartupAfter(PowerCycleKind kind) {
  return kind == PowerCycleKind::kResume ? StartupType::kState : StartupType::kClear;
}

const char* EmulatedBusName(EmulatedBus bus) {
  switch (bus) {
    case EmulatedBus::kSocket: return "socket";
    case EmulatedBus::kTisSpi: return "tis-spi";
    case EmulatedBus::kHardware: return "hardware";
  }
  return "unknown";
}

std::optional<EmulatedBus> EmulatedBusFromName(std::string_view name) {
  for (EmulatedBus b : {EmulatedBus::kSocket, EmulatedBus::kTisSpi}) {
    if (name == EmulatedBusName(b)) return b;
  }
  return std::nullopt;
}

}  // namespace tpmlab
