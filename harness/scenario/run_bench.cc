// What each step of a scenario asks of the bench's chip: the scenario's side
// of the bench policy (harness/bench_policy.h decides what a bench refuses).
#include <functional>

#include "run.h"

namespace tpmlab {

// The bench-guarded operation a step performs, if any (hw/README.md, allow:).
std::optional<Operation> DestructiveOperation(const Step& step) {
  const auto& a = step.action;
  if (std::holds_alternative<ClearStep>(a) || std::holds_alternative<ClearControlStep>(a)) return Operation::kClear;
  if (std::holds_alternative<ChangeEpsStep>(a)) return Operation::kChangeEps;
  if (std::holds_alternative<ChangePpsStep>(a)) return Operation::kChangePps;
  if (std::holds_alternative<AllocateBanksStep>(a)) return Operation::kAllocateBanks;
  if (const auto* f = std::get_if<FirmwareUpdateStep>(&a); f && !f->model) return Operation::kFirmwareInstall;
  if (std::holds_alternative<ClockSetStep>(a) || std::holds_alternative<ClockSkewStep>(a)) return Operation::kClockSet;
  if (const auto* h = std::get_if<HierarchyStep>(&a); h && !h->enable) return Operation::kHierarchy;
  if (std::holds_alternative<ExtendStep>(a)) return Operation::kExtend;
  return std::nullopt;
}

namespace {

// What one step asks of a chip beyond its commands.
BenchDemand DemandOf(const Step& step) {
  BenchDemand demand;
  demand.operation = DestructiveOperation(step);
  const auto& a = step.action;
  demand.power_switch = std::holds_alternative<PowerCycleStep>(a);
  if (const auto* p = std::get_if<PowerCycleStep>(&a)) {
    if (p->kind) demand.power_cycle_kinds.push_back(*p->kind);
    for (const auto& [kind, weight] : p->mix) {
      if (weight > 0) demand.power_cycle_kinds.push_back(kind);
    }
  }
  if (const auto* f = std::get_if<FaultStep>(&a)) {
    using K = FaultStep::Kind;
    demand.emulator_process = f->kind == K::kHang || f->kind == K::kUnhang || f->kind == K::kKill || f->kind == K::kCutPower;
  }
  demand.emulator_state = std::holds_alternative<CheckpointStep>(a) || std::holds_alternative<RollbackStep>(a);
  if (const auto* f = std::get_if<FirmwareUpdateStep>(&a)) {
    demand.tpm_image = !f->model;
    demand.firmware_model = f->model.has_value();
    if (f->model) demand.firmware_name = f->model->name;
  }
  return demand;
}

}  // namespace

std::vector<PlannedStep> PlanOf(const std::vector<Step>& steps) {
  std::vector<PlannedStep> plan;
  std::function<void(const std::vector<Step>&)> walk = [&](const std::vector<Step>& list) {
    for (const Step& step : list) {
      if (const auto* r = std::get_if<RepeatStep>(&step.action)) walk(r->steps);
      if (const auto* c = std::get_if<ChooseStep>(&step.action)) walk(c->steps);
      plan.push_back({step.where.ToString(), StepActionName(step), DemandOf(step)});
    }
  };
  walk(steps);
  return plan;
}

}  // namespace tpmlab
