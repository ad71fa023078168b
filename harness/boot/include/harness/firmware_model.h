// A platform firmware described as data: what an emulated DUT's firmware
// measures at every cold boot. Every "content" string stands for the bytes
// the real firmware would hash (a firmware volume, a PE image, a certificate):
// its digest is H(content), so changing the text changes the measurement.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "drivers/status.h"
#include "harness/eventlog.h"

namespace tpmlab {

struct FirmwareBlob {
  std::string description;  // "DXE firmware volume"
  std::string content;
  uint64_t base = 0;
  uint64_t length = 0;
};

struct OptionRom {
  std::string name;
  std::string content;
  bool embedded = false;  // in the firmware image (PCR0) or on a card (PCR2)
};

struct SecureBoot {
  bool enabled = true;
  std::string pk;
  std::vector<std::string> kek, db, dbx;  // one entry per certificate or hash
};

struct BootEntry {
  uint16_t number = 0;
  std::string description;
  std::string path;  // the file path its device path ends in
};

struct GptPartition {
  std::string name;
  std::string type_guid;
  uint64_t first_lba = 0;
  uint64_t last_lba = 0;
};

struct BootLoader {
  std::string kind = "shim-grub";  // or "systemd-boot"
  std::string shim;
  std::string grub;
  std::vector<std::string> grub_commands;
  std::string systemd_boot;
};

struct Kernel {
  std::string image;
  std::string initrd;
  std::string cmdline;
};

// Measured by the OS after boot, on higher PCRs (as ESXi logs boot modules
// on PCRs 11 and 13).
struct OsMeasurement {
  int pcr = 0;
  std::string name;
  std::string content;
};

// A model name resolved to a file, as a run recorded it: a bundle replays
// the same names to its own copies of the same files.
struct ModelReference {
  std::string named_in;  // the file that names it (a scenario or a model)
  std::string name;      // as written: "baseline", "../m.yaml", "/abs/m.yaml"
  std::string file;      // the file it resolved to
};

struct FirmwareModel {
  std::string name;
  std::string description;
  std::string file;  // where it was loaded from
  std::vector<std::string> sources;  // every file read for it, inherited ones first
  std::vector<ModelReference> references;  // every `inherits` resolved for it
  std::string s_crtm_version;
  std::vector<FirmwareBlob> firmware_blobs;
  std::vector<OptionRom> option_roms;
  std::vector<std::string> platform_config;
  SecureBoot secure_boot;
  std::vector<uint16_t> boot_order;
  std::vector<BootEntry> boot_entries;
  std::string disk_guid;
  std::vector<GptPartition> gpt;
  BootLoader boot_loader;
  Kernel kernel;
  std::vector<OsMeasurement> os_measurements;
  // Platform options the model brings; a scenario may override them.
  std::optional<std::vector<std::string>> banks;
  std::optional<uint8_t> startup_locality;
  std::optional<std::string> hcrtm;
  // A recorded firmware (`recorded: LOG`, or a binary event log loaded as a
  // model): the log a real machine wrote, replayed as it stands instead of
  // the measurements above. `recorded` is the log file.
  std::string recorded;
  std::shared_ptr<const EventLog> recorded_log;
};

/// Turns a model name, as written in `named_in`, into the file to load.
/// Empty: ResolveFirmwareModel (the search path). A replay gives one that
/// looks only inside its bundle.
using ModelResolver =
    std::function<Result<std::filesystem::path>(const std::string& name, const std::filesystem::path& named_in)>;

/// Loads a model: a YAML file, or a binary event log (a TCG log such as
/// binary_bios_measurements: no YAML starts with a NUL byte), which is a
/// recorded model named after the file. `inherits: NAME` starts from the model NAME resolves to
/// (resolved like a scenario's `firmware`, from this file's folder) and
/// replaces each top-level key the file gives. Errors name file:line:column.
Result<FirmwareModel> LoadFirmwareModel(const std::filesystem::path& file, const ModelResolver& resolve = {});

/// Where models installed with tpmlab live, those that exist: `firmware/`
/// beside the binary that holds this code (the Python package's copy, or one
/// beside the tpmlab executable), `../share/tpmlab/firmware` from there (an
/// installed tpmlab), then the scenarios/firmware of a source tree: the one
/// $TPMLAB_SOURCE_DIR names, else the nearest above the binary (a build
/// folder inside the source tree).
std::vector<std::filesystem::path> InstalledFirmwareDirs();

/// The files a model name may be, in the order they are tried. A name with a
/// '/' or ending in .yaml is a path, used as is (relative to `base_dir`,
/// the folder of the file naming it). A bare NAME is
/// `base_dir/firmware/NAME.yaml`, `base_dir/NAME.yaml`, then `NAME.yaml`
/// in each of InstalledFirmwareDirs().
std::vector<std::filesystem::path> FirmwareModelCandidates(const std::string& name_or_path,
                                                           const std::filesystem::path& base_dir);

/// The first of FirmwareModelCandidates that exists. The one search the CLI,
/// the runner and Python share. Not found: an error listing every place
/// looked.
Result<std::filesystem::path> ResolveFirmwareModel(const std::string& name_or_path,
                                                   const std::filesystem::path& base_dir);

}  // namespace tpmlab
