// Bench files: the schema and its defaults, errors that name file:line:column,
// the examples in hw/benches, probing, and the safety check that keeps
// destructive operations off real chips.
#define BOOST_TEST_MODULE bench
#include <boost/test/unit_test.hpp>

#include <string>

#include "harness/bench.h"
#include "harness/usb_parts.h"

namespace tpmlab {
namespace {

const std::string kBenches = std::string(TPMLAB_SOURCE_DIR) + "/hw/benches/";

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

Bench Parse(const std::string& text) {
  auto b = ParseBench(text, "b.yaml");
  BOOST_REQUIRE_MESSAGE(b.ok(), b.status().ToString());
  return *b;
}

std::string ErrorOf(const std::string& text) {
  auto b = ParseBench(text, "b.yaml");
  BOOST_REQUIRE_MESSAGE(!b.ok(), "parsed, expected an error:\n" + text);
  BOOST_TEST((b.status().layer() == Layer::kScenario));
  return b.status().message();
}

BOOST_AUTO_TEST_CASE(examples_load) {
  auto emulated = LoadBench(kBenches + "emulated.yaml");
  BOOST_REQUIRE_MESSAGE(emulated.ok(), emulated.status().ToString());
  BOOST_TEST(emulated->emulated());
  BOOST_TEST((emulated->power.kind == PowerKind::kEmulated));
  BOOST_REQUIRE(emulated->firmware_model.has_value());
  BOOST_TEST(Contains(*emulated->firmware_model, "scenarios/firmware/baseline.yaml"));

  auto host = LoadBench(kBenches + "host-tpmrm0.yaml");
  BOOST_REQUIRE_MESSAGE(host.ok(), host.status().ToString());
  BOOST_TEST((host->dut.transport == DutTransportKind::kDevice));
  BOOST_TEST(host->dut.path == "/dev/tpmrm0");
  BOOST_TEST((host->boot_log.source == BootLogSource::kSecurityfs));
  BOOST_TEST(host->boot_log.path == "/sys/kernel/security/tpm0/binary_bios_measurements");

  auto tpm2go = LoadBench(kBenches + "tpm2go-hub-port.yaml");
  BOOST_REQUIRE_MESSAGE(tpm2go.ok(), tpm2go.status().ToString());
  BOOST_TEST(tpm2go->dut.usb->ToString() == "365d:1337 serial ^LTT2GO");
  BOOST_TEST((tpm2go->power.kind == PowerKind::kUsbHubPort));
  BOOST_TEST(tpm2go->power.hub == "1-1");
  BOOST_TEST(tpm2go->power.port == 2u);
  BOOST_TEST(tpm2go->allow.clear);
  BOOST_TEST(!tpm2go->allow.change_eps);

  auto ftdi = LoadBench(kBenches + "ftdi-relay.yaml");
  BOOST_REQUIRE_MESSAGE(ftdi.ok(), ftdi.status().ToString());
  BOOST_TEST(ftdi->dut.usb->ToString() == "0403:6014 serial FT6XYZ01");
  BOOST_TEST(ftdi->dut.spi_clock_hz == 10000000u);
  BOOST_TEST(ftdi->power.relay_type == "dcttech");
  BOOST_TEST(ftdi->power.usb->ToString() == "16c0:05df");
  BOOST_TEST(ftdi->power.channel == 1u);
}

BOOST_AUTO_TEST_CASE(defaults_follow_the_dut) {
  Bench real = Parse("name: r\ndut: {transport: device}\n");
  BOOST_TEST(real.dut.path == "/dev/tpmrm0");
  BOOST_TEST((real.power.kind == PowerKind::kNone));
  BOOST_TEST((real.boot_log.source == BootLogSource::kSecurityfs));
  for (auto op : {Operation::kClear, Operation::kChangeEps, Operation::kChangePps, Operation::kNvWrite,
                  Operation::kAllocateBanks, Operation::kFirmwareInstall}) {
    BOOST_TEST(!real.allow.Get(op), OperationKey(op));
  }
  Bench sim = Parse("name: s\ndut: {transport: tis-spi-sim, spi: {wait_states: 3, burst_count: 4}}\n");
  BOOST_TEST(sim.emulated());
  BOOST_TEST(sim.dut.wait_states == 3u);
  BOOST_TEST((sim.power.kind == PowerKind::kEmulated));
  BOOST_TEST((sim.boot_log.source == BootLogSource::kEmulatedFirmware));
  Bench ftdi = Parse("name: f\ndut: {transport: tis-spi-ftdi}\n");
  BOOST_TEST(ftdi.dut.usb->ToString() == "0403:6014");
  // tpmlab boots a chip on a bridge itself, so it measures the firmware model.
  BOOST_TEST(ftdi.harness_boots());
  BOOST_TEST(!real.harness_boots());
  BOOST_TEST((ftdi.boot_log.source == BootLogSource::kEmulatedFirmware));
  Bench lcus = Parse("name: l\ndut: {transport: tis-spi-tpm2go}\npower: {kind: usb-relay, relay: lcus, channel: 2}\n");
  BOOST_TEST(lcus.power.usb->ToString() == "1a86:7523");
}

BOOST_AUTO_TEST_CASE(errors_name_file_line_and_column) {
  // Unknown top-level key, at its own position.
  std::string e = ErrorOf("name: x\ndut:\n  transport: device\nrelay: 3\n");
  BOOST_TEST(Contains(e, "b.yaml:4:1: unknown key 'relay'"), e);
  // Unknown key inside dut.
  e = ErrorOf("name: x\ndut:\n  transport: device\n  speed: 3\n");
  BOOST_TEST(Contains(e, "b.yaml:4:3: unknown key 'speed' in dut"), e);
  // A bad enum value, pointing at the value.
  e = ErrorOf("name: x\ndut:\n  transport: serial\n");
  BOOST_TEST(Contains(e, "b.yaml:3:14: dut.transport must be one of emulated | device"), e);
  // A key that does not fit the kind.
  e = ErrorOf("name: x\ndut: {transport: device}\npower:\n  kind: usb-relay\n  relay: dcttech\n  channel: 1\n  hub: 1-1\n");
  BOOST_TEST(Contains(e, "b.yaml:7:3: power.hub does not apply to kind: usb-relay"), e);
  e = ErrorOf("name: x\ndut:\n  transport: tis-spi-ftdi\n  path: /dev/tpm0\n");
  BOOST_TEST(Contains(e, "b.yaml:4:9: dut.path is only for transport: device"), e);
  // firmware_control and emulated things on a real chip.
  e = ErrorOf("name: x\ndut: {transport: device}\nfirmware_control: {model: a.yaml}\n");
  BOOST_TEST(Contains(e, "b.yaml:3:19: firmware_control is only for an emulated DUT"), e);
  e = ErrorOf("name: x\ndut: {transport: device}\npower: {kind: emulated}\n");
  BOOST_TEST(Contains(e, "power kind emulated needs an emulated DUT"), e);
  e = ErrorOf("name: x\ndut: {transport: device}\nboot_log: {source: emulated-firmware}\n");
  BOOST_TEST(Contains(e, "b.yaml:3:20: boot_log source emulated-firmware needs a DUT tpmlab starts itself"), e);
  e = ErrorOf("name: x\ndut: {transport: device}\npower: {kind: manual}\n");
  BOOST_TEST(Contains(e, "b.yaml:3:8: a device DUT is this machine's own TPM"), e);
  // Types and ranges.
  e = ErrorOf("name: x\ndut: {transport: device}\nallow:\n  clear: maybe\n");
  BOOST_TEST(Contains(e, "b.yaml:4:10: allow.clear must be true or false"), e);
  e = ErrorOf("name: x\ndut:\n  transport: tis-spi-ftdi\n  usb: {vid: xyz1, pid: \"6014\"}\n");
  BOOST_TEST(Contains(e, "dut.usb.vid must be 4 hex digits"), e);
  e = ErrorOf("name: x\ndut: {transport: device}\npower: {kind: usb-relay, relay: dcttech, channel: 9}\n");
  BOOST_TEST(Contains(e, "power.channel must be 1..8"), e);
  e = ErrorOf("name: x\ndut: {transport: device}\npower: {kind: usb-hub-port, hub: 1-1}\n");
  BOOST_TEST(Contains(e, "needs hub (\"1-1.4\") and port"), e);
  e = ErrorOf("name: x\ndut: {transport: tis-spi-ftdi, spi: {wait_states: 2}}\n");
  BOOST_TEST(Contains(e, "tis-spi-sim"), e);
  // Missing parts, and a syntax error.
  BOOST_TEST(Contains(ErrorOf("dut: {transport: device}\n"), "needs a name"));
  BOOST_TEST(Contains(ErrorOf("name: x\n"), "needs a dut"));
  BOOST_TEST(Contains(ErrorOf("name: x\ndut: {transport: device}\nboot_log: {source: file}\n"), "needs a path"));
  e = ErrorOf("name: x\ndut: [unclosed\n");
  BOOST_TEST(Contains(e, "b.yaml:"), e);
  auto missing = LoadBench(kBenches + "no-such-bench.yaml");
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST(Contains(missing.status().message(), "no-such-bench.yaml"));
}

BOOST_AUTO_TEST_CASE(safety_refuses_destructive_operations_on_real_chips) {
  Bench real = Parse("name: lab-chip\ndut: {transport: device, path: /dev/tpm0}\nallow: {nv_write: true}\n");
  const Status clear = CheckAllowed(real, Operation::kClear);
  BOOST_REQUIRE(!clear.ok());
  BOOST_TEST((clear.layer() == Layer::kScenario));
  BOOST_TEST(Contains(clear.message(), "TPM2_Clear"), clear.message());
  BOOST_TEST(Contains(clear.message(), "b.yaml"), clear.message());
  BOOST_TEST(Contains(clear.message(), "allow.clear: true"), clear.message());
  BOOST_TEST(Contains(clear.message(), "/dev/tpm0"), clear.message());
  BOOST_TEST(CheckAllowed(real, Operation::kNvWrite).ok());
  for (auto op : {Operation::kChangeEps, Operation::kChangePps, Operation::kAllocateBanks, Operation::kFirmwareInstall}) {
    const Status s = CheckAllowed(real, op);
    BOOST_TEST(!s.ok(), OperationKey(op));
    BOOST_TEST(Contains(s.message(), std::string("allow.") + OperationKey(op) + ": true"), s.message());
  }
  // USB bridges are real chips too; the examples allow only what they say.
  auto tpm2go = LoadBench(kBenches + "tpm2go-hub-port.yaml");
  BOOST_REQUIRE(tpm2go.ok());
  BOOST_TEST(CheckAllowed(*tpm2go, Operation::kClear).ok());
  const Status eps = CheckAllowed(*tpm2go, Operation::kChangeEps);
  BOOST_TEST(!eps.ok());
  BOOST_TEST(Contains(eps.message(), "tpm2go-hub-port.yaml"), eps.message());
  BOOST_TEST(Contains(eps.message(), "365d:1337"), eps.message());
  // Emulated chips may undergo anything, whatever `allow` says.
  Bench emu = Parse("name: e\ndut: {transport: emulated}\nallow: {clear: false, firmware_install: false}\n");
  BOOST_TEST(CheckAllowed(emu, Operation::kClear).ok());
  BOOST_TEST(CheckAllowed(emu, Operation::kFirmwareInstall).ok());
  Bench sim = Parse("name: s\ndut: {transport: tis-spi-sim}\n");
  BOOST_TEST(CheckAllowed(sim, Operation::kChangeEps).ok());
}

BOOST_AUTO_TEST_CASE(probing_says_what_is_missing) {
  Bench absent = Parse("name: a\ndut: {transport: device, path: /nonexistent/tpmrm7}\nboot_log: {source: file, path: /nonexistent/log.bin}\n");
  auto items = ProbeBench(absent);
  BOOST_REQUIRE(items.size() == 3u);
  BOOST_TEST(items[0].part == "dut");
  BOOST_TEST((items[0].state == ProbeState::kMissing));
  BOOST_TEST(Contains(items[0].detail, "/nonexistent/tpmrm7: no TPM device"), items[0].detail);
  BOOST_TEST((items[1].state == ProbeState::kPresent));  // power: none
  BOOST_TEST((items[2].state == ProbeState::kMissing));
  BOOST_TEST(Contains(items[2].detail, "/nonexistent/log.bin"), items[2].detail);

  auto ftdi = LoadBench(kBenches + "ftdi-relay.yaml");
  BOOST_REQUIRE(ftdi.ok());
  items = ProbeBench(*ftdi);
  BOOST_TEST((items[0].state == ProbeState::kUnknown));
  BOOST_TEST(Contains(items[0].detail, "0403:6014 serial FT6XYZ01"), items[0].detail);
  BOOST_TEST(Contains(items[0].detail, "USB probing: not built in this version"), items[0].detail);

  Bench cmd = Parse("name: c\ndut: {transport: tis-spi-ftdi}\npower: {kind: command, on_command: 'true', off_command: no-such-switch-tool 3}\n");
  items = ProbeBench(cmd);
  BOOST_TEST((items[1].state == ProbeState::kMissing));
  BOOST_TEST(Contains(items[1].detail, "no-such-switch-tool"), items[1].detail);
}

}  // namespace
}  // namespace tpmlab

