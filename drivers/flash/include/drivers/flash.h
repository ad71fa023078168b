// Platform firmware flash chips through the `flashrom` program (Debian
// package flashrom): probe the chip, read it, write an image and verify it,
// with an external SPI programmer (ft2232_spi, ch341a_spi, linux_spi, ...) or
// flashrom's dummy programmer, which emulates a chip in a file. Moves bytes;
// knows nothing of what the image measures.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "drivers/status.h"

namespace tpmlab {

struct FlashConfig {
  std::string binary = "flashrom";
  std::string programmer;             // flashrom -p: "ch341a_spi", "dummy:emulate=SST25VF032B,image=F"
  std::string chip;                   // -c NAME, when several chip definitions match ("" = flashrom's pick)
  std::optional<uint64_t> size;       // the chip size the bench expects; checked against the probe
  std::filesystem::path layout;       // --layout FILE (with region)
  bool ifd = false;                   // --ifd: the layout from the Intel flash descriptor (with region)
  std::string region;                 // --image REGION: only this region is read, written, verified
  std::filesystem::path work_dir;     // flashrom's logs go here
  // Real SPI programmers take minutes for a 16 MiB chip; a dummy chip ~2 s.
  std::chrono::milliseconds timeout{std::chrono::minutes(30)};
};

// What flashrom found at the programmer.
struct FlashChip {
  std::string vendor;      // "SST"
  std::string name;        // "SST25VF032B"
  uint64_t size = 0;       // bytes
  std::string bus;         // "SPI"
  std::string programmer;  // the programmer flashrom named ("dummy")
};

/// A flash chip reached with flashrom. Each call runs flashrom once (argv,
/// no shell), logs its output to work_dir/flashrom-N-OP.log, and turns a
/// failure into an error naming the programmer and quoting flashrom's key lines.
class FlashProgrammer final {
 public:
  /// @returns kind missing_package naming flashrom when it is not installed;
  ///          bad_input when the programmer is empty or work_dir cannot be made.
  static Result<FlashProgrammer> Open(FlashConfig config);

  /// Identifies the chip (`flashrom -p PROG`).
  /// @returns the chip; an error quoting flashrom when none or several answer,
  ///          or when its size is not the one configured.
  Result<FlashChip> Probe();
  /// The chip's size: configured, known from the dummy chip's name, or probed.
  Result<uint64_t> ChipSize();
  /// Reads the whole chip (or the region; the file is then chip-sized, with
  /// only the region read) into `out`.
  Status Read(const std::filesystem::path& out);
  /// Writes `image` (chip-sized, also with a region) and lets flashrom verify
  /// it. Refused before flashrom runs when the image is missing or its size is
  /// not the chip's. A failed write or verify names the image and the
  /// programmer and quotes flashrom ("Good, writing to the flash chip
  /// apparently didn't do anything" / "Your flash chip is in an unknown state").
  Status Write(const std::filesystem::path& image);
  /// Compares the chip (or the region) with `image` (`flashrom -v`).
  Status Verify(const std::filesystem::path& image);

  const FlashConfig& config() const { return config_; }
  /// "flashrom -p PROG [-c CHIP] [--image REGION]": what errors and records name.
  std::string Describe() const;
  /// The log of the last flashrom run ("" before any).
  const std::filesystem::path& last_log() const { return last_log_; }

 private:
  explicit FlashProgrammer(FlashConfig config) : config_(std::move(config)) {}
  // Runs flashrom with the programmer options and `op_args`; its exit code.
  Result<int> Run(const std::string& op, const std::vector<std::string>& op_args);
  std::vector<std::string> RegionArgs() const;
  // A dummy chip whose image= file has the wrong size starts erased: refused.
  Status CheckDummyImage() const;
  Status CheckImage(const std::filesystem::path& image, const std::string& doing);
  Status Failed(const std::string& what, int exit_code) const;

  FlashConfig config_;
  std::optional<uint64_t> known_size_;
  std::filesystem::path last_log_;
  int runs_ = 0;
};

/// flashrom's dummy programmer ("dummy" or "dummy:...").
bool IsDummyProgrammer(const std::string& programmer);
/// One parameter of a programmer string: "image" of "dummy:emulate=X,image=F" is "F".
std::optional<std::string> ProgrammerParam(const std::string& programmer, const std::string& key);
/// The programmer string with `key` set to `value` (added when absent).
std::string WithProgrammerParam(const std::string& programmer, const std::string& key, const std::string& value);
/// The size of the chip the dummy programmer emulates (emulate=NAME, or
/// VARIABLE_SIZE with size=); nullopt when not a dummy chip or not known.
std::optional<uint64_t> DummyChipSize(const std::string& programmer);
/// Parses flashrom's "Found VENDOR flash chip "NAME" (N kB, BUS) on PROG." lines.
std::vector<FlashChip> ParseFoundChips(const std::string& output);
/// The lines of flashrom's output that say why it failed (at most `max`).
std::vector<std::string> FlashromKeyLines(const std::string& output, size_t max = 6);

}  // namespace tpmlab
