#include "harness/firmware_model.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "harness/yaml_reader.h"
#include "recorded.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;

class ModelReader : public YamlReader {
 public:
  using YamlReader::YamlReader;

  Status Read(const YAML::Node& root, FirmwareModel& m) const {
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "name") {
        TRY_ASSIGN(m.name, String(v, "name"));
      } else if (key == "description") {
        TRY_ASSIGN(m.description, String(v, "description"));
      } else if (key == "inherits") {
        continue;  // handled by the loader
      } else if (key == "s_crtm_version") {
        TRY_ASSIGN(m.s_crtm_version, String(v, "s_crtm_version"));
      } else if (key == "firmware_blobs") {
        TRY_ASSIGN(m.firmware_blobs, Blobs(v));
      } else if (key == "option_roms") {
        TRY_ASSIGN(m.option_roms, Roms(v));
      } else if (key == "platform_config") {
        TRY_ASSIGN(m.platform_config, StringList(v, "platform_config"));
      } else if (key == "secure_boot") {
        TRY_ASSIGN(m.secure_boot, Secure(v));
      } else if (key == "boot_order") {
        TRY_ASSIGN(m.boot_order, Order(v));
      } else if (key == "boot_entries") {
        TRY_ASSIGN(m.boot_entries, Entries(v));
      } else if (key == "gpt") {
        TRY(Gpt(v, m));
      } else if (key == "boot_loader") {
        TRY_ASSIGN(m.boot_loader, Loader(v));
      } else if (key == "kernel") {
        TRY_ASSIGN(m.kernel, KernelOf(v));
      } else if (key == "os_measurements") {
        TRY_ASSIGN(m.os_measurements, OsMeasurements(v));
      } else if (key == "banks") {
        TRY_ASSIGN(m.banks, StringList(v, "banks"));
      } else if (key == "startup_locality") {
        TRY_ASSIGN(int64_t loc, Int(v, "startup_locality"));
        if (loc != 0 && loc != 3) return Error(v, "startup_locality must be 0 or 3");
        m.startup_locality = static_cast<uint8_t>(loc);
      } else if (key == "hcrtm") {
        TRY_ASSIGN(m.hcrtm, String(v, "hcrtm"));
      } else if (key == "recorded") {
        TRY_ASSIGN(m.recorded, String(v, "recorded"));
      }
    }
    return Status::Ok();
  }

 private:
  template <typename T, typename F>
  Result<std::vector<T>> List(const YAML::Node& n, const std::string& what, F each) const {
    if (!n.IsSequence()) return Error(n, what + " must be a list");
    std::vector<T> out;
    for (const auto& item : n) {
      TRY_ASSIGN(T value, each(item));
      out.push_back(std::move(value));
    }
    return out;
  }

  Status Require(const YAML::Node& n, const std::string& what, std::initializer_list<const char*> keys) const {
    for (const char* k : keys) {
      if (!n[k]) return Error(n, what + " needs " + k);
    }
    return Status::Ok();
  }

  Result<std::vector<FirmwareBlob>> Blobs(const YAML::Node& n) const {
    return List<FirmwareBlob>(n, "firmware_blobs", [this](const YAML::Node& b) -> Result<FirmwareBlob> {
      TRY(Keys(b, "a firmware blob", {"description", "content", "base", "length"}));
      TRY(Require(b, "a firmware blob", {"description", "content"}));
      FirmwareBlob blob;
      TRY_ASSIGN(blob.description, String(b["description"], "description"));
      TRY_ASSIGN(blob.content, String(b["content"], "content"));
      if (b["base"]) { TRY_ASSIGN(blob.base, Unsigned(b["base"], "base")); }
      if (b["length"]) { TRY_ASSIGN(blob.length, Unsigned(b["length"], "length")); }
      if (blob.description.size() > 255) return Error(b["description"], "description longer than 255 bytes");
      return blob;
    });
  }

  Result<std::vector<OptionRom>> Roms(const YAML::Node& n) const {
    return List<OptionRom>(n, "option_roms", [this](const YAML::Node& r) -> Result<OptionRom> {
      TRY(Keys(r, "an option ROM", {"name", "content", "embedded"}));
      TRY(Require(r, "an option ROM", {"name", "content"}));
      OptionRom rom;
      TRY_ASSIGN(rom.name, String(r["name"], "name"));
      TRY_ASSIGN(rom.content, String(r["content"], "content"));
      if (r["embedded"]) { TRY_ASSIGN(rom.embedded, Bool(r["embedded"], "embedded")); }
      return rom;
    });
  }

  Result<SecureBoot> Secure(const YAML::Node& n) const {
    TRY(Keys(n, "secure_boot", {"enabled", "pk", "kek", "db", "dbx"}));
    SecureBoot sb;
    if (n["enabled"]) { TRY_ASSIGN(sb.enabled, Bool(n["enabled"], "secure_boot.enabled")); }
    if (n["pk"]) { TRY_ASSIGN(sb.pk, String(n["pk"], "secure_boot.pk")); }
    if (n["kek"]) { TRY_ASSIGN(sb.kek, StringList(n["kek"], "secure_boot.kek")); }
    if (n["db"]) { TRY_ASSIGN(sb.db, StringList(n["db"], "secure_boot.db")); }
    if (n["dbx"]) { TRY_ASSIGN(sb.dbx, StringList(n["dbx"], "secure_boot.dbx")); }
    return sb;
  }

  Result<std::vector<uint16_t>> Order(const YAML::Node& n) const {
    return List<uint16_t>(n, "boot_order", [this](const YAML::Node& x) -> Result<uint16_t> {
      TRY_ASSIGN(int64_t v, Int(x, "a boot option number"));
      if (v < 0 || v > 0xFFFF) return Error(x, "boot option numbers are 0..65535");
      return static_cast<uint16_t>(v);
    });
  }

  Result<std::vector<BootEntry>> Entries(const YAML::Node& n) const {
    return List<BootEntry>(n, "boot_entries", [this](const YAML::Node& e) -> Result<BootEntry> {
      TRY(Keys(e, "a boot entry", {"number", "description", "path"}));
      TRY(Require(e, "a boot entry", {"number", "description", "path"}));
      BootEntry entry;
      TRY_ASSIGN(int64_t number, Int(e["number"], "number"));
      if (number < 0 || number > 0xFFFF) return Error(e["number"], "boot option numbers are 0..65535");
      entry.number = static_cast<uint16_t>(number);
      TRY_ASSIGN(entry.description, String(e["description"], "description"));
      TRY_ASSIGN(entry.path, String(e["path"], "path"));
      return entry;
    });
  }

  Status Gpt(const YAML::Node& n, FirmwareModel& m) const {
    TRY(Keys(n, "gpt", {"disk_guid", "partitions"}));
    if (n["disk_guid"]) { TRY_ASSIGN(m.disk_guid, String(n["disk_guid"], "gpt.disk_guid")); }
    if (!n["partitions"]) return Status::Ok();
    TRY_ASSIGN(m.gpt, (List<GptPartition>(n["partitions"], "gpt.partitions",
                                          [this](const YAML::Node& p) -> Result<GptPartition> {
      TRY(Keys(p, "a partition", {"name", "type", "first_lba", "last_lba"}));
      TRY(Require(p, "a partition", {"name", "type", "first_lba", "last_lba"}));
      GptPartition part;
      TRY_ASSIGN(part.name, String(p["name"], "name"));
      TRY_ASSIGN(part.type_guid, String(p["type"], "type"));
      TRY_ASSIGN(part.first_lba, Unsigned(p["first_lba"], "first_lba"));
      TRY_ASSIGN(part.last_lba, Unsigned(p["last_lba"], "last_lba"));
      if (part.name.size() > 36) return Error(p["name"], "GPT partition names hold 36 characters");
      return part;
    })));
    return Status::Ok();
  }

  Result<BootLoader> Loader(const YAML::Node& n) const {
    TRY(Keys(n, "boot_loader", {"kind", "shim", "grub", "grub_commands", "systemd_boot"}));
    BootLoader b;
    if (n["kind"]) { TRY_ASSIGN(b.kind, String(n["kind"], "boot_loader.kind")); }
    if (b.kind != "shim-grub" && b.kind != "systemd-boot") {
      return Error(n["kind"], "boot_loader.kind must be shim-grub or systemd-boot");
    }
    if (n["shim"]) { TRY_ASSIGN(b.shim, String(n["shim"], "boot_loader.shim")); }
    if (n["grub"]) { TRY_ASSIGN(b.grub, String(n["grub"], "boot_loader.grub")); }
    if (n["grub_commands"]) { TRY_ASSIGN(b.grub_commands, StringList(n["grub_commands"], "grub_commands")); }
    if (n["systemd_boot"]) { TRY_ASSIGN(b.systemd_boot, String(n["systemd_boot"], "boot_loader.systemd_boot")); }
    return b;
  }

  Result<Kernel> KernelOf(const YAML::Node& n) const {
    TRY(Keys(n, "kernel", {"image", "initrd", "cmdline"}));
    Kernel k;
    if (n["image"]) { TRY_ASSIGN(k.image, String(n["image"], "kernel.image")); }
    if (n["initrd"]) { TRY_ASSIGN(k.initrd, String(n["initrd"], "kernel.initrd")); }
    if (n["cmdline"]) { TRY_ASSIGN(k.cmdline, String(n["cmdline"], "kernel.cmdline")); }
    return k;
  }

  Result<std::vector<OsMeasurement>> OsMeasurements(const YAML::Node& n) const {
    return List<OsMeasurement>(n, "os_measurements", [this](const YAML::Node& o) -> Result<OsMeasurement> {
      TRY(Keys(o, "an OS measurement", {"pcr", "name", "content"}));
      TRY(Require(o, "an OS measurement", {"pcr", "name", "content"}));
      OsMeasurement m;
      TRY_ASSIGN(int64_t pcr, Int(o["pcr"], "pcr"));
      if (pcr < 8 || pcr > 15) return Error(o["pcr"], "OS measurements go to PCRs 8..15");
      m.pcr = static_cast<int>(pcr);
      TRY_ASSIGN(m.name, String(o["name"], "name"));
      TRY_ASSIGN(m.content, String(o["content"], "content"));
      return m;
    });
  }
};

