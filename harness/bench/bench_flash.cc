// The `flash:` section of a bench file and what it needs on this machine.
#include "harness/bench_flash.h"

#include <unistd.h>

#include <system_error>

#include "drivers/flash.h"
#include "drivers/process.h"
#include "harness/bench.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;

fs::path Resolve(const YamlReader& reader, const std::string& path) {
  fs::path p(path);
  if (p.is_relative()) p = fs::path(reader.file()).parent_path() / p;
  return fs::absolute(p).lexically_normal();
}

Result<std::vector<fs::path>> Parts(const YamlReader& r, const YAML::Node& n, const std::string& what) {
  std::vector<fs::path> parts;
  if (n.IsSequence()) {
    if (n.size() == 0) return r.Error(n, what + " lists no files");
    for (const auto& item : n) {
      TRY_ASSIGN(std::string part, r.String(item, what + " (a file)"));
      parts.push_back(Resolve(r, part));
    }
    return parts;
  }
  TRY_ASSIGN(std::string file, r.String(n, what));
  parts.push_back(Resolve(r, file));
  return parts;
}

Result<FlashImage> Image(const YamlReader& r, const std::string& name, const YAML::Node& n) {
  const std::string what = "flash.images." + name;
  FlashImage image;
  image.name = name;
  image.where = r.Where(n);
  if (n.IsMap()) {
    TRY(r.Keys(n, what, {"file", "smm"}));
    if (!n["file"]) return r.Error(n, what + " needs file: FILE (or a list of files laid end to end)");
    TRY_ASSIGN(image.parts, Parts(r, n["file"], what + ".file"));
    if (n["smm"]) { TRY_ASSIGN(image.smm, r.Bool(n["smm"], what + ".smm")); }
    return image;
  }
  TRY_ASSIGN(image.parts, Parts(r, n, what));
  return image;
}

}  // namespace

const FlashImage* BenchFlash::Image(const std::string& name) const {
  for (const auto& i : images) {
    if (i.name == name) return &i;
  }
  return nullptr;
}

std::string BenchFlash::ImageNames() const {
  std::string names;
  for (const auto& i : images) names += (names.empty() ? "" : ", ") + i.name;
  return names;
}

bool BenchFlash::dummy() const { return IsDummyProgrammer(programmer); }

std::optional<fs::path> BenchFlash::chip_file() const {
  if (!dummy()) return std::nullopt;
  auto image = ProgrammerParam(programmer, "image");
  if (!image || image->empty()) return std::nullopt;
  return fs::path(*image);
}

Result<BenchFlash> ParseBenchFlash(const YamlReader& r, const YAML::Node& n, std::optional<bool> allow_flash) {
  TRY(r.Keys(n, "flash", {"programmer", "chip", "size", "layout", "ifd", "region", "in_place", "timeout_s",
                          "images", "default", "flashrom"}));
  BenchFlash f;
  f.where = r.Where(n);
  if (!n["programmer"]) {
    return r.Error(n, "flash needs a programmer (flashrom -p: ch341a_spi, ft2232_spi:type=232H, "
                      "linux_spi:dev=/dev/spidev0.0, dummy:emulate=SST25VF032B,image=FILE)");
  }
  TRY_ASSIGN(f.programmer, r.String(n["programmer"], "flash.programmer"));
  if (f.programmer.empty() || f.programmer.find_first_of(" \t\n") != std::string::npos) {
    return r.Error(n["programmer"], "flash.programmer is one flashrom -p argument (NAME:key=value,...), without spaces");
  }
  if (f.programmer == "internal" || f.programmer.rfind("internal:", 0) == 0) {
    return r.Error(n["programmer"], "flash.programmer internal would rewrite the firmware of the machine tpmlab runs "
                                    "on: use an external programmer on the DUT's chip");
  }
  if (f.dummy()) {
    // flashrom reads image= from its own working folder; the bench's is meant.
    if (auto image = ProgrammerParam(f.programmer, "image"); image && !image->empty()) {
      f.programmer = WithProgrammerParam(f.programmer, "image", Resolve(r, *image).string());
    }
  }
  if (n["flashrom"]) { TRY_ASSIGN(f.flashrom, r.String(n["flashrom"], "flash.flashrom")); }
  if (n["chip"]) { TRY_ASSIGN(f.chip, r.String(n["chip"], "flash.chip")); }
  if (n["size"]) {
    TRY_ASSIGN(uint64_t size, r.Unsigned(n["size"], "flash.size"));
    if (size == 0) return r.Error(n["size"], "flash.size is the chip's size in bytes (4194304 for 4 MiB)");
    f.size = size;
    if (auto emulated = DummyChipSize(f.programmer); emulated && *emulated != size) {
      return r.Error(n["size"], "flash.size is " + std::to_string(size) + ", but the dummy chip " +
                                    *ProgrammerParam(f.programmer, "emulate") + " holds " + std::to_string(*emulated) +
                                    " bytes");
    }
  }
  if (n["layout"]) {
    TRY_ASSIGN(std::string layout, r.String(n["layout"], "flash.layout"));
    f.layout = Resolve(r, layout);
  }
  if (n["ifd"]) { TRY_ASSIGN(f.ifd, r.Bool(n["ifd"], "flash.ifd")); }
  if (f.layout && f.ifd) return r.Error(n["ifd"], "flash takes layout: FILE or ifd: true, not both");
  if (n["region"]) {
    TRY_ASSIGN(f.region, r.String(n["region"], "flash.region"));
    if (!f.layout && !f.ifd) return r.Error(n["region"], "flash.region needs layout: FILE or ifd: true to find it in");
  } else if (f.layout || f.ifd) {
    return r.Error(f.layout ? n["layout"] : n["ifd"], "flash.layout and flash.ifd go with region: NAME (the part to write)");
  }
  if (n["in_place"]) { TRY_ASSIGN(f.in_place, r.Bool(n["in_place"], "flash.in_place")); }
  if (n["timeout_s"]) {
    TRY_ASSIGN(uint64_t s, r.Unsigned(n["timeout_s"], "flash.timeout_s"));
    if (s < 1 || s > 24 * 3600) return r.Error(n["timeout_s"], "flash.timeout_s must be 1..86400");
    f.timeout_s = static_cast<uint32_t>(s);
  }
  const YAML::Node images = n["images"];
  if (!images || !images.IsMap() || images.size() == 0) {
    return r.Error(images ? images : n, "flash needs images: {NAME: FILE} (the names scenarios give firmware_update: {platform: NAME})");
  }
  for (const auto& kv : images) {
    TRY_ASSIGN(std::string name, r.String(kv.first, "flash.images key"));
    if (name.empty() || name.find_first_of("/ \t") != std::string::npos) {
      return r.Error(kv.first, "flash.images names are words (no '/' or spaces), not '" + name + "'");
    }
    TRY_ASSIGN(FlashImage image, Image(r, name, kv.second));
    f.images.push_back(std::move(image));
  }
  if (n["default"]) {
    TRY_ASSIGN(f.default_image, r.String(n["default"], "flash.default"));
    if (!f.Image(f.default_image)) {
      return r.Error(n["default"], "flash.default names no image: '" + f.default_image + "' (images: " + f.ImageNames() + ")");
    }
  } else {
    f.default_image = f.images.front().name;
  }
  // A dummy chip is a file; a real chip is a machine's firmware, and a bad
  // image bricks it: only with allow.flash written in the bench file.
  f.allowed = allow_flash.value_or(f.dummy());
  return f;
}

