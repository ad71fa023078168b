#include "harness/scenario.h"

#include <algorithm>

namespace tpmlab {

const char* StepActionName(const Step& step) {
  struct Name {
    const char* operator()(const BootStep&) const { return "boot"; }
    const char* operator()(const PowerCycleStep&) const { return "power_cycle"; }
    const char* operator()(const SnapshotStep& s) const { return s.verify_wording ? "verify" : "snapshot"; }
    const char* operator()(const EnrollStep&) const { return "enroll"; }
    const char* operator()(const ExpectStep&) const { return "expect"; }
    const char* operator()(const RepeatStep&) const { return "repeat"; }
    const char* operator()(const ChooseStep&) const { return "choose"; }
    const char* operator()(const ClearStep&) const { return "clear"; }
    const char* operator()(const ClearControlStep&) const { return "clear_control"; }
    const char* operator()(const ChangeEpsStep&) const { return "change_eps"; }
    const char* operator()(const ChangePpsStep&) const { return "change_pps"; }
    const char* operator()(const HierarchyStep&) const { return "hierarchy"; }
    const char* operator()(const AllocateBanksStep&) const { return "allocate_banks"; }
    const char* operator()(const FirmwareUpdateStep&) const { return "firmware_update"; }
    const char* operator()(const ClockSetStep&) const { return "clock_set"; }
    const char* operator()(const ClockSkewStep&) const { return "clock_skew"; }
    const char* operator()(const ExtendStep& e) const { return e.logged ? "event" : "extend"; }
    const char* operator()(const FaultStep&) const { return "fault"; }
    const char* operator()(const WaitStep&) const { return "wait"; }
    const char* operator()(const CheckpointStep&) const { return "checkpoint"; }
    const char* operator()(const RollbackStep&) const { return "rollback"; }
    const char* operator()(const DoctorStep&) const { return "doctor"; }
  };
  return std::visit(Name{}, step.action);
}

Status OverrideCycles(Scenario& scenario, int cycles) {
  if (cycles < 0) return Status::Error(Layer::kScenario, "--cycles must not be negative");
  RepeatStep* target = nullptr;
  for (auto& step : scenario.steps) {
    if (auto* r = std::get_if<RepeatStep>(&step.action)) {
      if (target != nullptr) {
        return step.where.Error(Layer::kScenario,
                                "--cycles is ambiguous: the scenario has more than one top-level repeat");
      }
      target = r;
    }
  }
  if (target == nullptr) {
    return Status::Error(Layer::kScenario,
                         scenario.file + ": --cycles needs a top-level repeat step to size");
  }
  target->count = cycles;
  scenario.cycles = cycles;
  return Status::Ok();
}

int CountSteps(const std::vector<Step>& steps) {
  int n = 0;
  for (const auto& s : steps) {
    if (const auto* r = std::get_if<RepeatStep>(&s.action)) {
      n += r->count * CountSteps(r->steps);
    } else if (const auto* c = std::get_if<ChooseStep>(&s.action)) {
      int most = 0;  // an estimate for progress: the longest choice
      for (const auto& option : c->steps) most = std::max(most, CountSteps({option}));
      n += most;
    } else {
      ++n;
    }
  }
  return n;
}

namespace {

Status Invalid(const SourceLocation& where, const std::string& message) {
  return where.Error(Layer::kScenario, message);
}

Status ValidateSteps(const std::vector<Step>& steps, const Platform& platform) {
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
      TRY(ValidateSteps(r->steps, platform));
    } else if (const auto* c = std::get_if<ChooseStep>(&s.action)) {
      if (c->steps.empty()) return Invalid(s.where, "choose needs at least one step");
      if (!c->weights.empty() && c->weights.size() != c->steps.size()) {
        return Invalid(s.where, "choose has " + std::to_string(c->steps.size()) + " steps but " +
                                    std::to_string(c->weights.size()) + " weights");
      }
      double total = c->weights.empty() ? 1 : 0;
      for (double w : c->weights) {
        if (w < 0) return Invalid(s.where, "choose weights must not be negative");
        total += w;
      }
      if (total <= 0) return Invalid(s.where, "choose weights add up to zero");
      TRY(ValidateSteps(c->steps, platform));
    } else if (const auto* f = std::get_if<FirmwareUpdateStep>(&s.action)) {
      if (f->model.has_value() == !f->image.empty()) {
        return Invalid(s.where, "firmware_update takes a platform model or a TPM image, one of them");
      }
      if (!f->image.empty()) {
        bool known = false;
        for (const auto& image : platform.images) known = known || image.name == f->image;
        if (!known) return Invalid(s.where, "firmware_update: no TPM image named '" + f->image + "' in platform.images");
      }
    } else if (const auto* e = std::get_if<ExtendStep>(&s.action)) {
      if (e->pcr < 0 || e->pcr > 23) return Invalid(s.where, "extend: pcr must be 0..23");
    } else if (const auto* a = std::get_if<AllocateBanksStep>(&s.action)) {
      if (a->banks.empty()) return Invalid(s.where, "allocate_banks needs at least one bank");
    } else if (const auto* w = std::get_if<WaitStep>(&s.action)) {
      if (w->ms < 0) return Invalid(s.where, "wait must not be negative");
    } else if (const auto* fault = std::get_if<FaultStep>(&s.action)) {
      if (fault->probability < 0 || fault->probability > 1) return Invalid(s.where, "fault probability must be 0..1");
      if (fault->within < 1) return Invalid(s.where, "fault within must be at least 1");
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
  for (const auto& image : scenario.platform.images) {
    if (image.name.empty()) return Invalid(top, "platform.images: every image needs a name");
  }
  if (scenario.platform.max_consecutive_errors < 1) {
    return Invalid(top, "platform.max_consecutive_errors must be at least 1");
  }
  return ValidateSteps(scenario.steps, scenario.platform);
}

}  // namespace tpmlab
