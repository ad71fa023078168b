// Bench files: the schema and its defaults, errors that name file:line:column,
// the examples in hw/benches, probing, and the safety checks that keep
// destructive operations, and steps a chip cannot undergo, off real chips.
#define BOOST_TEST_MODULE bench
#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>
#include <vector>

#include "drivers/fake_usb.h"
#include "harness/bench.h"
#include "harness/bench_policy.h"
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
  e = ErrorOf("name: x\ndut: {transport: tis-spi-ftdi, spi: {cs_gpio: 4}}\n");
  BOOST_TEST(Contains(e, "dut.spi.cs_gpio is only for transport: tis-spi-tpm2go"), e);
  BOOST_TEST(*Parse("name: g\ndut: {transport: tis-spi-tpm2go, spi: {cs_gpio: 4}}\n").dut.cs_gpio == 4);
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

  // The clock, hierarchies and (on this machine's own TPM) PCR extends.
  Bench host = Parse("name: h\ndut: {transport: device}\nallow: {clock: true}\n");
  BOOST_TEST(CheckAllowed(host, Operation::kClockSet).ok());
  BOOST_TEST(Contains(CheckAllowed(host, Operation::kHierarchy).message(), "set allow.hierarchy: true"));
  BOOST_TEST(Contains(CheckAllowed(host, Operation::kExtend).message(), "attestation fails until it reboots"));
  // A chip tpmlab boots forgets its PCRs at the next power cycle: extends are fine.
  Bench module = Parse("name: m\ndut: {transport: tis-spi-ftdi}\n");
  BOOST_TEST(CheckAllowed(module, Operation::kExtend).ok());
  BOOST_TEST(!CheckAllowed(module, Operation::kClockSet).ok());
  const Bench plain = Parse("name: p\ndut: {transport: emulated}\n");
  for (Operation op : kAllOperations) BOOST_TEST(plain.allow.Get(op), OperationKey(op));
}

// What a bench refuses, judged from what each step asks of the chip, before
// anything runs: steps a real chip cannot undergo at all, and steps its
// allow: keys do not permit, each with where it is written.
BOOST_AUTO_TEST_CASE(policy_names_every_step_a_real_chip_cannot_run_or_does_not_allow) {
  BenchDemand cycle;
  cycle.power_switch = true;
  BenchDemand hang;
  hang.emulator_process = true;
  BenchDemand checkpoint;
  checkpoint.emulator_state = true;
  BenchDemand image;
  image.tpm_image = true;
  image.operation = Operation::kFirmwareInstall;
  BenchDemand model;
  model.firmware_model = true;
  BenchDemand clear;
  clear.operation = Operation::kClear;

  // An emulated bench runs anything, whatever allow: says.
  const Bench emu = Parse("name: e\ndut: {transport: tis-spi-sim}\nallow: {clear: false}\n");
  for (const BenchDemand& d : {cycle, hang, checkpoint, image, model, clear}) BOOST_TEST(UnrunnableOn(d, emu) == "");
  BOOST_TEST(RefusedSteps({{"s.yaml:3:5", "clear", clear}, {"s.yaml:4:5", "fault", hang}}, emu).ok());

  // This machine's own TPM: no power switch, its platform measures its own firmware.
  const Bench host = Parse("name: host\ndut: {transport: device}\npower: {kind: none}\n");
  BOOST_TEST(Contains(UnrunnableOn(cycle, host), "has power: none"));
  BOOST_TEST(Contains(UnrunnableOn(hang, host), "an emulated DUT only"));
  BOOST_TEST(Contains(UnrunnableOn(checkpoint, host), "emulator's NV state"));
  BOOST_TEST(Contains(UnrunnableOn(image, host), "no firmware installer for a real chip"));
  BOOST_TEST(Contains(UnrunnableOn(model, host), "measures its own firmware"));
  BOOST_TEST(UnrunnableOn(clear, host) == "");  // runnable; whether it is allowed is the allow: keys'
  BOOST_TEST(UnrunnableOn(BenchDemand{}, host) == "");

  // A chip tpmlab boots behind a relay: power cycles and firmware models run.
  const Bench module = Parse("name: m\ndut: {transport: tis-spi-ftdi}\npower: {kind: manual}\nallow: {clear: true}\n");
  BOOST_TEST(UnrunnableOn(cycle, module) == "");
  BOOST_TEST(UnrunnableOn(model, module) == "");

  // One error naming the bench file, every step and the key to set.
  const Status refused = RefusedSteps({{"s.yaml:2:5", "boot", BenchDemand{}},
                                       {"s.yaml:3:5", "clear", clear},
                                       {"s.yaml:4:5", "power_cycle", cycle},
                                       {"s.yaml:5:5", "fault", hang}},
                                      host);
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST((refused.layer() == Layer::kScenario));
  const std::string m = refused.message();
  BOOST_TEST(Contains(m, "bench 'host' (b.yaml) is a real chip; these steps cannot run on it:"), m);
  BOOST_TEST(Contains(m, "\n  s.yaml:4:5: power_cycle: a power cycle needs a power switch"), m);
  BOOST_TEST(Contains(m, "\n  s.yaml:5:5: fault: this fault freezes or kills the emulator"), m);
  BOOST_TEST(Contains(m, "\nand it does not allow what this scenario does:\n  s.yaml:3:5: clear needs allow.clear"), m);
  BOOST_TEST(Contains(m, "(set those keys under allow: in the bench file to permit them)"), m);
  BOOST_TEST(!Contains(m, "boot"), m);
  // Allowed, the clear passes; only what cannot run is left.
  const Status allowed = RefusedSteps({{"s.yaml:3:5", "clear", clear}}, module);
  BOOST_TEST(allowed.ok(), allowed.ToString());
  const Status only_refused = RefusedSteps({{"s.yaml:3:5", "clear", clear}}, host);
  BOOST_TEST(only_refused.message() ==
             "bench 'host' (b.yaml) is a real chip does not allow what this scenario does:\n"
             "  s.yaml:3:5: clear needs allow.clear\n(set those keys under allow: in the bench file to permit them)");
}