const std::set<std::string> kModelKeys = {
    "name", "description", "inherits", "s_crtm_version", "firmware_blobs", "option_roms",
    "platform_config", "secure_boot", "boot_order", "boot_entries", "gpt", "boot_loader",
    "kernel", "os_measurements", "banks", "startup_locality", "hcrtm", "recorded"};
// What a recorded model may say besides its log: the log is the measurements.
const std::set<std::string> kRecordedModelKeys = {"name", "description", "recorded", "banks", "hcrtm"};

// A binary event log, not YAML: its first 8 bytes (PCR index, event type)
// hold a NUL, which no YAML text does.
bool IsBinaryLog(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  char head[8] = {};
  in.read(head, sizeof(head));
  return std::find(head, head + in.gcount(), '\0') != head + in.gcount();
}

Result<FirmwareModel> Load(const fs::path& file, const ModelResolver& resolve, int depth) {
  if (IsBinaryLog(file)) {
    FirmwareModel model;
    model.name = file.stem().string();
    model.description = "recorded from " + file.filename().string();
    model.file = file.string();
    TRY(AttachRecordedLog(model, file));
    return model;
  }
  TRY_ASSIGN(std::string text, YamlReader::ReadText(file, Layer::kScenario));
  ModelReader reader(file.string());
  TRY_ASSIGN(YAML::Node root, reader.Parse(text));
  // yaml-cpp throws where a node is not what it is read as: this file's error, at that node.
  return reader.Catching([&]() -> Result<FirmwareModel> {
    if (!root || root.IsNull()) return reader.Error("the firmware model is empty");
    TRY(reader.Keys(root, "a firmware model", kModelKeys));
    FirmwareModel model;
    if (root["inherits"]) {
      TRY_ASSIGN(std::string base, reader.String(root["inherits"], "inherits"));
      if (depth > 8) return reader.Error(root["inherits"], "inherits nests deeper than 8 models");
      auto base_file = resolve ? resolve(base, file) : ResolveFirmwareModel(base, file.parent_path());
      if (!base_file.ok()) return reader.Error(root["inherits"], base_file.status().message());
      auto loaded = Load(*base_file, resolve, depth + 1);
      if (!loaded.ok()) return reader.Error(root["inherits"], loaded.status().message());
      model = std::move(*loaded);
      model.references.push_back({file.string(), base, base_file->string()});
    }
    TRY(reader.Read(root, model));
    if (model.name.empty()) return reader.Error(root, "a firmware model needs a name");
    model.file = file.string();
    model.sources.push_back(file.string());
    if (root["recorded"]) {
      TRY(reader.Keys(root, "a recorded firmware model", kRecordedModelKeys));
      const fs::path log = fs::path(model.recorded).is_absolute() ? fs::path(model.recorded)
                                                                  : file.parent_path() / model.recorded;
      Status attached = AttachRecordedLog(model, log);
      if (!attached.ok()) return reader.Error(root["recorded"], attached.message());
    }
    return model;
  });
}

