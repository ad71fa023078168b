// The `board:` section of a bench file and what it needs on this machine.
#include "harness/bench_board.h"

#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <system_error>

#include "drivers/process.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;

fs::path Resolve(const YamlReader& reader, const std::string& path) {
  fs::path p(path);
  if (p.is_relative()) p = fs::path(reader.file()).parent_path() / p;
  return p.lexically_normal();
}

Result<BoardImage> Image(const YamlReader& r, const std::string& name, const YAML::Node& n) {
  const std::string what = "board.firmware.images." + name;
  TRY(r.Keys(n, what, {"code", "vars", "smm"}));
  BoardImage image;
  image.name = name;
  image.where = r.Where(n);
  if (!n["code"] || !n["vars"]) return r.Error(n, what + " needs code and vars (OVMF flash images)");
  TRY_ASSIGN(std::string code, r.String(n["code"], what + ".code"));
  TRY_ASSIGN(std::string vars, r.String(n["vars"], what + ".vars"));
  image.code = Resolve(r, code);
  image.vars = Resolve(r, vars);
  if (n["smm"]) { TRY_ASSIGN(image.smm, r.Bool(n["smm"], what + ".smm")); }
  return image;
}

}  // namespace

const BoardImage* BenchBoard::Image(const std::string& name) const {
  for (const auto& i : images) {
    if (i.name == name) return &i;
  }
  return nullptr;
}

std::string BenchBoard::ImageNames() const {
  std::string names;
  for (const auto& i : images) names += (names.empty() ? "" : ", ") + i.name;
  return names;
}

Result<BenchBoard> ParseBenchBoard(const YamlReader& r, const YAML::Node& n) {
  TRY(r.Keys(n, "board", {"qemu", "machine", "tpm", "memory_mb", "accel", "kernel", "cmdline", "boot_timeout_s",
                          "firmware", "sign_kernel"}));
  BenchBoard b;
  b.where = r.Where(n);
  if (n["qemu"]) { TRY_ASSIGN(b.qemu, r.String(n["qemu"], "board.qemu")); }
  if (n["machine"]) { TRY_ASSIGN(b.machine, r.String(n["machine"], "board.machine")); }
  if (n["tpm"]) {
    TRY_ASSIGN(b.tpm_interface, r.String(n["tpm"], "board.tpm"));
    if (b.tpm_interface != "tpm-tis" && b.tpm_interface != "tpm-crb") {
      return r.Error(n["tpm"], "board.tpm must be tpm-tis or tpm-crb, not '" + b.tpm_interface + "'");
    }
  }
  if (n["memory_mb"]) {
    TRY_ASSIGN(uint64_t mb, r.Unsigned(n["memory_mb"], "board.memory_mb"));
    if (mb < 128 || mb > 65536) return r.Error(n["memory_mb"], "board.memory_mb must be 128..65536");
    b.memory_mb = static_cast<uint32_t>(mb);
  }
  if (n["accel"]) {
    TRY_ASSIGN(b.accel, r.String(n["accel"], "board.accel"));
    if (b.accel != "auto" && b.accel != "kvm" && b.accel != "tcg") {
      return r.Error(n["accel"], "board.accel must be auto, kvm or tcg, not '" + b.accel + "'");
    }
  }
  if (n["kernel"]) {
    TRY_ASSIGN(b.kernel, r.String(n["kernel"], "board.kernel"));
    if (b.kernel != "auto") b.kernel = Resolve(r, b.kernel).string();
  }
  if (n["cmdline"]) { TRY_ASSIGN(b.cmdline, r.String(n["cmdline"], "board.cmdline")); }
  if (n["boot_timeout_s"]) {
    TRY_ASSIGN(uint64_t s, r.Unsigned(n["boot_timeout_s"], "board.boot_timeout_s"));
    if (s < 1 || s > 3600) return r.Error(n["boot_timeout_s"], "board.boot_timeout_s must be 1..3600");
    b.boot_timeout_s = static_cast<uint32_t>(s);
  }
  if (const YAML::Node sk = n["sign_kernel"]) {
    TRY(r.Keys(sk, "board.sign_kernel", {"key", "cert", "password"}));
    if (!sk["key"] || !sk["cert"]) return r.Error(sk, "board.sign_kernel needs key and cert (PEM files)");
    TRY_ASSIGN(std::string key, r.String(sk["key"], "board.sign_kernel.key"));
    TRY_ASSIGN(std::string cert, r.String(sk["cert"], "board.sign_kernel.cert"));
    b.sign_key = Resolve(r, key);
    b.sign_cert = Resolve(r, cert);
    if (sk["password"]) { TRY_ASSIGN(b.sign_key_password, r.String(sk["password"], "board.sign_kernel.password")); }
  }
  const YAML::Node fw = n["firmware"];
  if (!fw) return b;  // the bench's flash: chip, else an error (CheckBenchFlash)
  TRY(r.Keys(fw, "board.firmware", {"default", "images"}));
  if (!fw["images"] || !fw["images"].IsMap() || fw["images"].size() == 0) {
    return r.Error(fw, "board.firmware needs images: {NAME: {code: FILE, vars: FILE, smm: BOOL}}");
  }
  for (const auto& kv : fw["images"]) {
    TRY_ASSIGN(std::string name, r.String(kv.first, "board.firmware.images key"));
    TRY_ASSIGN(BoardImage image, Image(r, name, kv.second));
    b.images.push_back(std::move(image));
  }
  if (fw["default"]) {
    TRY_ASSIGN(b.default_image, r.String(fw["default"], "board.firmware.default"));
    if (!b.Image(b.default_image)) {
      return r.Error(fw["default"], "board.firmware.default names no image: '" + b.default_image + "' (images: " +
                                        b.ImageNames() + ")");
    }
  } else {
    b.default_image = b.images.front().name;
  }
  return b;
}