BOOST_AUTO_TEST_CASE(a_qemu_board_names_its_images_and_refuses_what_a_board_cannot_do) {
  auto board = LoadBench(kBenches + "qemu-ovmf.yaml");
  BOOST_REQUIRE_MESSAGE(board.ok(), board.status().ToString());
  BOOST_TEST(board->is_board());
  BOOST_TEST(!board->emulated());
  BOOST_TEST(!board->harness_boots());
  BOOST_TEST((board->power.kind == PowerKind::kBoard));
  BOOST_TEST((board->boot_log.source == BootLogSource::kAgent));
  BOOST_REQUIRE(board->board.has_value());
  BOOST_TEST(board->board->default_image == "baseline");
  BOOST_TEST(board->board->ImageNames() == "baseline, firmware-blob, secure-boot-off");
  BOOST_TEST(board->board->Image("baseline")->smm);
  BOOST_TEST(!board->board->Image("firmware-blob")->smm);
  BOOST_TEST(board->allow.clear);  // its chip is manufactured for the run

  BenchDemand restart;
  restart.power_switch = true;
  restart.power_cycle_kinds = {PowerCycleKind::kReset, PowerCycleKind::kRestart};
  BOOST_TEST(Contains(UnrunnableOn(restart, *board), "hibernation"));
  BenchDemand resume;
  resume.power_switch = true;
  resume.power_cycle_kinds = {PowerCycleKind::kResume, PowerCycleKind::kPowerLoss, PowerCycleKind::kHardLoss};
  BOOST_TEST(UnrunnableOn(resume, *board) == "");
  BenchDemand hang;
  hang.emulator_process = true;
  BOOST_TEST(Contains(UnrunnableOn(hang, *board), "behind the board's firmware"));
  BenchDemand known, unknown;
  known.firmware_model = unknown.firmware_model = true;
  known.firmware_name = "secure-boot-off";
  unknown.firmware_name = "option-rom";
  BOOST_TEST(UnrunnableOn(known, *board) == "");
  BOOST_TEST(Contains(UnrunnableOn(unknown, *board), "names none 'option-rom'"));
  BOOST_TEST(Contains(RefusedSteps({{"s.yaml:4:5", "firmware_update", unknown}}, *board).message(), "is a QEMU board"));

  const std::string images = "  firmware: {images: {a: {code: c.fd, vars: v.fd}}}\n";
  const Bench minimal = Parse("name: b\ndut: {transport: qemu}\nboard:\n" + images);
  BOOST_TEST(minimal.board->default_image == "a");
  BOOST_TEST(minimal.board->Image("a")->code.string() == "c.fd");  // relative to the bench file's folder
  BOOST_TEST(Contains(ErrorOf("name: b\ndut: {transport: qemu}\n"), "board: goes with dut transport qemu"));
  BOOST_TEST(Contains(ErrorOf("name: b\ndut: {transport: emulated}\nboard:\n" + images), "b.yaml:4:"));
  BOOST_TEST(Contains(ErrorOf("name: b\ndut: {transport: qemu}\nboard:\n  tpm: tpm-spi\n" + images),
                      "board.tpm must be tpm-tis or tpm-crb"));
  BOOST_TEST(Contains(ErrorOf("name: b\ndut: {transport: qemu}\nboard:\n  firmware: {default: z, images: {a: {code: c, vars: v}}}\n"),
                      "names no image: 'z'"));
  BOOST_TEST(Contains(ErrorOf("name: b\ndut: {transport: qemu}\npower: {kind: none}\nboard:\n" + images),
                      "power kind board"));
}

