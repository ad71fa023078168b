// flashrom's dummy programmer as a real chip: FlashProgrammer probes it,
// writes and verifies an image, reads it back; refuses a wrong-size image
// before flashrom runs; and a write that fails (the chip's write-enable
// opcode refused, spi_blacklist=0x06) names the image and the programmer and
// quotes flashrom. Then the harness's FlashPlatformFirmware on a bench:
// the previous contents kept, allow.flash on a real programmer.
#define BOOST_TEST_MODULE flash_programmer
#include <boost/test/unit_test.hpp>

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "drivers/flash.h"
#include "harness/bench.h"
#include "harness/platform_flash.h"
#include "needs.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t k4M = 4 * 1024 * 1024;
#define NEEDS_FLASHROM TPMLAB_NEEDS("flashrom", "/usr/sbin/flashrom")

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

struct TempDir {
  TempDir() {
    char name[] = "/tmp/tpmlab-flash-test-XXXXXX";
    path = ::mkdtemp(name);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path path;
};

// A file of `size` bytes, each byte from `seed` and its offset.
fs::path Pattern(const fs::path& file, uint64_t size, uint8_t seed) {
  std::ofstream out(file, std::ios::binary);
  for (uint64_t i = 0; i < size; ++i) out.put(static_cast<char>((i * 31 + seed) & 0xFF));
  return file;
}

std::string Read(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

FlashProgrammer Open(const TempDir& dir, const std::string& extra = "") {
  FlashConfig config;
  config.programmer = "dummy:emulate=SST25VF032B,image=" + (dir.path / "chip.bin").string() + extra;
  config.work_dir = dir.path / "logs";
  config.timeout = std::chrono::minutes(5);
  auto p = FlashProgrammer::Open(config);
  BOOST_REQUIRE_MESSAGE(p.ok(), p.status().ToString());
  return std::move(*p);
}

BOOST_AUTO_TEST_CASE(programmer_strings) {
  const std::string p = "dummy:emulate=SST25VF032B,image=chip.bin";
  BOOST_TEST(IsDummyProgrammer(p));
  BOOST_TEST(!IsDummyProgrammer("ch341a_spi"));
  BOOST_TEST(*ProgrammerParam(p, "image") == "chip.bin");
  BOOST_TEST(!ProgrammerParam(p, "size"));
  BOOST_TEST(WithProgrammerParam(p, "image", "/run/c.bin") == "dummy:emulate=SST25VF032B,image=/run/c.bin");
  BOOST_TEST(WithProgrammerParam("dummy:emulate=X", "image", "c") == "dummy:emulate=X,image=c");
  BOOST_TEST(*DummyChipSize(p) == k4M);
  BOOST_TEST(*DummyChipSize("dummy:emulate=VARIABLE_SIZE,size=65536") == 65536u);
  BOOST_TEST(!DummyChipSize("ft2232_spi:type=232H"));
  const auto chips = ParseFoundChips("noise\nFound SST flash chip \"SST25VF032B\" (4096 kB, SPI) on dummy.\n");
  BOOST_REQUIRE(chips.size() == 1u);
  BOOST_TEST(chips[0].vendor == "SST");
  BOOST_TEST(chips[0].name == "SST25VF032B");
  BOOST_TEST(chips[0].size == k4M);
  BOOST_TEST(chips[0].bus == "SPI");
  BOOST_TEST(chips[0].programmer == "dummy");
}

BOOST_AUTO_TEST_CASE(missing_flashrom) {
  FlashConfig config;
  config.binary = "/nonexistent/flashrom";
  config.programmer = "ch341a_spi";
  auto p = FlashProgrammer::Open(config);
  BOOST_REQUIRE(!p.ok());
  BOOST_TEST((p.status().kind() == ErrorKind::kMissingPackage));
  BOOST_TEST(Contains(p.status().message(), "Debian package flashrom"));
}

BOOST_AUTO_TEST_CASE(probe_write_verify_read, NEEDS_FLASHROM) {
  TempDir dir;
  FlashProgrammer flash = Open(dir);
  auto chip = flash.Probe();
  BOOST_REQUIRE_MESSAGE(chip.ok(), chip.status().ToString());
  BOOST_TEST(chip->name == "SST25VF032B");
  BOOST_TEST(chip->size == k4M);
  BOOST_TEST(chip->programmer == "dummy");

  const fs::path image = Pattern(dir.path / "a.bin", k4M, 7);
  const auto started = std::chrono::steady_clock::now();
  Status written = flash.Write(image);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  BOOST_REQUIRE_MESSAGE(written.ok(), written.ToString());
  BOOST_TEST_MESSAGE("flashrom write + verify of 4 MiB on the dummy chip: " << ms.count() << " ms");
  BOOST_TEST(Contains(Read(flash.last_log()), "VERIFIED"));
  BOOST_TEST(Read(dir.path / "chip.bin") == Read(image));  // the dummy chip's file holds it

  BOOST_REQUIRE(flash.Read(dir.path / "back.bin").ok());
  BOOST_TEST(Read(dir.path / "back.bin") == Read(image));
  BOOST_TEST(flash.Verify(image).ok());

  const fs::path other = Pattern(dir.path / "b.bin", k4M, 9);
  const Status differs = flash.Verify(other);
  BOOST_REQUIRE(!differs.ok());
  BOOST_TEST(Contains(differs.message(), "does not hold the image " + other.string()));
  BOOST_TEST(Contains(differs.message(), "FAILED"));
}

BOOST_AUTO_TEST_CASE(wrong_size_refused_before_flashrom_runs, NEEDS_FLASHROM) {
  TempDir dir;
  FlashProgrammer flash = Open(dir);
  const fs::path small = Pattern(dir.path / "small.bin", 2 * 1024 * 1024, 1);
  const Status refused = flash.Write(small);
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST((refused.kind() == ErrorKind::kBadInput));
  BOOST_TEST(Contains(refused.message(), small.string()));
  BOOST_TEST(Contains(refused.message(), "2097152 bytes"));
  BOOST_TEST(Contains(refused.message(), "4194304 bytes"));
  BOOST_TEST(flash.last_log().empty());  // flashrom never ran
  BOOST_TEST(!fs::exists(dir.path / "chip.bin"));
  BOOST_TEST(!flash.Write(dir.path / "absent.bin").ok());

  // A chip file of the wrong size: flashrom would silently start an erased chip.
  Pattern(dir.path / "chip.bin", 1000, 0);
  const Status chip = flash.Read(dir.path / "out.bin");
  BOOST_REQUIRE(!chip.ok());
  BOOST_TEST(Contains(chip.message(), "start an erased chip"));
  BOOST_TEST(flash.last_log().empty());
}

BOOST_AUTO_TEST_CASE(failed_write_names_image_and_programmer, NEEDS_FLASHROM) {
  TempDir dir;
  const fs::path before = Pattern(dir.path / "chip.bin", k4M, 3);
  const std::string kept = Read(before);
  // WREN (0x06) refused by the emulated chip: no erase or write gets through.
  FlashProgrammer flash = Open(dir, ",spi_blacklist=0x06");
  const fs::path image = Pattern(dir.path / "a.bin", k4M, 7);
  const Status failed = flash.Write(image);
  BOOST_REQUIRE(!failed.ok());
  BOOST_TEST_MESSAGE(failed.message());
  BOOST_TEST(Contains(failed.message(), "writing the image " + image.string()));
  BOOST_TEST(Contains(failed.message(), "with programmer dummy:emulate=SST25VF032B"));
  BOOST_TEST(Contains(failed.message(), "flashrom said:"));
  BOOST_TEST(Contains(failed.message(), "FAILED"));
  BOOST_TEST(Contains(failed.message(), "didn't do anything"));
  BOOST_TEST((failed.layer() == Layer::kTransport));
  BOOST_TEST(Read(dir.path / "chip.bin") == kept);
}

// The bench around it: what FlashPlatformFirmware keeps and refuses.
Bench FlashBench(const TempDir& dir, const std::string& programmer, const std::string& extra = "") {
  const std::string text = "name: f\ndut: {transport: device}\npower: {kind: none}\n" + extra +
                           "flash:\n  programmer: \"" + programmer + "\"\n  images:\n"
                           "    a: a.bin\n    parts: [half1.bin, half2.bin]\n    small: small.bin\n";
  auto b = ParseBench(text, (dir.path / "bench.yaml").string());
  BOOST_REQUIRE_MESSAGE(b.ok(), b.status().ToString());
  return *b;
}

BOOST_AUTO_TEST_CASE(platform_flash_keeps_the_previous_image, NEEDS_FLASHROM) {
  TempDir dir;
  Pattern(dir.path / "chip.bin", k4M, 3);
  Pattern(dir.path / "a.bin", k4M, 7);
  Pattern(dir.path / "half1.bin", k4M / 2, 1);
  Pattern(dir.path / "half2.bin", k4M / 2, 2);
  Pattern(dir.path / "small.bin", 4096, 2);
  const Bench bench = FlashBench(dir, "dummy:emulate=SST25VF032B,image=chip.bin");
  const std::string before = Read(dir.path / "chip.bin");
  const fs::path run = dir.path / "run";

  auto first = FlashPlatformFirmware(bench, "a", run);
  BOOST_REQUIRE_MESSAGE(first.ok(), first.status().ToString());
  BOOST_TEST(first->before_file == "firmware/flash-1-before.bin");
  BOOST_TEST(Read(run / first->before_file) == before);
  BOOST_TEST(first->before_sha256.size() == 64u);
  BOOST_TEST(first->before_sha256 != first->image_sha256);
  BOOST_TEST(!first->unchanged);
  BOOST_TEST(first->chip == "SST SST25VF032B, 4096 KiB, SPI");
  BOOST_TEST(Read(dir.path / "chip.bin") == Read(dir.path / "a.bin"));
  BOOST_TEST(first->ToJson()["verified"].get<bool>());

  // Parts laid end to end; the second flash keeps the first's image.
  auto second = FlashPlatformFirmware(bench, "parts", run);
  BOOST_REQUIRE_MESSAGE(second.ok(), second.status().ToString());
  BOOST_TEST(second->before_file == "firmware/flash-2-before.bin");
  BOOST_TEST(second->before_sha256 == first->image_sha256);
  BOOST_TEST(Read(dir.path / "chip.bin") == Read(dir.path / "half1.bin") + Read(dir.path / "half2.bin"));

  auto small = FlashPlatformFirmware(bench, "small", run);
  BOOST_REQUIRE(!small.ok());
  BOOST_TEST((small.status().kind() == ErrorKind::kBadInput));
  BOOST_TEST(Contains(small.status().message(), "nothing was written"));
  BOOST_TEST(!fs::exists(run / "firmware/flash-3-before.bin"));

  auto none = FlashPlatformFirmware(bench, "nope", run);
  BOOST_REQUIRE(!none.ok());
  BOOST_TEST(Contains(none.status().message(), "no flash image 'nope' (flash.images: a, parts, small)"));
}

BOOST_AUTO_TEST_CASE(platform_flash_failure_and_refusal, NEEDS_FLASHROM) {
  TempDir dir;
  Pattern(dir.path / "chip.bin", k4M, 3);
  Pattern(dir.path / "a.bin", k4M, 7);
  const Bench failing = FlashBench(dir, "dummy:emulate=SST25VF032B,image=chip.bin,spi_blacklist=0x06");
  auto failed = FlashPlatformFirmware(failing, "a", dir.path / "run");
  BOOST_REQUIRE(!failed.ok());
  BOOST_TEST(Contains(failed.status().message(), "flash image 'a'"));
  BOOST_TEST(Contains(failed.status().message(), (dir.path / "a.bin").string()));
  BOOST_TEST(Contains(failed.status().message(), "spi_blacklist=0x06"));
  BOOST_TEST(fs::exists(dir.path / "run/firmware/flash-1-before.bin"));  // read before the write failed

  // A real programmer without allow.flash: refused before flashrom runs.
  const Bench real = FlashBench(dir, "ch341a_spi");
  auto refused = FlashPlatformFirmware(real, "a", dir.path / "run2");
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST(Contains(refused.status().message(), "allow.flash: true"));
  BOOST_TEST(!fs::exists(dir.path / "run2/firmware"));
}

}  // namespace
}  // namespace tpmlab
