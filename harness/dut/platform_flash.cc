// Platform firmware written with flashrom: refuse what the bench does not
// allow, check the image before anything is written, keep what the chip held.
#include "harness/platform_flash.h"

#include <openssl/evp.h>

#include <fstream>
#include <memory>
#include <system_error>

#include "drivers/flash.h"

namespace tpmlab {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

namespace {

std::chrono::milliseconds Since(SteadyClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - t);
}

std::string Kib(uint64_t n) { return std::to_string(n / 1024) + " KiB"; }

// The next free flash-N-before.bin in `dir`.
fs::path NextBeforeFile(const fs::path& dir) {
  for (int n = 1;; ++n) {
    fs::path candidate = dir / ("flash-" + std::to_string(n) + "-before.bin");
    std::error_code ec;
    if (!fs::exists(candidate, ec)) return candidate;
  }
}

}  // namespace

nlohmann::json FlashRecord::ToJson() const {
  return {{"image", image},
          {"programmer", programmer},
          {"region", region},
          {"chip", chip},
          {"size", size},
          {"image_files", image_files},
          {"image_sha256", image_sha256},
          {"before_file", before_file},
          {"before_sha256", before_sha256},
          {"unchanged", unchanged},
          {"verified", true},
          {"read_ms", read_time.count()},
          {"write_verify_ms", write_time.count()}};
}

Result<std::string> FileSha256(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Status::Error(Layer::kHarness, "cannot read " + file.string());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return Status::Error(Layer::kHarness, "OpenSSL: SHA-256 unavailable");
  }
  std::vector<char> buffer(1 << 16);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<size_t>(in.gcount()));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &length);
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xF];
  }
  return hex;
}

Result<fs::path> FlashImageFile(const FlashImage& image, const fs::path& dir) {
  for (const fs::path& part : image.parts) {
    std::error_code ec;
    if (!fs::is_regular_file(part, ec)) {
      return Status::Error(Layer::kHarness, "flash image '" + image.name + "' (" + image.where.ToString() +
                                                "): no such file " + part.string())
          .WithKind(ErrorKind::kBadInput);
    }
  }
  if (image.parts.size() == 1) return image.parts.front();
  std::error_code ec;
  fs::create_directories(dir, ec);
  const fs::path out = dir / ("image-" + image.name + ".bin");
  std::ofstream file(out, std::ios::binary | std::ios::trunc);
  for (const fs::path& part : image.parts) {
    std::ifstream in(part, std::ios::binary);
    file << in.rdbuf();
  }
  file.close();
  if (!file) return Status::Error(Layer::kHarness, "cannot write " + out.string());
  return out;
}

Result<FlashRecord> FlashPlatformFirmware(const Bench& bench, const std::string& image_name, const fs::path& run_dir,
                                          const FlashOptions& options) {
  if (!bench.flash) {
    return Status::Error(Layer::kScenario, "bench '" + bench.name + "' (" + bench.file + ") has no flash: section");
  }
  const BenchFlash& flash = *bench.flash;
  TRY(CheckAllowed(bench, Operation::kFlash));
  const FlashImage* image = flash.Image(image_name);
  if (!image) {
    return Status::Error(Layer::kScenario, "bench '" + bench.name + "' has no flash image '" + image_name +
                                               "' (flash.images: " + flash.ImageNames() + ")");
  }
  const fs::path dir = fs::absolute(run_dir / "firmware");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::Error(Layer::kStore, "cannot create " + dir.string() + ": " + ec.message());
  TRY_ASSIGN(fs::path file, FlashImageFile(*image, dir));

  FlashConfig config;
  config.binary = flash.flashrom;
  config.programmer = options.programmer.empty() ? flash.programmer : options.programmer;
  config.chip = flash.chip;
  config.size = flash.size;
  if (flash.layout) config.layout = *flash.layout;
  config.ifd = flash.ifd;
  config.region = flash.region;
  config.work_dir = dir;
  config.timeout = std::chrono::seconds(flash.timeout_s);
  TRY_ASSIGN(FlashProgrammer programmer, FlashProgrammer::Open(config));

  FlashRecord record;
  record.image = image_name;
  record.programmer = config.programmer;
  record.region = flash.region;
  for (const auto& part : image->parts) record.image_files.push_back(part.string());
  // Which chip answers, and whether the image is its size, before anything is read or written.
  TRY_ASSIGN(FlashChip chip, programmer.Probe());
  record.chip = chip.vendor + " " + chip.name + ", " + Kib(chip.size) + ", " + chip.bus;
  record.size = chip.size;
  const uint64_t have = fs::file_size(file, ec);
  if (have != chip.size) {
    return Status::Error(Layer::kHarness, "flash image '" + image_name + "' (" + file.string() + ") is " +
                                              std::to_string(have) + " bytes, but the chip at " + config.programmer +
                                              " (" + record.chip + ") holds " + std::to_string(chip.size) +
                                              ": nothing was written")
        .WithKind(ErrorKind::kBadInput);
  }
  TRY_ASSIGN(record.image_sha256, FileSha256(file));

  const fs::path before = NextBeforeFile(dir);
  auto started = SteadyClock::now();
  TRY(programmer.Read(before).Wrap("keeping the chip's previous contents before writing '" + image_name + "'"));
  record.read_time = Since(started);
  record.before_file = fs::relative(before, fs::absolute(run_dir), ec).string();
  TRY_ASSIGN(record.before_sha256, FileSha256(before));
  record.unchanged = record.before_sha256 == record.image_sha256;

  started = SteadyClock::now();
  TRY(programmer.Write(file).Wrap("flash image '" + image_name + "'"));
  record.write_time = Since(started);
  return record;
}

}  // namespace tpmlab