BOOST_AUTO_TEST_CASE(probing_says_what_is_missing) {
  Bench absent = Parse("name: a\ndut: {transport: device, path: /nonexistent/tpmrm7}\nboot_log: {source: file, path: /nonexistent/log.bin}\n");
  auto items = ProbeBench(absent, nullptr, "not looked at");
  BOOST_REQUIRE(items.size() == 3u);
  BOOST_TEST(items[0].part == "dut");
  BOOST_TEST((items[0].state == ProbeState::kMissing));
  BOOST_TEST(Contains(items[0].detail, "/nonexistent/tpmrm7: no TPM device"), items[0].detail);
  BOOST_TEST((items[1].state == ProbeState::kPresent));  // power: none
  BOOST_TEST((items[2].state == ProbeState::kMissing));
  BOOST_TEST(Contains(items[2].detail, "/nonexistent/log.bin"), items[2].detail);

  // Without USB (no usbfs in a container) the USB parts are missing, and say why.
  auto ftdi = LoadBench(kBenches + "ftdi-relay.yaml");
  BOOST_REQUIRE(ftdi.ok());
  items = ProbeBench(*ftdi, nullptr, "USB init: LIBUSB_ERROR_OTHER");
  BOOST_REQUIRE(items.size() == 3u);
  for (size_t i = 0; i < 2; ++i) {  // dut and power
    BOOST_TEST((items[i].state == ProbeState::kMissing), items[i].part);
    BOOST_TEST(Contains(items[i].detail, "USB cannot be enumerated on this machine (USB init: LIBUSB_ERROR_OTHER)"),
               items[i].detail);
  }
  BOOST_TEST(Contains(items[0].detail, "FTDI bridge 0403:6014 serial FT6XYZ01"), items[0].detail);
  BOOST_TEST(Contains(items[1].detail, "dcttech relay 16c0:05df"), items[1].detail);
  auto tpm2go = LoadBench(kBenches + "tpm2go-hub-port.yaml");
  BOOST_REQUIRE(tpm2go.ok());
  items = ProbeBench(*tpm2go, nullptr, "no usbfs");
  BOOST_TEST((items[1].state == ProbeState::kMissing));
  BOOST_TEST(Contains(items[1].detail, "hub 1-1 port 2: USB cannot be enumerated"), items[1].detail);

  Bench cmd = Parse("name: c\ndut: {transport: tis-spi-ftdi}\npower: {kind: command, on_command: 'true', off_command: no-such-switch-tool 3}\n");
  items = ProbeBench(cmd, nullptr, "not looked at");
  BOOST_TEST((items[1].state == ProbeState::kMissing));
  BOOST_TEST(Contains(items[1].detail, "no-such-switch-tool"), items[1].detail);
}

