// A bench's `flash:` section: the platform firmware flash chip of the board
// or machine around the TPM, written with flashrom (drivers/flash.h) through
// the bench's programmer. Scenarios name images (`firmware: NAME`,
// `firmware_update: {platform: NAME}`); the bench maps names to files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "drivers/status.h"
#include "harness/yaml_reader.h"

namespace tpmlab {

struct Bench;

// One image the chip can be flashed with: a file, or files laid end to end
// (OVMF's variable store, then its code: a whole 4 MiB chip).
struct FlashImage {
  std::string name;
  std::vector<std::filesystem::path> parts;
  bool smm = false;  // a QEMU board: a Secure Boot OVMF build, booted with SMM
  SourceLocation where;
};

struct BenchFlash {
  std::string flashrom = "flashrom";
  std::string programmer;           // flashrom -p; a dummy chip's image= made absolute
  std::string chip;                 // -c NAME ("" = flashrom's pick)
  std::optional<uint64_t> size;     // the chip size the bench expects (checked)
  std::optional<std::filesystem::path> layout;  // with region: --layout FILE
  bool ifd = false;                 // with region: the Intel flash descriptor's layout
  std::string region;               // --image REGION
  bool in_place = false;            // QEMU board: boot and flash the bench's own chip file, not a run copy
  uint32_t timeout_s = 1800;        // one flashrom run (a real programmer takes minutes)
  std::vector<FlashImage> images;
  std::string default_image;        // flashed before a board's first boot when the scenario names none
  bool allowed = false;             // allow.flash, or a dummy chip (a file)
  SourceLocation where;

  const FlashImage* Image(const std::string& name) const;
  std::string ImageNames() const;
  /// flashrom's dummy programmer: an emulated chip in a file.
  bool dummy() const;
  /// The dummy chip's file (its image= parameter), if any.
  std::optional<std::filesystem::path> chip_file() const;
};

/// Parses a bench's `flash:` mapping; relative paths (images, layout, the
/// dummy chip's image=) are taken from the bench file's folder.
/// @param allow_flash the bench's allow.flash when written in the file.
Result<BenchFlash> ParseBenchFlash(const YamlReader& reader, const YAML::Node& node, std::optional<bool> allow_flash);

/// The flash section against the rest of the bench (`root` is the file's
/// top mapping): a QEMU board's chip is a dummy chip's file and replaces
/// board.firmware; an emulated DUT has no flash chip.
Status CheckBenchFlash(const YamlReader& reader, const YAML::Node& root, const Bench& bench);

/// What a flash section needs on this machine, as `bench check` lines. Only
/// files and programs are looked at: a probe through a real programmer
/// would disturb a running machine.
struct FlashProbe {
  std::string part;
  bool present = false;
  std::string detail;
};
std::vector<FlashProbe> ProbeFlash(const BenchFlash& flash);

}  // namespace tpmlab
