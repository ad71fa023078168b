#include "harness/scenario.h"

namespace tpmlab {

const char* StepActionName(const Step& step) {
  struct Name {
    const char* operator()(const BootStep&) const { return "boot"; }
    const char* operator()(const PowerCycleStep&) const { return "power_cycle"; }
    const char* operator()(const SnapshotStep&) const { return "snapshot"; }
    const char* operator()(const EnrollStep&) const { return "enroll"; }
    const char* operator()(const RepeatStep&) const { return "repeat"; }
  };
  return std::visit(Name{}, step.action);
}

Status OverrideCycles(Scenario& scenario, int cycles) {
  if (cycles < 0) return Status::Error(Layer::kScenario, "--cycles must not be negative");
  RepeatStep* target = nullptr;
  for (auto& step : scenario.steps) {
    if (auto* r = std::get_if<RepeatStep>(&step.action)) {
      if (target != nullptr) {
        return Status::Error(Layer::kScenario, step.where.ToString() +
                                                   ": --cycles is ambiguous: the scenario has more "
                                                   "than one top-level repeat");
      }
      target = r;
    }
  }
  if (target == nullptr) {
    return Status::Error(Layer::kScenario,
                         scenario.file + ": --cycles needs a top-level repeat step to size");
  }
  target->count = cycles;
  return Status::Ok();
}

int CountSteps(const std::vector<Step>& steps) {
  int n = 0;
  for (const auto& s : steps) {
    if (const auto* r = std::get_if<RepeatStep>(&s.action)) {
      n += r->count * CountSteps(r->steps);
    } else {
      ++n;
    }
  }
  return n;
}

namespace {

Status Invalid(const SourceLocation& where, const std::string& message) {
  return Status::Error(Layer::kScenario, where.ToString() + ": " + message);
}

Status ValidateSteps(const std::vector<Step>& steps) {
  for (const auto& s : steps) {
    if (const auto* p = std::get_if<PowerCycleStep>(&s.action)) {
      if (!p->kind && p->mix.empty()) return Invalid(s.where, "power_cycle needs a kind or a mix");
      double total = 0;
      for (const auto& [kind, weight] : p->mix) {
        if (weight < 0) return Invalid(s.where, "mix weights must not be negative");
        total += weight;
      }
      if (!p->kind && total <= 0) return Invalid(s.where, "mix weights add up to zero");
    } else if (const auto* r = std::get_if<RepeatStep>(&s.action)) {
      if (r->count < 0) return Invalid(s.where, "repeat count must not be negative");
      TRY(ValidateSteps(r->steps));
    }
  }
  return Status::Ok();
}

}  // namespace

Status ValidateScenario(const Scenario& scenario) {
  const SourceLocation top{scenario.file, 0, 0};
  if (scenario.name.empty()) return Invalid(top, "the scenario needs a name");
  if (scenario.platform.banks.empty()) return Invalid(top, "platform.banks is empty");
  for (const auto& b : scenario.platform.banks) {
    if (!HashAlgFromName(b) || b == "sm3_256") {
      return Invalid(top, "platform.banks: '" + b + "' is not one of sha1, sha256, sha384, sha512");
    }
  }
  const uint8_t loc = scenario.platform.boot.startup_locality;
  if (loc != 0 && loc != 3) return Invalid(top, "platform.startup_locality must be 0 or 3");
  if (scenario.platform.command_timeout_ms <= 0) {
    return Invalid(top, "platform.command_timeout_ms must be positive");
  }
  return ValidateSteps(scenario.steps);
}

}  // namespace tpmlab