UsbDeviceInfo Device(uint16_t vid, uint16_t pid, std::string serial, std::vector<uint8_t> ports,
                     uint8_t device_class = 0) {
  UsbDeviceInfo d;
  d.vendor_id = vid;
  d.product_id = pid;
  d.serial = std::move(serial);
  d.device_class = device_class;
  d.bus = 1;
  d.port_path = std::move(ports);
  return d;
}

// A USB2 hub that answers GET_DESCRIPTOR(hub) with its port count and
// wHubCharacteristics (bits 0..1: 00 ganged, 01 per port, 1x no switching).
std::shared_ptr<FakeUsbDevice> AddHub(FakeUsbContext& usb, std::vector<uint8_t> at, uint8_t ports,
                                      uint16_t characteristics) {
  auto hub = usb.Add(Device(0x05E3, 0x0610, "", std::move(at), 0x09));
  hub->SetResponder([=](const UsbTransfer& t) -> Result<Bytes> {
    if (t.kind == UsbTransfer::Kind::kControlIn && t.request_type == 0xA0 && t.request == 0x06 && t.value == 0x2900) {
      return Bytes{9, 0x29, ports, static_cast<uint8_t>(characteristics), static_cast<uint8_t>(characteristics >> 8),
                   0x32, 0x64, 0, 0};
    }
    return Bytes{};
  });
  return hub;
}

// The FTDI bench's bridge and relay, next to things it must not mistake for them.
BOOST_AUTO_TEST_CASE(probing_finds_bridge_and_relay_without_opening_them) {
  auto ftdi = LoadBench(kBenches + "ftdi-relay.yaml");
  BOOST_REQUIRE(ftdi.ok());
  FakeUsbContext usb;
  usb.Add(Device(0x046D, 0xC52B, "", {1}));                       // a mouse receiver
  usb.Add(Device(0x0403, 0x6014, "FT0000AA", {2}));              // another FT232H
  auto bridge = usb.Add(Device(0x0403, 0x6014, "FT6XYZ01", {3}));
  auto relay = usb.Add(Device(0x16C0, 0x05DF, "", {4, 1}));
  auto items = ProbeBench(*ftdi, &usb, "");
  BOOST_REQUIRE(items.size() == 3u);
  BOOST_TEST((items[0].state == ProbeState::kPresent), items[0].detail);
  BOOST_TEST(items[0].detail == "FTDI bridge 0403:6014 serial FT6XYZ01 at 1-3");
  BOOST_TEST((items[1].state == ProbeState::kPresent), items[1].detail);
  BOOST_TEST(items[1].detail == "dcttech relay 16c0:05df at 1-4.1");
  // Enumerated only: no open, no transfer, so nothing reaches the DUT.
  BOOST_TEST(usb.opens() == 0);
  BOOST_TEST(bridge->transfers().empty());
  BOOST_TEST(relay->transfers().empty());

  Bench lcus = Parse("name: l\ndut: {transport: tis-spi-ftdi, usb: {serial: FT0000AA}}\n"
                     "power: {kind: usb-relay, relay: lcus, channel: 2}\n");
  usb.Add(Device(0x1A86, 0x7523, "", {5}));
  items = ProbeBench(lcus, &usb, "");
  BOOST_TEST((items[0].state == ProbeState::kPresent), items[0].detail);
  BOOST_TEST(Contains(items[0].detail, "serial FT0000AA at 1-2"), items[0].detail);
  BOOST_TEST((items[1].state == ProbeState::kPresent), items[1].detail);
  BOOST_TEST(items[1].detail == "lcus relay 1a86:7523 at 1-5");
}