namespace tpmlab {

// `tpmlab hw list` names the parts the drivers support, and only those.
BOOST_AUTO_TEST_CASE(usb_parts_are_recognised_by_vid_pid_and_class) {
  auto device = [](uint16_t vid, uint16_t pid, uint8_t cls = 0, uint16_t bcd = 0x0200) {
    UsbDeviceInfo d;
    d.vendor_id = vid;
    d.product_id = pid;
    d.device_class = cls;
    d.bcd_usb = bcd;
    return d;
  };
  BOOST_TEST(RecognizeUsb(device(0x0403, 0x6014))->bench_kind == "tis-spi-ftdi");
  BOOST_TEST(RecognizeUsb(device(0x0403, 0x6010))->bench_kind == "tis-spi-ftdi");
  BOOST_TEST(RecognizeUsb(device(0x365D, 0x1337))->bench_kind == "tis-spi-tpm2go");
  BOOST_TEST(RecognizeUsb(device(0x16C0, 0x05DF))->bench_kind == "usb-relay");
  BOOST_TEST(RecognizeUsb(device(0x1A86, 0x7523))->bench_kind == "usb-relay");
  BOOST_TEST(RecognizeUsb(device(0x05E3, 0x0610, 0x09))->role == "USB hub");
  BOOST_TEST(RecognizeUsb(device(0x05E3, 0x0626, 0x09, 0x0320))->role == "USB hub (SuperSpeed)");
  BOOST_TEST(!RecognizeUsb(device(0x046D, 0xC52B)).has_value());  // a mouse receiver
  BOOST_TEST(!RecognizeUsb(device(0x0403, 0x6001)).has_value());  // FT232R: no MPSSE
}

}  // namespace tpmlab
