#include "harness/scenario_yaml.h"

#include "harness/yaml_reader.h"

namespace tpmlab {
namespace {

// The scenario's own vocabulary on top of the shared YAML reader.
class Reader : public YamlReader {
 public:
  using YamlReader::YamlReader;

  Result<PowerCycleKind> Kind(const YAML::Node& n) const {
    TRY_ASSIGN(std::string name, String(n, "power_cycle kind"));
    auto kind = PowerCycleKindFromName(name);
    if (!kind) {
      return Error(n, "unknown power_cycle kind '" + name +
                          "' (expected reset, restart, resume, power-loss or hard-loss)");
    }
    return *kind;
  }

  Result<Platform> ReadPlatform(const YAML::Node& n) const {
    Platform p;
    TRY(Keys(n, "platform", {"banks", "ak", "startup_locality", "hcrtm", "firmware",
                             "command_timeout_ms"}));
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
    if (n["firmware"]) {
      TRY_ASSIGN(std::string name, String(n["firmware"], "platform.firmware"));
      const auto dir = std::filesystem::path(file()).parent_path();
      auto path = ResolveFirmwareModel(name, dir.empty() ? "." : dir);
      if (!path.ok()) return Error(n["firmware"], path.status().message());
      auto model = LoadFirmwareModel(*path);
      if (!model.ok()) return Error(n["firmware"], model.status().message());
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
    if (action == "boot") {
      BootStep b;
      if (!empty) {
        TRY(Keys(body, "boot", {"snapshot"}));
        if (body["snapshot"]) { TRY_ASSIGN(b.snapshot, Bool(body["snapshot"], "boot.snapshot")); }
      }
      step.action = b;
    } else if (action == "snapshot") {
      if (!empty) TRY(Keys(body, "snapshot", {}));
      step.action = SnapshotStep{};
    } else if (action == "enroll") {
      if (!empty) TRY(Keys(body, "enroll", {}));
      step.action = EnrollStep{};
    } else if (action == "power_cycle") {
      PowerCycleStep p;
      if (empty) return Error(n, "power_cycle needs a kind or a mix");
      if (body.IsScalar()) {
        TRY_ASSIGN(p.kind, Kind(body));
      } else {
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
      }
      step.action = p;
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
    } else {
      return Error(n, "unknown step '" + action + "' (expected boot, power_cycle, snapshot, enroll or repeat)");
    }
    return step;
  }

  Result<Scenario> ReadScenario(const YAML::Node& root) const {
    if (!root || root.IsNull()) return Error("the file is empty");
    TRY(Keys(root, "the scenario", {"name", "description", "seed", "platform", "steps"}));
    Scenario s;
    s.file = file();
    if (!root["name"]) return Error(root, "the scenario needs a name");
    TRY_ASSIGN(s.name, String(root["name"], "name"));
    if (root["description"]) { TRY_ASSIGN(s.description, String(root["description"], "description")); }
    if (root["seed"]) {
      TRY_ASSIGN(s.seed, (Scalar<uint64_t>(root["seed"], "seed", "a non-negative integer")));
    }
    if (root["platform"]) { TRY_ASSIGN(s.platform, ReadPlatform(root["platform"])); }
    if (!root["steps"]) return Error(root, "the scenario needs steps");
    TRY_ASSIGN(s.steps, ReadSteps(root["steps"], 0));
    TRY(ValidateScenario(s));
    return s;
  }
};

}  // namespace

Result<Scenario> LoadScenarioText(const std::string& text, const std::string& file_name) {
  Reader reader(file_name);
  TRY_ASSIGN(YAML::Node root, reader.Parse(text));
  return reader.ReadScenario(root);
}

Result<Scenario> LoadScenarioFile(const std::filesystem::path& file) {
  auto text = YamlReader::ReadText(file, Layer::kScenario);
  if (!text.ok()) return Status::Error(Layer::kScenario, file.string() + ": cannot read the scenario file");
  return LoadScenarioText(*text, file.string());
}

}  // namespace tpmlab