// A name with a folder in it, or a file name, is a path; anything else names
// a model to search for.
bool IsModelPath(const std::string& name) {
  return name.find('/') != std::string::npos || name.ends_with(".yaml") || name.ends_with(".bin");
}

// The folder of the executable or shared object this code is linked into
// (the Python extension, or the tpmlab command).
std::vector<fs::path> BinaryDirs() {
  std::vector<fs::path> dirs;
  std::error_code ec;
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&InstalledFirmwareDirs), &info) != 0 && info.dli_fname != nullptr &&
      *info.dli_fname != '\0') {
    const fs::path object = fs::weakly_canonical(fs::absolute(info.dli_fname, ec), ec);
    if (!ec && fs::is_regular_file(object, ec)) dirs.push_back(object.parent_path());
  }
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) dirs.push_back(exe.parent_path());
  return dirs;
}

}  // namespace

Result<FirmwareModel> LoadFirmwareModel(const fs::path& file, const ModelResolver& resolve) {
  return Load(file, resolve, 0);
}

std::vector<fs::path> InstalledFirmwareDirs() {
  std::vector<fs::path> candidates;
  for (const auto& dir : BinaryDirs()) {
    candidates.push_back(dir / "firmware");
    candidates.push_back((dir / ".." / "share" / "tpmlab" / "firmware").lexically_normal());
  }
  // A source tree, never compiled in (an installed binary must not name the
  // folder it was built in): the one the environment names, then the nearest
  // above the binary (a build folder inside the source tree, out/build/PRESET).
  if (const char* source = std::getenv("TPMLAB_SOURCE_DIR"); source != nullptr && *source != '\0') {
    candidates.push_back(fs::path(source) / "scenarios" / "firmware");
  }
  std::error_code ec;
  for (const auto& binary_dir : BinaryDirs()) {
    for (fs::path dir = binary_dir; !dir.empty(); dir = dir.parent_path()) {
      if (fs::is_directory(dir / "scenarios" / "firmware", ec)) {
        candidates.push_back(dir / "scenarios" / "firmware");
        break;
      }
      if (dir == dir.parent_path()) break;
    }
  }
  std::vector<fs::path> dirs;
  for (const auto& c : candidates) {
    if (!fs::is_directory(c, ec)) continue;
    const fs::path canonical = fs::weakly_canonical(c, ec);
    if (std::find(dirs.begin(), dirs.end(), canonical) == dirs.end()) dirs.push_back(canonical);
  }
  return dirs;
}