BOOST_AUTO_TEST_CASE(probing_says_which_usb_device_is_missing) {
  auto ftdi = LoadBench(kBenches + "ftdi-relay.yaml");
  BOOST_REQUIRE(ftdi.ok());
  FakeUsbContext usb;
  usb.Add(Device(0x046D, 0xC52B, "", {1}));
  usb.Add(Device(0x0403, 0x6014, "FT0000AA", {2}));
  usb.Add(Device(0x16C0, 0x05E0, "", {3}));  // not the relay's pid
  auto items = ProbeBench(*ftdi, &usb, "");
  BOOST_TEST((items[0].state == ProbeState::kMissing));
  BOOST_TEST(Contains(items[0].detail, "FTDI bridge: no USB device 0403:6014 serial FT6XYZ01 among 3 enumerated"),
             items[0].detail);
  BOOST_TEST(Contains(items[0].detail, "with other serials: 0403:6014 serial FT0000AA at 1-2"), items[0].detail);
  BOOST_TEST((items[1].state == ProbeState::kMissing));
  BOOST_TEST(items[1].detail == "dcttech relay: no USB device 16c0:05df among 3 enumerated");

  // Nothing on USB at all (libusb works, the container has no devices).
  FakeUsbContext empty;
  items = ProbeBench(*ftdi, &empty, "");
  BOOST_TEST(items[0].detail == "FTDI bridge: no USB device 0403:6014 serial FT6XYZ01 among 0 enumerated");
}

BOOST_AUTO_TEST_CASE(probing_refuses_to_guess_between_two_bridges) {
  Bench any = Parse("name: f\ndut: {transport: tis-spi-ftdi}\n");
  FakeUsbContext usb;
  usb.Add(Device(0x0403, 0x6014, "FT0000AA", {2}));
  usb.Add(Device(0x0403, 0x6014, "FT0000AB", {3}));
  auto items = ProbeBench(any, &usb, "");
  BOOST_TEST((items[0].state == ProbeState::kMissing));
  BOOST_TEST(Contains(items[0].detail, "2 USB devices match 0403:6014 (0403:6014 serial FT0000AA at 1-2; "
                                       "0403:6014 serial FT0000AB at 1-3)"),
             items[0].detail);
  BOOST_TEST(Contains(items[0].detail, "set dut.usb.serial in the bench file"), items[0].detail);
  // A serial that still fits both asks for a narrower one.
  Bench loose = Parse("name: f\ndut: {transport: tis-spi-ftdi, usb: {serial: FT0000A}}\n");
  items = ProbeBench(loose, &usb, "");
  BOOST_TEST((items[0].state == ProbeState::kMissing));
  BOOST_TEST(Contains(items[0].detail, "narrow dut.usb.serial"), items[0].detail);
}

// An FTDI or relay serial is a substring; the TPM2Go's is a pattern
// searched in the serial, so "^LTT2GO" anchors the start.
BOOST_AUTO_TEST_CASE(serials_are_substrings_or_the_tpm2go_pattern) {
  Bench ftdi = Parse("name: f\ndut: {transport: tis-spi-ftdi, usb: {serial: 6XYZ}}\n");
  FakeUsbContext usb;
  usb.Add(Device(0x0403, 0x6014, "FT6XYZ01", {2}));
  usb.Add(Device(0x365D, 0x1337, "XLTT2GO-0001", {3}));
  usb.Add(Device(0x365D, 0x1337, "LTT2GO-0002", {4}));
  BOOST_TEST((ProbeBench(ftdi, &usb, "")[0].state == ProbeState::kPresent));
  Bench dot = Parse("name: f\ndut: {transport: tis-spi-ftdi, usb: {serial: FT6.YZ}}\n");
  BOOST_TEST((ProbeBench(dot, &usb, "")[0].state == ProbeState::kMissing));  // not a pattern here

  auto tpm2go = LoadBench(kBenches + "tpm2go-hub-port.yaml");  // serial: "^LTT2GO"
  BOOST_REQUIRE(tpm2go.ok());
  const ProbeItem stick = ProbeBench(*tpm2go, &usb, "")[0];
  BOOST_TEST((stick.state == ProbeState::kPresent), stick.detail);
  BOOST_TEST(stick.detail == "TPM2Go 365d:1337 serial LTT2GO-0002 at 1-4");

  // A pattern that cannot compile is a mistake in the file.
  const std::string e = ErrorOf("name: t\ndut:\n  transport: tis-spi-tpm2go\n  usb: {serial: \"LTT2GO-(\"}\n");
  BOOST_TEST(Contains(e, "b.yaml:4:17: dut.usb.serial is a regular expression here"), e);
  Bench paren = Parse("name: f\ndut: {transport: tis-spi-ftdi, usb: {serial: \"FT(\"}}\n");
  BOOST_TEST((ProbeBench(paren, &usb, "")[0].state == ProbeState::kMissing));
}

