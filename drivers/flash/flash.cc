// flashrom run as a program: the options built from the config, its output
// read back for the chip it found and for why it failed.
#include "drivers/flash.h"

#include <fstream>
#include <regex>
#include <sstream>
#include <system_error>

#include "drivers/process.h"

namespace tpmlab {

namespace fs = std::filesystem;

namespace {

// The chips flashrom 1.3's dummy programmer emulates, with their sizes.
struct DummyChip {
  const char* name;
  uint64_t size;
};
constexpr DummyChip kDummyChips[] = {
    {"M25P10.RES", 128 * 1024},       {"SST25VF040.REMS", 512 * 1024},  {"SST25VF032B", 4 * 1024 * 1024},
    {"MX25L6436", 8 * 1024 * 1024},   {"W25Q128FV", 16 * 1024 * 1024}, {"S25FL128L", 16 * 1024 * 1024},
};

std::string ReadAll(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::string Bytes(uint64_t n) {
  std::string s = std::to_string(n) + " bytes";
  if (n >= 1024 && n % 1024 == 0) s += " (" + (n % (1024 * 1024) == 0 ? std::to_string(n >> 20) + " MiB" : std::to_string(n >> 10) + " KiB") + ")";
  return s;
}

// "dummy:emulate=X,image=F" -> {"emulate=X", "image=F"}
std::vector<std::string> Params(const std::string& programmer) {
  std::vector<std::string> params;
  const size_t colon = programmer.find(':');
  if (colon == std::string::npos) return params;
  std::stringstream list(programmer.substr(colon + 1));
  std::string p;
  while (std::getline(list, p, ',')) params.push_back(p);
  return params;
}

}  // namespace

bool IsDummyProgrammer(const std::string& programmer) {
  return programmer == "dummy" || programmer.rfind("dummy:", 0) == 0;
}

std::optional<std::string> ProgrammerParam(const std::string& programmer, const std::string& key) {
  for (const std::string& p : Params(programmer)) {
    if (p.rfind(key + "=", 0) == 0) return p.substr(key.size() + 1);
  }
  return std::nullopt;
}

std::string WithProgrammerParam(const std::string& programmer, const std::string& key, const std::string& value) {
  const size_t colon = programmer.find(':');
  const std::string name = programmer.substr(0, colon);
  std::string out = name + ":";
  bool set = false, first = true;
  for (const std::string& p : Params(programmer)) {
    out += first ? "" : ",";
    first = false;
    if (p.rfind(key + "=", 0) == 0) {
      out += key + "=" + value;
      set = true;
    } else {
      out += p;
    }
  }
  if (!set) out += (first ? "" : ",") + key + "=" + value;
  return out;
}

std::optional<uint64_t> DummyChipSize(const std::string& programmer) {
  if (!IsDummyProgrammer(programmer)) return std::nullopt;
  const auto emulate = ProgrammerParam(programmer, "emulate");
  if (!emulate) return std::nullopt;
  for (const DummyChip& c : kDummyChips) {
    if (*emulate == c.name) return c.size;
  }
  if (*emulate == "VARIABLE_SIZE") {
    const auto size = ProgrammerParam(programmer, "size");
    if (!size || size->empty()) return std::nullopt;
    char* end = nullptr;
    const unsigned long long n = std::strtoull(size->c_str(), &end, 10);
    if (end && *end) return std::nullopt;
    return static_cast<uint64_t>(n);
  }
  return std::nullopt;
}

std::vector<FlashChip> ParseFoundChips(const std::string& output) {
  // Found SST flash chip "SST25VF032B" (4096 kB, SPI) on dummy.
  static const std::regex found(R"re(Found (.+) flash chip "([^"]+)" \((\d+) kB, ([^)]+)\) (?:on|at) ([^.\s]+))re");
  std::vector<FlashChip> chips;
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (!std::regex_search(line, m, found)) continue;
    FlashChip chip;
    chip.vendor = m[1];
    chip.name = m[2];
    chip.size = std::stoull(m[3]) * 1024;
    chip.bus = m[4];
    chip.programmer = m[5];
    chips.push_back(chip);
  }
  return chips;
}

std::vector<std::string> FlashromKeyLines(const std::string& output, size_t max) {
  // What flashrom says when something goes wrong; its banner, chip test
  // status notes and progress are left out.
  static const char* kMarks[] = {"FAILED",        "Error",          "failed",       "Uh oh",
                                 "unknown state", "didn't do anything", "No EEPROM/flash device found",
                                 "Couldn't",      "Invalid",        "doesn't match", "Multiple flash chip",
                                 "not found",     "denied",         "No such",      "Aborting",
                                 "Unknown",       "does not exist", "can't",        "Cannot"};
  std::vector<std::string> lines;
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    line = Trim(line);
    if (line.empty() || line.find("flashrom@flashrom.org") != std::string::npos) continue;
    bool key = false;
    for (const char* mark : kMarks) key = key || line.find(mark) != std::string::npos;
    if (!key) continue;
    bool seen = false;
    for (const auto& l : lines) seen = seen || l == line;
    if (seen) continue;
    if (lines.size() == max) {
      lines.back() = "...";
      break;
    }
    lines.push_back(line);
  }
  return lines;
}

Result<FlashProgrammer> FlashProgrammer::Open(FlashConfig config) {
  if (config.programmer.empty()) return Status::Error(Layer::kHarness, "no flashrom programmer given").WithKind(ErrorKind::kBadInput);
  auto found = FindProgram(config.binary);
  if (!found) {
    return Status::Error(Layer::kHarness, config.binary + " not found: install the Debian package flashrom")
        .WithKind(ErrorKind::kMissingPackage);
  }
  config.binary = found->string();
  if (config.work_dir.empty()) config.work_dir = fs::temp_directory_path();
  std::error_code ec;
  fs::create_directories(config.work_dir, ec);
  if (ec) return Status::Error(Layer::kHarness, "cannot create " + config.work_dir.string() + ": " + ec.message());
  if (!config.region.empty() && config.layout.empty() && !config.ifd) {
    return Status::Error(Layer::kHarness, "flash region '" + config.region + "' needs a layout file or ifd")
        .WithKind(ErrorKind::kBadInput);
  }
  FlashProgrammer programmer(std::move(config));
  if (programmer.config_.size) programmer.known_size_ = programmer.config_.size;
  return programmer;
}

std::string FlashProgrammer::Describe() const {
  std::string s = "flashrom -p " + config_.programmer;
  if (!config_.chip.empty()) s += " -c " + config_.chip;
  if (!config_.region.empty()) s += " --image " + config_.region;
  return s;
}

std::vector<std::string> FlashProgrammer::RegionArgs() const {
  if (config_.region.empty()) return {};
  if (config_.ifd) return {"--ifd", "--image", config_.region};
  return {"--layout", config_.layout.string(), "--image", config_.region};
}

Result<int> FlashProgrammer::Run(const std::string& op, const std::vector<std::string>& op_args) {
  TRY(CheckDummyImage());
  std::vector<std::string> argv = {config_.binary, "-p", config_.programmer};
  if (!config_.chip.empty()) argv.insert(argv.end(), {"-c", config_.chip});
  argv.insert(argv.end(), op_args.begin(), op_args.end());
  last_log_ = config_.work_dir / ("flashrom-" + std::to_string(++runs_) + "-" + op + ".log");
  std::error_code ec;
  fs::remove(last_log_, ec);
  auto rc = RunProgram(argv, last_log_, config_.timeout);
  if (!rc.ok()) return rc.status().Wrap(op + " with " + Describe());
  return rc;
}

Status FlashProgrammer::CheckDummyImage() const {
  if (!IsDummyProgrammer(config_.programmer)) return Status::Ok();
  const auto image = ProgrammerParam(config_.programmer, "image");
  const auto size = DummyChipSize(config_.programmer);
  if (!image || !size) return Status::Ok();
  std::error_code ec;
  if (!fs::exists(*image, ec)) return Status::Ok();  // a new chip: flashrom starts it erased and writes it
  const uint64_t have = fs::file_size(*image, ec);
  if (ec || have != *size) {
    return Status::Error(Layer::kHarness, "the dummy chip's file " + *image + " is " + Bytes(have) + ", but " +
                                              *ProgrammerParam(config_.programmer, "emulate") + " holds " +
                                              Bytes(*size) + ": flashrom would ignore it and start an erased chip")
        .WithKind(ErrorKind::kBadInput);
  }
  return Status::Ok();
}

Status FlashProgrammer::Failed(const std::string& what, int exit_code) const {
  std::string message = what + " (" + Describe() + " exited with " + std::to_string(exit_code) + ")";
  const auto lines = FlashromKeyLines(ReadAll(last_log_));
  if (lines.empty()) {
    message += "; flashrom said:\n" + FileTail(last_log_, 6);
  } else {
    message += "; flashrom said:";
    for (const auto& l : lines) message += "\n  " + l;
  }
  message += "\n(full log: " + last_log_.string() + ")";
  return Status::Error(Layer::kTransport, message);
}

Result<FlashChip> FlashProgrammer::Probe() {
  TRY_ASSIGN(int rc, Run("probe", {}));
  const std::string output = ReadAll(last_log_);
  const auto chips = ParseFoundChips(output);
  if (rc != 0 || chips.empty()) return Failed("no flash chip identified", rc);
  if (chips.size() > 1 && config_.chip.empty()) {
    std::string names;
    for (const auto& c : chips) names += (names.empty() ? "" : ", ") + c.name;
    return Status::Error(Layer::kTransport, "several flash chip definitions match at " + config_.programmer + " (" +
                                                names + "): name one with the bench's flash.chip");
  }
  const FlashChip& chip = chips.front();
  if (config_.size && *config_.size != chip.size) {
    return Status::Error(Layer::kTransport, "the flash chip at " + config_.programmer + " is " + chip.vendor + " " +
                                                chip.name + " of " + Bytes(chip.size) + ", but the bench expects " +
                                                Bytes(*config_.size));
  }
  known_size_ = chip.size;
  return chip;
}

Result<uint64_t> FlashProgrammer::ChipSize() {
  if (known_size_) return *known_size_;
  if (auto dummy = DummyChipSize(config_.programmer)) return *(known_size_ = dummy);
  TRY_ASSIGN(FlashChip chip, Probe());
  return chip.size;
}

Status FlashProgrammer::CheckImage(const fs::path& image, const std::string& doing) {
  std::error_code ec;
  if (!fs::is_regular_file(image, ec)) {
    return Status::Error(Layer::kHarness, doing + " " + image.string() + ": no such file").WithKind(ErrorKind::kBadInput);
  }
  const uint64_t have = fs::file_size(image, ec);
  TRY_ASSIGN(uint64_t chip, ChipSize());
  if (have != chip) {
    return Status::Error(Layer::kHarness, doing + " " + image.string() + ": the image is " + Bytes(have) +
                                              ", the chip at " + config_.programmer + " holds " + Bytes(chip) +
                                              " (flashrom writes whole-chip images, also for a region)")
        .WithKind(ErrorKind::kBadInput);
  }
  return Status::Ok();
}

Status FlashProgrammer::Read(const fs::path& out) {
  std::vector<std::string> args = {"-r", out.string()};
  for (auto& a : RegionArgs()) args.push_back(a);
  TRY_ASSIGN(int rc, Run("read", args));
  if (rc != 0) return Failed("reading the flash chip into " + out.string() + " failed", rc);
  return Status::Ok();
}

Status FlashProgrammer::Write(const fs::path& image) {
  TRY(CheckImage(image, "writing"));
  std::vector<std::string> args = {"-w", image.string()};
  for (auto& a : RegionArgs()) args.push_back(a);
  TRY_ASSIGN(int rc, Run("write", args));
  if (rc != 0) {
    const std::string output = ReadAll(last_log_);
    const bool verify = output.find("Verifying flash... FAILED") != std::string::npos ||
                        output.find("VERIFY FAILED") != std::string::npos;
    return Failed(std::string(verify ? "verifying" : "writing") + " the image " + image.string() + " with programmer " +
                      config_.programmer + " failed",
                  rc);
  }
  return Status::Ok();
}

Status FlashProgrammer::Verify(const fs::path& image) {
  TRY(CheckImage(image, "verifying"));
  std::vector<std::string> args = {"-v", image.string()};
  for (auto& a : RegionArgs()) args.push_back(a);
  TRY_ASSIGN(int rc, Run("verify", args));
  if (rc != 0) {
    return Failed("the flash chip at programmer " + config_.programmer + " does not hold the image " + image.string(), rc);
  }
  return Status::Ok();
}

}  // namespace tpmlab