Result<fs::path> BoardKernel(const BenchBoard& board) {
  if (board.kernel != "auto") {
    std::error_code ec;
    if (!fs::is_regular_file(board.kernel, ec)) {
      return Status::Error(Layer::kScenario, "board.kernel: no such file: " + board.kernel)
          .WithKind(ErrorKind::kBadInput);
    }
    return fs::path(board.kernel);
  }
  std::vector<fs::path> cloud, any;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/boot", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("vmlinuz-", 0) != 0) continue;
    (name.find("-cloud-") != std::string::npos ? cloud : any).push_back(e.path());
  }
  auto& pick = cloud.empty() ? any : cloud;
  if (pick.empty()) {
    return Status::Error(Layer::kHarness, "no kernel for the board in /boot: install the Debian package "
                                          "linux-image-cloud-amd64 (apt-get install linux-image-cloud-amd64)")
        .WithKind(ErrorKind::kMissingPackage);
  }
  // Version order, so 6.1.0-10 comes after 6.1.0-9.
  std::sort(pick.begin(), pick.end(), [](const fs::path& a, const fs::path& b) {
    return ::strverscmp(a.filename().c_str(), b.filename().c_str()) < 0;
  });
  return pick.back();
}

std::vector<BoardProbe> ProbeBoard(const BenchBoard& board) {
  std::vector<BoardProbe> items;
  auto program = [&](const std::string& part, const std::string& name, const std::string& package) {
    if (auto found = FindProgram(name)) {
      items.push_back({part, true, found->string()});
    } else {
      items.push_back({part, false, name + " not found: install the Debian package " + package});
    }
  };
  program("board.qemu", board.qemu, "qemu-system-x86");
  for (const auto& image : board.images) {
    for (const fs::path& file : {image.code, image.vars}) {
      const bool ok = ::access(file.c_str(), R_OK) == 0;
      items.push_back({"board.firmware." + image.name, ok,
                       ok ? file.string() : file.string() + " is not readable (Debian package ovmf)"});
    }
  }
  auto kernel = BoardKernel(board);
  items.push_back({"board.kernel", kernel.ok(), kernel.ok() ? kernel->string() : kernel.status().message()});
  if (board.sign_key) {
    program("board.sign_kernel", "sbsign", "sbsigntool");
    for (const fs::path& file : {*board.sign_key, *board.sign_cert}) {
      const bool ok = ::access(file.c_str(), R_OK) == 0;
      items.push_back({"board.sign_kernel", ok, ok ? file.string() : file.string() + " is not readable"});
    }
  }
  return items;
}

}  // namespace tpmlab
