// Writing a platform's firmware chip with the bench's flashrom programmer
// (bench `flash:`): the harness step a QEMU board uses for its dummy chip and
// a real machine for its SPI flash. The caller powers the platform off
// before and on after; this only writes, verifies and keeps what was there.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "drivers/status.h"
#include "harness/bench.h"

namespace tpmlab {

// One image written, as run.json records it.
struct FlashRecord {
  std::string image;                      // the bench's name for it
  std::string programmer;                 // flashrom -p ... as run
  std::string region;                     // "" = the whole chip
  std::string chip;                       // what flashrom found ("SST SST25VF032B, 4096 KiB, SPI")
  uint64_t size = 0;                      // bytes
  std::vector<std::string> image_files;   // the bench's files, laid end to end
  std::string image_sha256;
  std::string before_file;                // the chip's previous contents, relative to the run folder
  std::string before_sha256;
  bool unchanged = false;                 // the chip already held this image
  std::chrono::milliseconds read_time{0}, write_time{0};  // write_time includes flashrom's verify
  nlohmann::json ToJson() const;
};

struct FlashOptions {
  // flashrom -p for this write; "" = the bench's. A QEMU board passes its
  // run's copy of the dummy chip.
  std::string programmer;
};

/// Writes the bench's flash image `image_name` with its programmer and has
/// flashrom verify it. Before writing it reads the chip back into
/// run_dir/firmware/flash-N-before.bin (N counts this run's flashes).
/// @returns the record; kScenario when the bench has no flash section, no
///          image of that name, or (a real chip) no allow.flash; bad_input
///          when an image file is missing or not the chip's size (before
///          flashrom writes anything); a transport error naming the image and
///          the programmer and quoting flashrom when reading, writing or
///          verifying fails; missing_package without flashrom.
Result<FlashRecord> FlashPlatformFirmware(const Bench& bench, const std::string& image_name,
                                          const std::filesystem::path& run_dir, const FlashOptions& options = {});

/// The image as one file: its only part, or its parts laid end to end in
/// `dir` (image-NAME.bin).
Result<std::filesystem::path> FlashImageFile(const FlashImage& image, const std::filesystem::path& dir);

/// SHA-256 of a file, in lowercase hex.
Result<std::string> FileSha256(const std::filesystem::path& file);

}  // namespace tpmlab