Status CheckBenchFlash(const YamlReader& r, const YAML::Node& root, const Bench& b) {
  const YAML::Node node = root["flash"];
  if (b.is_board() && b.board->images.empty() && !b.flash) {
    return r.Error(root["board"], "board needs firmware: {default: NAME, images: {NAME: {code: FILE, vars: FILE}}}, "
                                  "or the bench a flash: chip it boots");
  }
  if (!b.flash) return Status::Ok();
  if (b.emulated()) {
    return r.Error(node, "flash: writes a platform's firmware chip; an emulated DUT's platform is a firmware model "
                         "(firmware_control)");
  }
  if (b.is_board()) {
    if (!b.flash->chip_file()) {
      return r.Error(node["programmer"], "a QEMU board boots its flash chip from a file: flash.programmer must be "
                                         "dummy:emulate=CHIP,image=FILE");
    }
    if (!DummyChipSize(b.flash->programmer)) {
      return r.Error(node["programmer"], "flash.programmer: the dummy chip's size is not known (emulate= one of "
                                         "M25P10.RES, SST25VF040.REMS, SST25VF032B, MX25L6436, W25Q128FV, S25FL128L, "
                                         "or VARIABLE_SIZE with size=)");
    }
    if (!b.board->images.empty()) {
      return r.Error(root["board"]["firmware"], "a board with a flash: chip boots what is flashed: name its images "
                                                "under flash.images, not board.firmware");
    }
  } else if (b.flash->in_place) {
    return r.Error(node["in_place"], "flash.in_place is for a QEMU board's chip file");
  }
  return Status::Ok();
}

std::vector<FlashProbe> ProbeFlash(const BenchFlash& flash) {
  std::vector<FlashProbe> items;
  if (auto found = FindProgram(flash.flashrom)) {
    items.push_back({"flash", true, found->string() + " -p " + flash.programmer});
  } else {
    items.push_back({"flash", false, flash.flashrom + " not found: install the Debian package flashrom"});
  }
  const auto chip_size = flash.size ? flash.size : DummyChipSize(flash.programmer);
  if (auto file = flash.chip_file()) {
    std::error_code ec;
    if (!fs::exists(*file, ec)) {
      items.push_back({"flash.chip", true, file->string() + " (absent: the chip starts erased)"});
    } else if (chip_size && fs::file_size(*file, ec) != *chip_size) {
      items.push_back({"flash.chip", false, file->string() + " is " + std::to_string(fs::file_size(*file, ec)) +
                                                " bytes, the chip " + std::to_string(*chip_size) +
                                                ": flashrom would ignore it and start an erased chip"});
    } else {
      items.push_back({"flash.chip", true, file->string()});
    }
  }
  for (const auto& image : flash.images) {
    uint64_t total = 0;
    std::string bad;
    for (const fs::path& part : image.parts) {
      std::error_code ec;
      if (::access(part.c_str(), R_OK) != 0) {
        bad = part.string() + " is not readable";
        break;
      }
      total += fs::file_size(part, ec);
    }
    if (bad.empty() && chip_size && total != *chip_size) {
      bad = "the image is " + std::to_string(total) + " bytes, the chip " + std::to_string(*chip_size);
    }
    items.push_back({"flash.images." + image.name, bad.empty(),
                     bad.empty() ? std::to_string(total) + " bytes from " + std::to_string(image.parts.size()) + " file(s)" : bad});
  }
  if (flash.layout) {
    const bool ok = ::access(flash.layout->c_str(), R_OK) == 0;
    items.push_back({"flash.layout", ok, flash.layout->string() + (ok ? "" : " is not readable")});
  }
  return items;
}

}  // namespace tpmlab