Bench HubBench(const std::string& hub, int port) {
  return Parse("name: h\ndut: {transport: tis-spi-tpm2go}\npower: {kind: usb-hub-port, hub: \"" + hub +
               "\", port: " + std::to_string(port) + "}\n");
}

BOOST_AUTO_TEST_CASE(probing_reads_the_hub_descriptor) {
  auto tpm2go = LoadBench(kBenches + "tpm2go-hub-port.yaml");  // hub 1-1, port 2
  BOOST_REQUIRE(tpm2go.ok());
  FakeUsbContext usb;
  auto hub = AddHub(usb, {1}, 4, 0x0009);  // per-port power switching
  usb.Add(Device(0x365D, 0x1337, "LTT2GO-0001", {1, 2}));
  auto items = ProbeBench(*tpm2go, &usb, "");
  BOOST_REQUIRE(items.size() == 3u);
  BOOST_TEST((items[0].state == ProbeState::kPresent), items[0].detail);
  BOOST_TEST((items[1].state == ProbeState::kPresent), items[1].detail);
  BOOST_TEST(items[1].detail == "port 2 of hub 05e3:0610 at 1-1 (per-port power switching)");
  // Read, never switched: one GET_DESCRIPTOR, nothing sent to a port.
  BOOST_REQUIRE(hub->transfers().size() == 1u);
  BOOST_TEST(hub->transfers()[0].ToString() == "ctrl-in a0 06 2900 0000 len 12");
}

BOOST_AUTO_TEST_CASE(probing_warns_when_the_hub_cannot_switch_one_port) {
  FakeUsbContext usb;
  AddHub(usb, {1}, 4, 0x0008);  // ganged
  AddHub(usb, {2}, 4, 0x000A);  // no power switching
  ProbeItem ganged = ProbeBench(HubBench("1-1", 3), &usb, "")[1];
  BOOST_TEST((ganged.state == ProbeState::kPresent), ganged.detail);
  BOOST_TEST(Contains(ganged.detail, "port 3 of hub 05e3:0610 at 1-1; warning: "), ganged.detail);
  BOOST_TEST(Contains(ganged.detail, "switches power ganged"), ganged.detail);
  ProbeItem none = ProbeBench(HubBench("1-2", 1), &usb, "")[1];
  BOOST_TEST((none.state == ProbeState::kPresent), none.detail);
  BOOST_TEST(Contains(none.detail, "; warning: "), none.detail);
  BOOST_TEST(Contains(none.detail, "no power switching"), none.detail);
}

BOOST_AUTO_TEST_CASE(probing_says_when_the_hub_port_is_not_there) {
  FakeUsbContext usb;
  AddHub(usb, {3}, 4, 0x0009);
  AddHub(usb, {3, 1}, 7, 0x0009);
  usb.Add(Device(0x0403, 0x6014, "FT0000AA", {1}));
  // Nothing at the location: the hubs there are help to correct it.
  ProbeItem item = ProbeBench(HubBench("1-4", 2), &usb, "")[1];
  BOOST_TEST((item.state == ProbeState::kMissing));
  BOOST_TEST(item.detail == "hub 1-4 port 2: no USB device at 1-4 among 3 enumerated (hubs at 1-3, 1-3.1)");
  // Something at the location that is not a hub.
  item = ProbeBench(HubBench("1-1", 2), &usb, "")[1];
  BOOST_TEST((item.state == ProbeState::kMissing));
  BOOST_TEST(Contains(item.detail, "the device at 1-1 is 0403:6014 serial FT0000AA at 1-1, not a hub"), item.detail);
  // A port the hub does not have.
  item = ProbeBench(HubBench("1-3", 5), &usb, "")[1];
  BOOST_TEST((item.state == ProbeState::kMissing));
  BOOST_TEST(Contains(item.detail, "hub 1-3 port 5: hub 05e3:0610 at 1-3 has 4 ports, not port 5"), item.detail);
  item = ProbeBench(HubBench("1-3.1", 5), &usb, "")[1];
  BOOST_TEST((item.state == ProbeState::kPresent), item.detail);
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
