// The scenario YAML grammar: one small reader per step kind, plus the keys
// they share. Over 600 lines because it is a table of ~30 step kinds whose
// error messages must agree; a new step kind adds a reader here.
#include "harness/scenario_yaml.h"

#include "harness/yaml_reader.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

#include "harness/response_codes.h"
#include "harness/verify.h"

namespace tpmlab {
namespace {

constexpr const char* kFaultNames =
    "latency, drop, corrupt, response_code, disconnect, hang, unhang, kill, cut_power or clear";

std::optional<FaultStep::Kind> FaultKindFromName(const std::string& name) {
  using K = FaultStep::Kind;
  static const std::map<std::string, K> kKinds = {
      {"latency", K::kLatency}, {"drop", K::kDrop}, {"corrupt", K::kCorrupt},
      {"response_code", K::kResponseCode}, {"disconnect", K::kDisconnect}, {"hang", K::kHang},
      {"unhang", K::kUnhang}, {"kill", K::kKill}, {"cut_power", K::kCutPower}, {"clear", K::kClear}};
  auto it = kKinds.find(name);
  if (it == kKinds.end()) return std::nullopt;
  return it->second;
}

// A response code by its TPM_RC_ name ("TPM_RC_DISABLED") or as a number.
std::optional<uint32_t> ResponseCodeFromName(const std::string& name) {
  if (auto named = TpmResponseCodeFromName(name)) return named;
  try {
    size_t used = 0;
    const unsigned long value = std::stoul(name, &used, 0);
    if (used == name.size() && value <= 0xFFFFFFFF) return static_cast<uint32_t>(value);
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

// The scenario's own vocabulary on top of the shared YAML reader.
class Reader : public YamlReader {
 public:
  using YamlReader::YamlReader;

  // Names read so far (firmware_update needs the images, rollback a checkpoint).
  mutable std::set<std::string> images_, checkpoints_;
  mutable std::vector<std::string> sources_;
  mutable std::vector<ModelReference> references_;
  ModelResolver resolve_;  // empty: the search path

  // Names that become folder names under the run's output (checkpoints/NAME,
  // images/NAME): a bundle from elsewhere must not reach outside it.
  Status SafeName(const YAML::Node& n, const std::string& name, const std::string& what) const {
    const bool ok = !name.empty() && name.size() <= 64 && name[0] != '.' &&
                    std::all_of(name.begin(), name.end(), [](char c) {
                      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
                    });
    if (!ok) return Error(n, what + " name is letters, digits, '-', '_' and '.', not starting with '.': '" + name + "'");
    return Status::Ok();
  }

  Result<PowerCycleKind> Kind(const YAML::Node& n) const {
    TRY_ASSIGN(std::string name, String(n, "power_cycle kind"));
    auto kind = PowerCycleKindFromName(name);
    if (!kind) {
      return Error(n, "unknown power_cycle kind '" + name +
                          "' (expected reset, restart, resume, power-loss or hard-loss)");
    }
    return *kind;
  }

  // `firmware` is the model's node, at the top or under platform.
  Result<Platform> ReadPlatform(const YAML::Node& n, const YAML::Node& firmware) const {
    Platform p;
    TRY(Keys(n, "platform", {"banks", "ak", "startup_locality", "hcrtm", "firmware",
                             "command_timeout_ms", "command_timeouts", "images", "max_consecutive_errors", "bus", "tis"}));
    if (n["bus"]) {
      TRY_ASSIGN(std::string name, String(n["bus"], "platform.bus"));
      auto bus = EmulatedBusFromName(name);
      if (!bus) return Error(n["bus"], "platform.bus must be socket or tis-spi, not '" + name + "'");
      p.bus = *bus;
    }
    if (const auto tis = n["tis"]) {
      if (p.bus != EmulatedBus::kTisSpi) return Error(tis, "platform.tis needs bus: tis-spi");
      if (!tis.IsMap()) return Error(tis, "platform.tis is a map {wait_states, burst_count}");
      TRY(Keys(tis, "platform.tis", {"wait_states", "burst_count"}));
      if (tis["wait_states"]) {
        TRY_ASSIGN(int64_t w, Int(tis["wait_states"], "platform.tis.wait_states"));
        if (w < 0 || w > 64) return Error(tis["wait_states"], "platform.tis.wait_states must be 0..64");
        p.tis.wait_states = static_cast<int>(w);
      }
      if (tis["burst_count"]) {
        TRY_ASSIGN(int64_t b, Int(tis["burst_count"], "platform.tis.burst_count"));
        if (b < 1 || b > 64) return Error(tis["burst_count"], "platform.tis.burst_count must be 1..64");
        p.tis.burst_count = static_cast<uint16_t>(b);
      }
    }
    if (const auto timeouts = n["command_timeouts"]) {
      if (!timeouts.IsMap()) return Error(timeouts, "platform.command_timeouts maps command names to ms");
      for (const auto& kv : timeouts) {
        const std::string name = kv.first.as<std::string>();
        auto code = TpmCommandCodeFromName(name);
        if (!code) return Error(kv.first, "unknown command '" + name + "' (a name like TPM2_CreatePrimary)");
        TRY_ASSIGN(int64_t ms, Int(kv.second, "a command timeout"));
        if (ms <= 0 || ms > 3600000) return Error(kv.second, "command timeouts must be 1..3600000 ms");
        p.command_timeouts_ms[*code] = static_cast<int>(ms);
      }
    }
    if (n["images"]) { TRY_ASSIGN(p.images, Images(n["images"])); }
    if (n["max_consecutive_errors"]) {
      TRY_ASSIGN(int64_t max, Int(n["max_consecutive_errors"], "platform.max_consecutive_errors"));
      if (max < 1 || max > 1000000) return Error(n["max_consecutive_errors"], "max_consecutive_errors must be 1..1000000");
      p.max_consecutive_errors = static_cast<int>(max);
    }
    if (n["banks"]) {
      if (!n["banks"].IsSequence()) return Error(n["banks"], "platform.banks must be a list");
      if (n["banks"].size() == 0) return Error(n["banks"], "platform.banks is empty");
      p.banks.clear();
      for (const auto& b : n["banks"]) {
        TRY_ASSIGN(std::string bank, String(b, "a bank"));
        if (!HashAlgFromName(bank) || bank == "sm3_256") {
          return Error(b, "unknown bank '" + bank + "' (expected sha1, sha256, sha384 or sha512)");
        }
        p.banks.push_back(bank);
      }
    }
    if (n["ak"]) {
      TRY_ASSIGN(std::string ak, String(n["ak"], "platform.ak"));
      auto type = KeyTypeFromName(ak);
      if (!type) return Error(n["ak"], "platform.ak must be rsa or ecc, not '" + ak + "'");
      p.ak = *type;
    }
    if (n["startup_locality"]) {
      TRY_ASSIGN(int64_t loc, Int(n["startup_locality"], "platform.startup_locality"));
      if (loc != 0 && loc != 3) return Error(n["startup_locality"], "startup_locality must be 0 or 3");
      p.boot.startup_locality = static_cast<uint8_t>(loc);
    }
    if (n["hcrtm"]) {
      TRY_ASSIGN(std::string data, String(n["hcrtm"], "platform.hcrtm"));
      p.boot.hcrtm_data = Bytes(data.begin(), data.end());
    }
    if (n["command_timeout_ms"]) {
      TRY_ASSIGN(int64_t ms, Int(n["command_timeout_ms"], "platform.command_timeout_ms"));
      if (ms <= 0 || ms > 3600000) return Error(n["command_timeout_ms"], "command_timeout_ms must be 1..3600000");
      p.command_timeout_ms = static_cast<int>(ms);
    }
    if (firmware) {
      TRY_ASSIGN(FirmwareModel loaded, Model(firmware));
      std::optional<FirmwareModel> model = std::move(loaded);
      // The model's platform options apply unless the scenario gives its own.
      if (model->banks && !n["banks"]) p.banks = *model->banks;
      if (model->startup_locality && !n["startup_locality"]) p.boot.startup_locality = *model->startup_locality;
      if (model->hcrtm && !n["hcrtm"]) p.boot.hcrtm_data = Bytes(model->hcrtm->begin(), model->hcrtm->end());
      p.firmware = std::move(*model);
    }
    return p;
  }

  Result<std::vector<Step>> ReadSteps(const YAML::Node& n, int depth) const {
    if (!n.IsSequence()) return Error(n, "steps must be a list");
    if (depth > 8) return Error(n, "repeats nested deeper than 8 levels");
    std::vector<Step> steps;
    for (const auto& s : n) {
      TRY_ASSIGN(Step step, ReadStep(s, depth));
      steps.push_back(std::move(step));
    }
    return steps;
  }

  Result<Step> ReadStep(const YAML::Node& n, int depth) const {
    Step step;
    step.where = Where(n);
    std::string action;
    YAML::Node body;
    if (n.IsScalar()) {
      action = n.Scalar();
    } else if (n.IsMap() && n.size() == 1) {
      action = n.begin()->first.as<std::string>();
      body = n.begin()->second;
    } else {
      return Error(n, "a step is a name (boot) or a mapping with one key (power_cycle: {...})");
    }
    const bool empty = !body || body.IsNull();
    // Steps that take no options accept `name`, `name: {}` or `name: null`.
    auto no_options = [&](const char* what) -> Status {
      if (!empty) return Keys(body, what, {});
      return Status::Ok();
    };
    if (action == "boot") {
      BootStep b;
      if (!empty) {
        TRY(Keys(body, "boot", {"snapshot"}));
        if (body["snapshot"]) { TRY_ASSIGN(b.snapshot, Bool(body["snapshot"], "boot.snapshot")); }
      }
      step.action = b;
    } else if (action == "snapshot" || action == "verify") {
      TRY(no_options(action.c_str()));
      step.action = SnapshotStep{action == "verify"};
    } else if (action == "enroll") {
      TRY(no_options("enroll"));
      step.action = EnrollStep{};
    } else if (action == "power_cycle") {
      TRY_ASSIGN(step.action, ReadPowerCycle(n, body, empty));
    } else if (action == "repeat") {
      if (empty) return Error(n, "repeat needs count and steps");
      TRY(Keys(body, "repeat", {"count", "steps"}));
      if (!body["count"] || !body["steps"]) return Error(body, "repeat needs count and steps");
      RepeatStep r;
      TRY_ASSIGN(int64_t count, Int(body["count"], "repeat.count"));
      if (count < 0 || count > 10000000) return Error(body["count"], "repeat.count must be 0..10000000");
      r.count = static_cast<int>(count);
      TRY_ASSIGN(r.steps, ReadSteps(body["steps"], depth + 1));
      step.action = std::move(r);
    } else if (action == "choose") {
      if (empty) return Error(n, "choose needs steps");
      ChooseStep c;
      if (body.IsSequence()) {
        TRY_ASSIGN(c.steps, ReadSteps(body, depth + 1));
      } else {
        TRY(Keys(body, "choose", {"steps", "weights"}));
        if (!body["steps"]) return Error(body, "choose needs steps");
        TRY_ASSIGN(c.steps, ReadSteps(body["steps"], depth + 1));
        if (body["weights"]) {
          if (!body["weights"].IsSequence()) return Error(body["weights"], "choose.weights must be a list of numbers");
          for (const auto& w : body["weights"]) {
            TRY_ASSIGN(double weight, Scalar<double>(w, "a weight", "a number"));
            if (weight < 0) return Error(w, "weights must not be negative");
            c.weights.push_back(weight);
          }
          if (c.weights.size() != c.steps.size()) {
            return Error(body["weights"], "choose has " + std::to_string(c.steps.size()) + " steps but " +
                                              std::to_string(c.weights.size()) + " weights");
          }
        }
      }
      if (c.steps.empty()) return Error(n, "choose needs at least one step");
      step.action = std::move(c);
    } else if (action == "expect") {
      if (empty) return Error(n, "expect needs something to expect (alarms, absent, pcrs, counters, rc, error)");
      TRY_ASSIGN(step.action, ReadExpect(body));
    } else if (action == "clear") {
      ClearStep c;
      if (!empty) {
        TRY(Keys(body, "clear", {"auth"}));
        if (body["auth"]) {
          TRY_ASSIGN(std::string auth, String(body["auth"], "clear.auth"));
          if (auth == "lockout") c.auth = Hierarchy::kLockout;
          else if (auth == "platform") c.auth = Hierarchy::kPlatform;
          else return Error(body["auth"], "clear.auth must be lockout or platform, not '" + auth + "'");
        }
      }
      step.action = c;
    } else if (action == "clear_control") {
      ClearControlStep c;
      if (empty) return Error(n, "clear_control needs disable: true or false");
      if (body.IsScalar()) {
        TRY_ASSIGN(std::string word, String(body, "clear_control"));
        if (word == "disable") c.disable = true;
        else if (word == "enable") c.disable = false;
        else return Error(body, "clear_control is disable or enable, not '" + word + "'");
      } else {
        TRY(Keys(body, "clear_control", {"disable", "auth"}));
        if (!body["disable"]) return Error(body, "clear_control needs disable: true or false");
        TRY_ASSIGN(c.disable, Bool(body["disable"], "clear_control.disable"));
        if (body["auth"]) {
          TRY_ASSIGN(std::string auth, String(body["auth"], "clear_control.auth"));
          if (auth == "lockout") c.auth = Hierarchy::kLockout;
          else if (auth == "platform") c.auth = Hierarchy::kPlatform;
          else return Error(body["auth"], "clear_control.auth must be lockout or platform, not '" + auth + "'");
        }
      }
      step.action = c;
    } else if (action == "change_eps") {
      TRY(no_options("change_eps"));
      step.action = ChangeEpsStep{};
    } else if (action == "change_pps") {
      TRY(no_options("change_pps"));
      step.action = ChangePpsStep{};
    } else if (action == "hierarchy") {
      if (empty) return Error(n, "hierarchy needs one of owner, endorsement, platform: enable or disable");
      if (!body.IsMap() || body.size() != 1) {
        return Error(body, "hierarchy takes one entry, e.g. {endorsement: disable}");
      }
      HierarchyStep h;
      const auto entry = *body.begin();
      const std::string which = entry.first.as<std::string>();
      if (which == "owner") h.hierarchy = Hierarchy::kOwner;
      else if (which == "endorsement") h.hierarchy = Hierarchy::kEndorsement;
      else if (which == "platform") h.hierarchy = Hierarchy::kPlatform;
      else return Error(entry.first, "unknown hierarchy '" + which + "' (expected owner, endorsement or platform)");
      TRY_ASSIGN(std::string state, String(entry.second, "hierarchy." + which));
      if (state == "enable") h.enable = true;
      else if (state == "disable") h.enable = false;
      else return Error(entry.second, "hierarchy." + which + " is enable or disable, not '" + state + "'");
      step.action = h;
    } else if (action == "allocate_banks") {
      if (empty) return Error(n, "allocate_banks needs a list of banks");
      AllocateBanksStep a;
      TRY_ASSIGN(a.banks, Banks(body, "allocate_banks"));
      step.action = a;
    } else if (action == "firmware_update") {
      if (empty) return Error(n, "firmware_update needs platform: MODEL or tpm: IMAGE");
      TRY(Keys(body, "firmware_update", {"platform", "tpm"}));
      FirmwareUpdateStep f;
      if (body["platform"] && body["tpm"]) return Error(body, "firmware_update takes platform or tpm, not both");
      if (body["platform"]) {
        TRY_ASSIGN(f.model, Model(body["platform"]));
      } else if (body["tpm"]) {
        TRY_ASSIGN(f.image, String(body["tpm"], "firmware_update.tpm"));
        if (!images_.count(f.image)) {
          return Error(body["tpm"], "no TPM image named '" + f.image + "' in platform.images");
        }
      } else {
        return Error(body, "firmware_update needs platform: MODEL or tpm: IMAGE");
      }
      step.action = std::move(f);
    } else if (action == "clock_set") {
      if (empty) return Error(n, "clock_set needs the new clock in ms");
      ClockSetStep c;
      TRY_ASSIGN(c.clock_ms, Unsigned(body, "clock_set"));
      step.action = c;
    } else if (action == "clock_skew") {
      if (empty) return Error(n, "clock_skew needs the skew in ms");
      ClockSkewStep c;
      TRY_ASSIGN(c.skew_ms, Int(body, "clock_skew"));
      if (c.skew_ms <= 0) return Error(body, "clock_skew must be positive: a TPM clock only moves forward");
      step.action = c;
    } else if (action == "extend" || action == "event") {
      if (empty) return Error(n, action + " needs pcr and data");
      TRY(Keys(body, action, {"pcr", "data", "type", "logged"}));
      ExtendStep e;
      e.logged = action == "event";
      if (!body["pcr"] || !body["data"]) return Error(body, action + " needs pcr and data");
      TRY_ASSIGN(int64_t pcr, Int(body["pcr"], action + ".pcr"));
      if (pcr < 0 || pcr > 23) return Error(body["pcr"], action + ".pcr must be 0..23");
      e.pcr = static_cast<int>(pcr);
      TRY_ASSIGN(e.data, String(body["data"], action + ".data"));
      if (body["type"]) {
        TRY_ASSIGN(uint64_t type, Unsigned(body["type"], action + ".type"));
        if (type > 0xFFFFFFFF) return Error(body["type"], action + ".type must fit 32 bits");
        e.event_type = static_cast<uint32_t>(type);
      }
      if (body["logged"]) { TRY_ASSIGN(e.logged, Bool(body["logged"], action + ".logged")); }
      step.action = e;
    } else if (action == "fault") {
      if (empty) return Error(n, "fault needs a kind");
      TRY_ASSIGN(step.action, ReadFault(body));
    } else if (action == "wait") {
      if (empty) return Error(n, "wait needs a duration in ms");
      TRY_ASSIGN(int64_t ms, Int(body, "wait"));
      if (ms < 0 || ms > 86400000) return Error(body, "wait must be 0..86400000 ms");
      step.action = WaitStep{static_cast<int>(ms)};
    } else if (action == "checkpoint") {
      if (empty) return Error(n, "checkpoint needs a name");
      CheckpointStep c;
      TRY_ASSIGN(c.name, String(body, "checkpoint"));
      TRY(SafeName(body, c.name, "a checkpoint"));
      checkpoints_.insert(c.name);
      step.action = c;
    } else if (action == "rollback") {
      if (empty) return Error(n, "rollback needs a checkpoint name");
      RollbackStep r;
      if (body.IsScalar()) {
        TRY_ASSIGN(r.name, String(body, "rollback"));
      } else {
        TRY(Keys(body, "rollback", {"to", "snapshot"}));
        if (!body["to"]) return Error(body, "rollback needs to: CHECKPOINT");
        TRY_ASSIGN(r.name, String(body["to"], "rollback.to"));
        if (body["snapshot"]) { TRY_ASSIGN(r.snapshot, Bool(body["snapshot"], "rollback.snapshot")); }
      }
      if (!checkpoints_.count(r.name)) return Error(n, "rollback to '" + r.name + "': no checkpoint of that name before it");
      step.action = r;
    } else if (action == "doctor") {
      TRY(no_options("doctor"));
      step.action = DoctorStep{};
    } else {
      return Error(n, "unknown step '" + action + "' (expected one of: " + kStepNames + ")");
    }
    return step;
  }

  static constexpr const char* kStepNames =
      "boot, power_cycle, snapshot, verify, enroll, expect, repeat, choose, clear, clear_control, "
      "change_eps, change_pps, hierarchy, allocate_banks, firmware_update, clock_set, clock_skew, "
      "extend, event, fault, wait, checkpoint, rollback, doctor";

  Result<Step::Action> ReadPowerCycle(const YAML::Node& n, const YAML::Node& body, bool empty) const {
    PowerCycleStep p;
    if (empty) return Error(n, "power_cycle needs a kind or a mix");
    if (body.IsScalar()) {
      TRY_ASSIGN(p.kind, Kind(body));
      return Step::Action(p);
    }
    TRY(Keys(body, "power_cycle", {"kind", "mix", "snapshot"}));
    if (body["kind"] && body["mix"]) return Error(body, "power_cycle takes kind or mix, not both");
    if (body["kind"]) { TRY_ASSIGN(p.kind, Kind(body["kind"])); }
    if (body["mix"]) {
      if (!body["mix"].IsMap()) return Error(body["mix"], "mix must map kinds to weights");
      double total = 0;
      for (const auto& kv : body["mix"]) {
        TRY_ASSIGN(PowerCycleKind kind, Kind(kv.first));
        TRY_ASSIGN(double w, Scalar<double>(kv.second, "a mix weight", "a number"));
        if (w < 0) return Error(kv.second, "mix weights must not be negative");
        total += w;
        p.mix.emplace_back(kind, w);
      }
      if (total <= 0) return Error(body["mix"], "mix weights add up to zero");
    }
    if (!p.kind && p.mix.empty()) return Error(body, "power_cycle needs a kind or a mix");
    if (body["snapshot"]) { TRY_ASSIGN(p.snapshot, Bool(body["snapshot"], "power_cycle.snapshot")); }
    return Step::Action(p);
  }

  Result<std::vector<std::string>> AlarmCodes(const YAML::Node& n, const std::string& what) const {
    TRY_ASSIGN(std::vector<std::string> codes, StringList(n, what));
    const auto& known = AllAlarmCodes();
    size_t i = 0;
    for (const auto& code : codes) {
      if (std::find(known.begin(), known.end(), code) == known.end()) {
        return Error(n[i], "unknown alarm '" + code + "' (README.md, Alarms, lists the codes)");
      }
      ++i;
    }
    return codes;
  }

  Result<std::vector<int>> PcrList(const YAML::Node& n, const std::string& what) const {
    if (!n.IsSequence()) return Error(n, what + " must be a list of PCR numbers");
    std::vector<int> pcrs;
    for (const auto& item : n) {
      TRY_ASSIGN(int64_t pcr, Int(item, "a PCR in " + what));
      if (pcr < 0 || pcr > 23) return Error(item, "PCR numbers are 0..23");
      pcrs.push_back(static_cast<int>(pcr));
    }
    return pcrs;
  }

  Result<std::optional<std::string>> Movement(const YAML::Node& n, const std::string& what) const {
    TRY_ASSIGN(std::string m, String(n, what));
    if (m != "up" && m != "same" && m != "reset" && m != "down") {
      return Error(n, what + " is up, same, reset or down, not '" + m + "'");
    }
    return std::optional<std::string>(m);
  }

  Result<Step::Action> ReadExpect(const YAML::Node& body) const {
    TRY(Keys(body, "expect", {"alarms", "one_of", "absent", "allow", "allow_after_power_loss", "others", "pcrs",
                              "counters", "rc", "error"}));
    ExpectStep e;
    if (body["alarms"]) { TRY_ASSIGN(e.alarms, AlarmCodes(body["alarms"], "expect.alarms")); }
    if (body["one_of"]) { TRY_ASSIGN(e.one_of, AlarmCodes(body["one_of"], "expect.one_of")); }
    if (body["absent"]) { TRY_ASSIGN(e.absent, AlarmCodes(body["absent"], "expect.absent")); }
    if (body["allow"]) { TRY_ASSIGN(e.allow, AlarmCodes(body["allow"], "expect.allow")); }
    if (body["allow_after_power_loss"]) {
      TRY_ASSIGN(e.allow_after_power_loss, AlarmCodes(body["allow_after_power_loss"], "expect.allow_after_power_loss"));
    }
    if (body["others"]) {
      TRY_ASSIGN(std::string others, String(body["others"], "expect.others"));
      if (others != "fail" && others != "allow") return Error(body["others"], "expect.others is fail or allow");
      e.others_allowed = others == "allow";
    }
    if (const auto pcrs = body["pcrs"]) {
      TRY(Keys(pcrs, "expect.pcrs", {"drift", "steady", "bank", "against"}));
      if (pcrs["drift"]) { TRY_ASSIGN(e.pcrs_drift, PcrList(pcrs["drift"], "expect.pcrs.drift")); }
      if (pcrs["steady"]) { TRY_ASSIGN(e.pcrs_steady, PcrList(pcrs["steady"], "expect.pcrs.steady")); }
      if (pcrs["bank"]) {
        TRY_ASSIGN(e.pcr_bank, String(pcrs["bank"], "expect.pcrs.bank"));
        if (!HashAlgFromName(e.pcr_bank)) return Error(pcrs["bank"], "unknown bank '" + e.pcr_bank + "'");
      }
      if (pcrs["against"]) {
        TRY_ASSIGN(std::string against, String(pcrs["against"], "expect.pcrs.against"));
        if (against != "previous" && against != "golden") {
          return Error(pcrs["against"], "expect.pcrs.against is previous or golden");
        }
        e.against_golden = against == "golden";
      }
    }
    if (const auto c = body["counters"]) {
      TRY(Keys(c, "expect.counters", {"reset_count", "restart_count", "safe"}));
      if (c["reset_count"]) { TRY_ASSIGN(e.reset_count, Movement(c["reset_count"], "expect.counters.reset_count")); }
      if (c["restart_count"]) { TRY_ASSIGN(e.restart_count, Movement(c["restart_count"], "expect.counters.restart_count")); }
      if (c["safe"]) { TRY_ASSIGN(e.safe, Bool(c["safe"], "expect.counters.safe")); }
    }
    if (body["rc"]) {
      auto rc = ResponseCodeFromName(body["rc"].Scalar());
      if (!body["rc"].IsScalar() || !rc) {
        return Error(body["rc"], "expect.rc is a response code: a number or TPM_RC_DISABLED, TPM_RC_VALUE, ...");
      }
      e.rc = *rc;
    }
    if (body["error"]) { TRY_ASSIGN(e.error, Bool(body["error"], "expect.error")); }
    return Step::Action(std::move(e));
  }

  Result<Step::Action> ReadFault(const YAML::Node& body) const {
    FaultStep f;
    if (body.IsScalar()) {
      auto kind = FaultKindFromName(body.Scalar());
      if (!kind) return Error(body, "unknown fault '" + body.Scalar() + "' (expected " + kFaultNames + ")");
      f.kind = *kind;
      return Step::Action(f);
    }
    TRY(Keys(body, "fault", {"kind", "count", "command", "probability", "latency_ms", "rc", "within"}));
    if (!body["kind"]) return Error(body, "fault needs a kind (" + std::string(kFaultNames) + ")");
    TRY_ASSIGN(std::string kind_name, String(body["kind"], "fault.kind"));
    auto kind = FaultKindFromName(kind_name);
    if (!kind) return Error(body["kind"], "unknown fault '" + kind_name + "' (expected " + kFaultNames + ")");
    f.kind = *kind;
    if (body["count"]) {
      TRY_ASSIGN(uint64_t count, Unsigned(body["count"], "fault.count"));
      if (count == 0 || count > 0xFFFFFFFE) return Error(body["count"], "fault.count must be 1..4294967294");
      f.count = static_cast<uint32_t>(count);
    }
    if (body["command"]) {
      TRY_ASSIGN(std::string command, String(body["command"], "fault.command"));
      auto code = TpmCommandCodeFromName(command);
      if (!code) {
        uint32_t number = 0;
        if (!YAML::convert<uint32_t>::decode(body["command"], number)) {
          return Error(body["command"], "unknown command '" + command + "' (a name like TPM2_Quote, or a code)");
        }
        code = number;
      }
      f.command_code = code;
    }
    if (body["probability"]) {
      TRY_ASSIGN(f.probability, Scalar<double>(body["probability"], "fault.probability", "a number"));
      if (f.probability < 0 || f.probability > 1) return Error(body["probability"], "fault.probability must be 0..1");
    }
    if (body["latency_ms"]) {
      TRY_ASSIGN(int64_t ms, Int(body["latency_ms"], "fault.latency_ms"));
      if (ms < 0 || ms > 3600000) return Error(body["latency_ms"], "fault.latency_ms must be 0..3600000");
      f.latency_ms = static_cast<int>(ms);
    }
    if (body["rc"]) {
      auto rc = ResponseCodeFromName(body["rc"].Scalar());
      if (!body["rc"].IsScalar() || !rc) return Error(body["rc"], "fault.rc is a response code (TPM_RC_RETRY, ...)");
      f.response_code = *rc;
    }
    if (body["within"]) {
      TRY_ASSIGN(int64_t within, Int(body["within"], "fault.within"));
      if (within < 1 || within > 1000000) return Error(body["within"], "fault.within must be 1..1000000");
      f.within = static_cast<int>(within);
    }
    // Each option only where it means something, so a typo'd intent is an error.
    using K = FaultStep::Kind;
    const bool transport = f.kind == K::kLatency || f.kind == K::kDrop || f.kind == K::kCorrupt ||
                           f.kind == K::kResponseCode || f.kind == K::kDisconnect;
    const std::map<std::string, bool> applies = {
        {"count", transport},
        {"probability", transport},
        {"command", transport || f.kind == K::kKill},
        {"latency_ms", f.kind == K::kLatency},
        {"rc", f.kind == K::kResponseCode},
        {"within", f.kind == K::kCutPower}};
    for (const auto& [key, ok] : applies) {
      if (body[key] && !ok) return Error(body[key], "fault '" + kind_name + "' takes no " + key);
    }
    return Step::Action(f);
  }

  Result<std::vector<std::string>> Banks(const YAML::Node& n, const std::string& what) const {
    if (!n.IsSequence()) return Error(n, what + " must be a list");
    if (n.size() == 0) return Error(n, what + " is empty");
    std::vector<std::string> banks;
    for (const auto& b : n) {
      TRY_ASSIGN(std::string bank, String(b, "a bank"));
      if (!HashAlgFromName(bank) || bank == "sm3_256") {
        return Error(b, "unknown bank '" + bank + "' (expected sha1, sha256, sha384 or sha512)");
      }
      banks.push_back(bank);
    }
    return banks;
  }

  // A firmware model named in the scenario: found by the one search path
  // (ResolveFirmwareModel), or by the resolver a replay gives.
  Result<FirmwareModel> Model(const YAML::Node& n) const {
    TRY_ASSIGN(std::string name, String(n, "a firmware model"));
    const std::filesystem::path named_in = file();
    auto path = resolve_ ? resolve_(name, named_in) : ResolveFirmwareModel(name, named_in.parent_path());
    if (!path.ok()) return Error(n, path.status().message());
    auto model = LoadFirmwareModel(*path, resolve_);
    if (!model.ok()) return Error(n, model.status().message());
    for (const auto& source : model->sources) sources_.push_back(source);
    references_.push_back({file(), name, path->string()});
    references_.insert(references_.end(), model->references.begin(), model->references.end());
    return std::move(*model);
  }

  Result<std::vector<TpmImage>> Images(const YAML::Node& n) const {
    if (!n.IsMap()) return Error(n, "platform.images maps names to {swtpm, library_dir, firmware_version}");
    std::vector<TpmImage> images;
    for (const auto& kv : n) {
      TpmImage image;
      image.name = kv.first.as<std::string>();
      TRY(SafeName(kv.first, image.name, "an image"));
      const YAML::Node& v = kv.second;
      if (!v.IsMap()) return Error(v, "image '" + image.name + "' must be a mapping");
      TRY(Keys(v, "an image", {"swtpm", "library_dir", "firmware_version"}));
      if (v["swtpm"]) { TRY_ASSIGN(image.swtpm, String(v["swtpm"], "image.swtpm")); }
      if (v["library_dir"]) { TRY_ASSIGN(image.library_dir, String(v["library_dir"], "image.library_dir")); }
      if (v["firmware_version"]) { TRY_ASSIGN(image.firmware_version, Unsigned(v["firmware_version"], "image.firmware_version")); }
      images_.insert(image.name);
      images.push_back(std::move(image));
    }
    return images;
  }

  Result<Scenario> ReadScenario(const YAML::Node& root) const {
    if (!root || root.IsNull()) return Error("the file is empty");
    TRY(Keys(root, "the scenario", {"name", "description", "seed", "platform", "firmware", "bench",
                                    "unexpected_alarms", "steps"}));
    Scenario s;
    s.file = file();
    if (root["bench"]) {
      // Benches (real chips) come with the hardware work; the embedded
      // default is the only one a scenario can name today.
      TRY_ASSIGN(std::string bench, String(root["bench"], "bench"));
      if (bench != "emulated") return Error(root["bench"], "bench '" + bench + "' is not known (only 'emulated' today)");
    }
    if (root["firmware"] && root["platform"] && root["platform"]["firmware"]) {
      return Error(root["firmware"], "give the firmware at the top or under platform, not both");
    }
    if (root["unexpected_alarms"]) {
      TRY_ASSIGN(std::string policy, String(root["unexpected_alarms"], "unexpected_alarms"));
      if (policy != "fail" && policy != "report") return Error(root["unexpected_alarms"], "unexpected_alarms is fail or report");
      s.unexpected_alarms_fail = policy == "fail";
    }
    if (!root["name"]) return Error(root, "the scenario needs a name");
    TRY_ASSIGN(s.name, String(root["name"], "name"));
    if (root["description"]) { TRY_ASSIGN(s.description, String(root["description"], "description")); }
    if (root["seed"]) {
      TRY_ASSIGN(s.seed, (Scalar<uint64_t>(root["seed"], "seed", "a non-negative integer")));
    }
    if (root["platform"] || root["firmware"]) {
      const YAML::Node platform = root["platform"] ? root["platform"] : YAML::Node(YAML::NodeType::Map);
      TRY_ASSIGN(s.platform, ReadPlatform(platform, root["firmware"] ? root["firmware"] : platform["firmware"]));
    }
    if (!root["steps"]) return Error(root, "the scenario needs steps");
    TRY_ASSIGN(s.steps, ReadSteps(root["steps"], 0));
    s.sources = sources_;
    s.model_references = references_;
    TRY(ValidateScenario(s));
    return s;
  }
};

}  // namespace

Result<Scenario> LoadScenarioText(const std::string& text, const std::string& file_name,
                                  const ModelResolver& resolve_models) {
  Reader reader(file_name);
  reader.resolve_ = resolve_models;
  TRY_ASSIGN(YAML::Node root, reader.Parse(text));
  // yaml-cpp throws where a node is not what it was read as (a list as a
  // mapping's key): that is the scenario's mistake, at that node.
  return reader.Catching([&]() -> Result<Scenario> {
    TRY_ASSIGN(Scenario scenario, reader.ReadScenario(root));
    scenario.text = text;
    return scenario;
  });
}

namespace {

// A place in a text file: as the message says it, and as data.
struct TextPlace {
  std::string text;  // "line:column" or "line:column (byte N, 0xNN)"
  Location where;
};

Location PlaceAt(int line, int column, size_t offset) {
  Location where("", static_cast<uint32_t>(line), static_cast<uint32_t>(column));
  where.offset = offset;
  return where;
}

// The first byte that cannot be in YAML text (a NUL or other control
// character, or bytes that are not UTF-8), as "line:column (byte N)".
std::optional<TextPlace> FirstNonTextByte(const std::string& text) {
  int line = 1, column = 1;
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t length = 1;
    bool bad = false;
    if (c < 0x20) {
      bad = c != '\t' && c != '\n' && c != '\r';
    } else if (c == 0x7F) {
      bad = true;
    } else if (c >= 0x80) {
      length = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
      bad = length == 0 || i + length > text.size();
      for (size_t k = 1; !bad && k < length; ++k) bad = (static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80;
    }
    if (bad) {
      char byte[8];
      std::snprintf(byte, sizeof(byte), "0x%02x", c);
      return TextPlace{std::to_string(line) + ":" + std::to_string(column) + " (byte " + std::to_string(i) + ", " +
                           byte + ")",
                       PlaceAt(line, column, i)};
    }
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
    i += length;
  }
  return std::nullopt;
}

// The first tab in a line's indentation, as "line:column": YAML indents with
// spaces only, and yaml-cpp's own message for it does not say so.
std::optional<TextPlace> FirstIndentTab(const std::string& text) {
  int line = 1;
  for (size_t start = 0; start < text.size(); ++line) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    for (size_t i = start; i < end && (text[i] == ' ' || text[i] == '\t'); ++i) {
      if (text[i] == '\t') {
        const auto column = static_cast<int>(i - start + 1);
        return TextPlace{std::to_string(line) + ":" + std::to_string(column),
                         PlaceAt(line, column, i)};
      }
    }
    start = end + 1;
  }
  return std::nullopt;
}

}  // namespace

Result<Scenario> LoadScenarioFile(const std::filesystem::path& file) {
  const std::string name = file.string();
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    return Status::Error(Layer::kScenario, name + ": is a folder, not a scenario file (give the .yaml file in it)");
  }
  std::FILE* in = std::fopen(name.c_str(), "rb");
  if (in == nullptr) {
    return Status::Error(Layer::kScenario, name + ": cannot read the scenario file: " + std::strerror(errno));
  }
  std::string text;
  char buffer[65536];
  size_t got;
  while ((got = std::fread(buffer, 1, sizeof(buffer), in)) > 0) text.append(buffer, got);
  const bool read_error = std::ferror(in) != 0;
  const int read_errno = errno;
  std::fclose(in);
  if (read_error) {
    return Status::Error(Layer::kScenario, name + ": cannot read the scenario file: " + std::strerror(read_errno));
  }
  if (auto bad = FirstNonTextByte(text)) {
    bad->where.file = name;
    return Status::Error(Layer::kScenario, name + ":" + bad->text + ": not YAML text (a binary file, or not UTF-8)")
        .At(bad->where);
  }
  auto scenario = LoadScenarioText(text, name);
  if (!scenario.ok()) {
    // yaml-cpp reports a tab in the indentation as some other syntax error.
    if (auto tab = FirstIndentTab(text)) {
      tab->where.file = name;
      return Status::ErrorAt(Layer::kScenario, tab->where,
                             "not YAML text: a tab in the indentation (YAML indents with spaces)");
    }
  }
  return scenario;
}

}  // namespace tpmlab
