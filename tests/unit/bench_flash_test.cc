// A bench's flash: section: the schema, errors at file:line:column, paths
// taken from the bench file's folder, allow.flash on real programmers (a
// dummy chip is a file), and what a QEMU board with a flash chip may say.
#define BOOST_TEST_MODULE bench_flash
#include <boost/test/unit_test.hpp>

#include <string>

#include "harness/bench.h"
#include "harness/bench_policy.h"

namespace tpmlab {
namespace {

const std::string kBenches = std::string(TPMLAB_SOURCE_DIR) + "/hw/benches/";

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

Result<Bench> ParseIn(const std::string& text) { return ParseBench(text, "/lab/benches/b.yaml"); }

std::string ErrorOf(const std::string& text) {
  auto b = ParseIn(text);
  BOOST_REQUIRE_MESSAGE(!b.ok(), "parsed, expected an error:\n" + text);
  BOOST_TEST((b.status().layer() == Layer::kScenario));
  return b.status().message();
}

const std::string kDevice = "name: m\ndut: {transport: device}\npower: {kind: none}\n";
const std::string kBoard = "name: q\ndut: {transport: qemu}\nboard: {machine: q35}\n";

BOOST_AUTO_TEST_CASE(example_bench_loads) {
  auto b = LoadBench(kBenches + "qemu-ovmf-flash.yaml");
  BOOST_REQUIRE_MESSAGE(b.ok(), b.status().ToString());
  BOOST_REQUIRE(b->flash.has_value());
  BOOST_TEST(b->flash->dummy());
  BOOST_TEST(b->flash->default_image == "baseline");
  BOOST_TEST(b->flash->ImageNames() == "baseline, firmware-blob");
  BOOST_TEST(b->flash->Image("baseline")->parts.size() == 2u);
  BOOST_TEST(b->flash->Image("baseline")->smm);  // the Secure Boot build keeps its variables in SMM
  BOOST_TEST(!b->flash->Image("firmware-blob")->smm);
  // image= is the bench folder's file, made absolute for flashrom.
  BOOST_REQUIRE(b->flash->chip_file().has_value());
  BOOST_TEST(Contains(b->flash->chip_file()->string(), "hw/benches/qemu-ovmf-flash-chip.bin"));
  BOOST_TEST(b->flash->chip_file()->is_absolute());
  BOOST_TEST(b->allow.flash);  // a dummy chip is a file
  BOOST_TEST(CheckAllowed(*b, Operation::kFlash).ok());
  BOOST_TEST(b->board->images.empty());
  BOOST_TEST(Contains(BenchSummaryJson(*b), "\"flash\""));
}

BOOST_AUTO_TEST_CASE(schema_and_paths) {
  auto b = ParseIn(kDevice +
                   "allow: {flash: true}\n"
                   "flash:\n"
                   "  programmer: ft2232_spi:type=232H\n"
                   "  chip: W25Q128.V\n"
                   "  size: 16777216\n"
                   "  layout: board.layout\n"
                   "  region: bios\n"
                   "  timeout_s: 900\n"
                   "  images: {a: a.bin, b: [vars.bin, /abs/code.bin], c: {file: c.bin}}\n"
                   "  default: b\n");
  BOOST_REQUIRE_MESSAGE(b.ok(), b.status().ToString());
  const BenchFlash& f = *b->flash;
  BOOST_TEST(f.programmer == "ft2232_spi:type=232H");
  BOOST_TEST(!f.dummy());
  BOOST_TEST(f.chip == "W25Q128.V");
  BOOST_TEST(*f.size == 16777216u);
  BOOST_TEST(f.layout->string() == "/lab/benches/board.layout");
  BOOST_TEST(f.region == "bios");
  BOOST_TEST(f.timeout_s == 900u);
  BOOST_TEST(f.Image("a")->parts.front().string() == "/lab/benches/a.bin");
  BOOST_TEST(f.Image("b")->parts.back().string() == "/abs/code.bin");
  BOOST_TEST(f.Image("c")->parts.front().string() == "/lab/benches/c.bin");
  BOOST_TEST(f.default_image == "b");
  BOOST_TEST(f.allowed);
  BOOST_TEST(CheckAllowed(*b, Operation::kFlash).ok());
}

BOOST_AUTO_TEST_CASE(real_programmer_needs_allow_flash) {
  auto b = ParseIn(kDevice + "flash: {programmer: ch341a_spi, images: {a: a.bin}}\n");
  BOOST_REQUIRE_MESSAGE(b.ok(), b.status().ToString());
  BOOST_TEST(!b->allow.flash);
  const Status refused = CheckAllowed(*b, Operation::kFlash);
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST(Contains(refused.message(), "allow.flash: true"));
  BOOST_TEST(Contains(refused.message(), "/lab/benches/b.yaml"));
  // allow.flash: false on a dummy chip is kept, and a scenario's platform
  // firmware update is then refused before the run starts.
  auto off = ParseIn(kBoard + "allow: {flash: false}\nflash: {programmer: \"dummy:emulate=SST25VF032B,image=c.bin\", images: {a: a.bin}}\n");
  BOOST_REQUIRE_MESSAGE(off.ok(), off.status().ToString());
  BOOST_TEST(!CheckAllowed(*off, Operation::kFlash).ok());
  BenchDemand demand;
  demand.firmware_model = true;
  demand.firmware_name = "a";
  const Status plan = RefusedSteps({{"s.yaml:5:5", "firmware_update", demand}}, *off);
  BOOST_REQUIRE(!plan.ok());
  BOOST_TEST(Contains(plan.message(), "s.yaml:5:5: firmware_update needs allow.flash"), plan.message());
}

BOOST_AUTO_TEST_CASE(errors_name_the_place) {
  BOOST_TEST(Contains(ErrorOf(kDevice + "flash:\n  programmer: ch341a_spi\n  images: {a: a.bin}\n  speed: 3\n"),
                      "b.yaml:7:3: unknown key 'speed' in flash"));
  BOOST_TEST(Contains(ErrorOf(kDevice + "flash:\n  images: {a: a.bin}\n"), "b.yaml:5:3: flash needs a programmer"));
  BOOST_TEST(Contains(ErrorOf(kDevice + "flash: {programmer: ch341a_spi}\n"), "flash needs images"));
  BOOST_TEST(Contains(ErrorOf(kDevice + "flash: {programmer: internal, images: {a: a.bin}}\n"), "internal would rewrite"));
  BOOST_TEST(Contains(ErrorOf(kDevice + "flash: {programmer: ch341a_spi, region: bios, images: {a: a.bin}}\n"),
                      "flash.region needs layout"));
  BOOST_TEST(Contains(ErrorOf(kDevice + "flash: {programmer: ch341a_spi, default: z, images: {a: a.bin}}\n"),
                      "flash.default names no image: 'z'"));
  BOOST_TEST(Contains(ErrorOf(kDevice + "flash: {programmer: ch341a_spi, images: {a: {file: a.bin, size: 3}}}\n"),
                      "unknown key 'size' in flash.images.a"));
  BOOST_TEST(Contains(ErrorOf(kDevice + "flash: {programmer: \"dummy:emulate=SST25VF032B,image=c.bin\", size: 8388608, "
                                        "images: {a: a.bin}}\n"),
                      "SST25VF032B holds 4194304 bytes"));
  BOOST_TEST(Contains(ErrorOf("name: e\ndut: {transport: emulated}\nflash: {programmer: ch341a_spi, images: {a: a.bin}}\n"),
                      "an emulated DUT's platform is a firmware model"));
}

BOOST_AUTO_TEST_CASE(board_with_a_flash_chip) {
  // A board boots either board.firmware images or its flash chip.
  BOOST_TEST(Contains(ErrorOf(kBoard), "board needs firmware"));
  BOOST_TEST(Contains(ErrorOf(kBoard + "flash: {programmer: ch341a_spi, images: {a: a.bin}}\n"),
                      "must be dummy:emulate=CHIP,image=FILE"));
  BOOST_TEST(Contains(ErrorOf(kBoard + "flash: {programmer: \"dummy:emulate=SST25VF032B\", images: {a: a.bin}}\n"),
                      "must be dummy:emulate=CHIP,image=FILE"));
  BOOST_TEST(Contains(ErrorOf(kBoard + "flash: {programmer: \"dummy:emulate=NOPE,image=c.bin\", images: {a: a.bin}}\n"),
                      "size is not known"));
  const std::string both = "name: q\ndut: {transport: qemu}\nboard:\n  firmware: {images: {x: {code: c.fd, vars: v.fd}}}\n"
                           "flash: {programmer: \"dummy:emulate=SST25VF032B,image=c.bin\", images: {a: a.bin}}\n";
  BOOST_TEST(Contains(ErrorOf(both), "name its images under flash.images"));
  auto b = ParseIn(kBoard + "flash: {programmer: \"dummy:emulate=SST25VF032B,image=c.bin\", images: {a: a.bin}}\n");
  BOOST_REQUIRE_MESSAGE(b.ok(), b.status().ToString());
  // A scenario's firmware names the flash images.
  BenchDemand demand;
  demand.firmware_model = true;
  demand.firmware_name = "firmware-blob";
  BOOST_TEST(Contains(UnrunnableOn(demand, *b), "flash.images name none 'firmware-blob' (it has: a)"));
  demand.firmware_name = "a";
  BOOST_TEST(UnrunnableOn(demand, *b).empty());
}

}  // namespace
}  // namespace tpmlab