std::vector<fs::path> FirmwareModelCandidates(const std::string& name, const fs::path& base_dir) {
  const fs::path base = base_dir.empty() ? fs::path(".") : base_dir;
  if (IsModelPath(name)) return {fs::path(name).is_absolute() ? fs::path(name) : base / name};
  std::vector<fs::path> candidates = {base / "firmware" / (name + ".yaml"), base / (name + ".yaml")};
  for (const auto& dir : InstalledFirmwareDirs()) candidates.push_back(dir / (name + ".yaml"));
  return candidates;
}

Result<fs::path> ResolveFirmwareModel(const std::string& name, const fs::path& base_dir) {
  if (name.empty()) return Status::Error(Layer::kScenario, "a firmware model name is empty");
  const std::vector<fs::path> candidates = FirmwareModelCandidates(name, base_dir);
  std::error_code ec;
  for (const auto& c : candidates) {
    if (fs::is_regular_file(c, ec)) return c;
  }
  if (IsModelPath(name)) {
    return Status::Error(Layer::kScenario, "firmware model '" + name + "' not found: " + candidates.front().string() +
                                               " does not exist");
  }
  std::string looked;
  for (const auto& c : candidates) looked += (looked.empty() ? "" : ", ") + c.string();
  return Status::Error(Layer::kScenario, "firmware model '" + name + "' not found; looked for " + looked);
}

}  // namespace tpmlab
