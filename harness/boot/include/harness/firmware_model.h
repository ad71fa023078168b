// A platform firmware described as data: what an emulated DUT's firmware
// measures at every cold boot. Every "content" string stands for the bytes
// the real firmware would hash (a firmware volume, a PE image, a certificate):
// its digest is H(content), so changing the text changes the measurement.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "drivers/status.h"

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

struct FirmwareModel {
  std::string name;
  std::string description;
  std::string file;  // where it was loaded from
  std::vector<std::string> sources;  // every file read for it, inherited ones first
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
};

/// Loads a model. `inherits: NAME` starts from NAME.yaml in the same folder
/// and replaces each top-level key the file gives. Errors name file:line:column.
Result<FirmwareModel> LoadFirmwareModel(const std::filesystem::path& file);

/// Finds a model by name or path: a path (with '/' or ending in .yaml) is
/// taken relative to `base_dir`; a bare name is looked up as
/// `base_dir/firmware/NAME.yaml`, then `base_dir/NAME.yaml`.
Result<std::filesystem::path> ResolveFirmwareModel(const std::string& name_or_path,
                                                   const std::filesystem::path& base_dir);

}  // namespace tpmlab
