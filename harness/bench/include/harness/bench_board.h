// A bench's `board:` section: a whole virtual board (QEMU + OVMF) around an
// emulated chip, reached through tpmlab-agent on its Linux. What the images
// are called is the bench's business; scenarios name them (`firmware: NAME`,
// `firmware_update: {platform: NAME}`) as they name firmware models.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "drivers/status.h"
#include "harness/yaml_reader.h"

namespace tpmlab {

// One platform firmware build the board can boot: the code flash and the
// variable store it starts from (which keys are enrolled, so whether Secure
// Boot is on). Secure Boot builds of OVMF keep their variables in SMM.
struct BoardImage {
  std::string name;
  std::filesystem::path code;
  std::filesystem::path vars;
  bool smm = false;
  SourceLocation where;
};

struct BenchBoard {
  std::string qemu = "qemu-system-x86_64";
  std::string machine = "q35";
  std::string tpm_interface = "tpm-tis";  // or tpm-crb
  uint32_t memory_mb = 512;
  std::string accel = "auto";             // kvm | tcg | auto (kvm when it works)
  std::string kernel = "auto";            // a path, or the newest /boot/vmlinuz-*-cloud-amd64
  std::string cmdline;                    // added to tpmlab's own
  uint32_t boot_timeout_s = 300;          // power on to the agent's hello
  std::vector<BoardImage> images;
  std::string default_image;              // booted when the scenario names no firmware
  // Secure Boot images only boot a kernel signed with a key their db holds:
  // the kernel gets this signature added (Debian's snakeoil test key).
  std::optional<std::filesystem::path> sign_key, sign_cert;
  std::string sign_key_password;
  SourceLocation where;

  const BoardImage* Image(const std::string& name) const;
  std::string ImageNames() const;  // "baseline, firmware-blob"
};

/// Parses a bench's `board:` mapping; relative paths are taken from the bench file's folder.
Result<BenchBoard> ParseBenchBoard(const YamlReader& reader, const YAML::Node& node);

/// The kernel a board boots: the bench's path, or for "auto" the newest
/// /boot/vmlinuz-*-cloud-amd64 (then any /boot/vmlinuz-*).
/// @returns kind missing_package naming linux-image-cloud-amd64 when there is none.
Result<std::filesystem::path> BoardKernel(const BenchBoard& board);

// What a board bench needs on this machine, as `bench check` lines:
// {part, present, detail}.
struct BoardProbe {
  std::string part;
  bool present = false;
  std::string detail;
};
std::vector<BoardProbe> ProbeBoard(const BenchBoard& board);

}  // namespace tpmlab
