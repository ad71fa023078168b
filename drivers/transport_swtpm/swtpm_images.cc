// Emulator state copies (checkpoints, bundles) and derived firmware images.
#include <fstream>
#include <iterator>

#include "drivers/swtpm.h"

namespace tpmlab {

namespace fs = std::filesystem;

namespace {

bool IsStateFile(const fs::path& p) { return p.filename().string().rfind("tpm2-", 0) == 0; }

// Where the system's libtpms is: the folders Debian and others install to.
std::optional<fs::path> FindLibtpms() {
  std::vector<fs::path> dirs = {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64",
                                "/usr/lib", "/usr/local/lib"};
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib", ec)) {
    if (entry.is_directory(ec) && entry.path().filename().string().find("-linux-") != std::string::npos) {
      dirs.push_back(entry.path());
    }
  }
  for (const auto& dir : dirs) {
    const fs::path lib = dir / "libtpms.so.0";
    if (fs::exists(lib, ec)) return fs::canonical(lib, ec);
  }
  return std::nullopt;
}

void PutLe32(std::string& bytes, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) bytes[at + static_cast<size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

uint32_t GetLe32(const std::string& bytes, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(bytes[at + static_cast<size_t>(i)]);
  return v;
}

}  // namespace

Status CopySwtpmState(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  if (!fs::exists(from / "tpm2-00.permall", ec)) {
    return Status::Error(Layer::kEmulator, from.string() + ": no emulator state (tpm2-00.permall) to copy");
  }
  fs::create_directories(to, ec);
  for (const auto& entry : fs::directory_iterator(to, ec)) {
    if (IsStateFile(entry.path())) fs::remove(entry.path(), ec);
  }
  for (const auto& entry : fs::directory_iterator(from, ec)) {
    if (!IsStateFile(entry.path()) || !entry.is_regular_file()) continue;
    fs::copy_file(entry.path(), to / entry.path().filename(), fs::copy_options::overwrite_existing, ec);
    if (ec) {
      return Status::Error(Layer::kEmulator, "cannot copy " + entry.path().string() + " to " + to.string() +
                                                 ": " + ec.message());
    }
  }
  return Status::Ok();
}

Result<fs::path> DeriveLibtpmsImage(const fs::path& out_dir, uint64_t current_version,
                                    uint64_t firmware_version) {
  auto lib = FindLibtpms();
  if (!lib) return Status::Error(Layer::kEnvironment, "libtpms.so.0 not found (apt-get install libtpms0)");
  std::ifstream in(*lib, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 16) return Status::Error(Layer::kEnvironment, "cannot read " + lib->string());

  // The version is two 32-bit constants (FIRMWARE_V1, FIRMWARE_V2). They are
  // patched only where they sit close together — a table entry, the code
  // that loads them — so an equal word elsewhere is left alone.
  const uint32_t old_v1 = static_cast<uint32_t>(current_version >> 32);
  const uint32_t old_v2 = static_cast<uint32_t>(current_version);
  int patched = 0;
  for (size_t at = 0; at + 4 <= bytes.size(); ++at) {
    if (GetLe32(bytes, at) != old_v1) continue;
    for (size_t gap = 4; gap <= 16 && at + gap + 4 <= bytes.size(); gap += 4) {
      if (GetLe32(bytes, at + gap) != old_v2) continue;
      PutLe32(bytes, at, static_cast<uint32_t>(firmware_version >> 32));
      PutLe32(bytes, at + gap, static_cast<uint32_t>(firmware_version));
      ++patched;
      break;
    }
  }
  if (patched == 0) {
    return Status::Error(Layer::kEnvironment, lib->string() + ": the firmware version constants of " +
                                                  std::to_string(current_version) +
                                                  " were not found; cannot derive an image");
  }
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  const fs::path out = out_dir / "libtpms.so.0";
  std::ofstream(out, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!fs::exists(out, ec)) return Status::Error(Layer::kEnvironment, "cannot write " + out.string());
  return out_dir;
}

Status WriteSwtpmFirmwareVersion(const fs::path& state_dir, uint64_t current_version, uint64_t firmware_version) {
  const fs::path file = state_dir / "tpm2-00.permall";
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  // libtpms keeps FIRMWARE_V1 and FIRMWARE_V2 side by side, big-endian, in
  // its persistent data; the pair must be there exactly once.
  std::string from(8, '\0'), to(8, '\0');
  for (int i = 0; i < 8; ++i) {
    from[static_cast<size_t>(i)] = static_cast<char>((current_version >> (56 - 8 * i)) & 0xFF);
    to[static_cast<size_t>(i)] = static_cast<char>((firmware_version >> (56 - 8 * i)) & 0xFF);
  }
  const size_t at = bytes.find(from);
  if (at == std::string::npos || bytes.find(from, at + 1) != std::string::npos) {
    return Status::Error(Layer::kEmulator, file.string() + ": the firmware version is not found exactly once "
                                                           "in the TPM's persistent data");
  }
  bytes.replace(at, 8, to);
  const fs::path tmp = file.string() + ".tmp";
  std::ofstream(tmp, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec) return Status::Error(Layer::kEmulator, "cannot write " + file.string() + ": " + ec.message());
  return Status::Ok();
}

}  // namespace tpmlab
