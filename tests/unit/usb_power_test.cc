// USB power switches through the fake USB seam: the dcttech HID relay's
// SET_REPORT / GET_REPORT with read-back and one re-open after a protocol
// error, lcus frames, hub port power SET/CLEAR_FEATURE with GET_STATUS
// read-back, ganged and switchless hubs, a USB3 hub's companion, sequences
// with delays on a fake clock; the command switch's opt-in and the manual
// switch refusing without a terminal.
#define BOOST_TEST_MODULE usb_power
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "drivers/fake_usb.h"
#include "usb_transcript.h"
#include "drivers/operator_power.h"
#include "drivers/usb_power.h"

namespace tpmlab {

namespace {

using Kind = UsbTransfer::Kind;
using testing::Lines;
using testing::Strings;
using std::chrono::milliseconds;

UsbDeviceInfo Info(uint16_t vid, uint16_t pid, std::vector<uint8_t> ports, uint16_t bcd = 0x0200) {
  return testing::UsbDeviceAt(vid, pid, 1, std::move(ports), "", bcd);
}

// --- dcttech HID relay ----------------------------------------------------

// A relay board: SET_REPORT FF n / FD n switch relay n; GET_REPORT shows the
// bits in byte 7. `stuck` boards ignore the switch.
struct RelayBoard {
  uint8_t bits = 0;
  bool stuck = false;
  void Attach(FakeUsbDevice& device) {
    device.SetResponder([this](const UsbTransfer& t) -> Result<Bytes> {
      if (t.kind == Kind::kControlOut && t.request == 0x09 && t.data.size() >= 2 && !stuck) {
        const uint8_t bit = static_cast<uint8_t>(1u << (t.data[1] - 1));
        bits = t.data[0] == 0xFF ? (bits | bit) : (bits & ~bit);
      }
      if (t.kind == Kind::kControlIn && t.request == 0x01) {
        return Bytes{'A', 'B', 'C', 'D', 'E', 0, 0, bits};
      }
      return Bytes{};
    });
  }
};

struct RelayFixture {
  FakeUsbContext usb;
  std::shared_ptr<FakeUsbDevice> device = usb.Add(Info(0x16C0, 0x05DF, {3}));
  RelayBoard board;
  FakeClock clock;
  HidRelayConfig config;
  RelayFixture() {
    board.Attach(*device);
    config.channel = 3;
    config.sequence.clock = &clock;
    config.sequence.off_time = milliseconds(2500);
  }
  std::unique_ptr<HidRelayPower> Open() {
    auto relay = HidRelayPower::Open(usb, config);
    BOOST_REQUIRE_MESSAGE(relay.ok(), relay.status().ToString());
    return std::move(relay).value();
  }
};

BOOST_FIXTURE_TEST_CASE(hid_relay_on_off_with_read_back, RelayFixture) {
  auto relay = Open();
  CHECK_LINES(Strings(device->TakeTransfers()), (Lines{"detach 0", "claim 0"}));
  BOOST_REQUIRE(relay->On().ok());
  CHECK_LINES(Strings(device->TakeTransfers()), (Lines{
                  "ctrl-out 21 09 0300 0000 [ff 03]",  // SET_REPORT feature 0: relay 3 on
                  "ctrl-in a1 01 0300 0000 len 8",     // GET_REPORT: byte 7 = bits
              }));
  BOOST_TEST(board.bits == 0x04);
  BOOST_TEST(*relay->ReadState() == 0x04);
  device->TakeTransfers();
  BOOST_REQUIRE(relay->Off(PowerCut::kHard).ok());
  CHECK_LINES(Strings(device->TakeTransfers()),
              (Lines{"ctrl-out 21 09 0300 0000 [fd 03]", "ctrl-in a1 01 0300 0000 len 8"}));
  BOOST_TEST(board.bits == 0x00);
  relay.reset();
  CHECK_LINES(Strings(device->TakeTransfers()), (Lines{"release 0", "attach 0"}));
}

BOOST_FIXTURE_TEST_CASE(hid_relay_cycle_waits_between_off_and_on, RelayFixture) {
  auto relay = Open();
  board.bits = 0x04;
  device->TakeTransfers();
  BOOST_REQUIRE(relay->Cycle(PowerCut::kHard).ok());
  BOOST_TEST(clock.slept() == milliseconds(2500));
  Lines lines = Strings(device->TakeTransfers());
  BOOST_REQUIRE(lines.size() == 4u);
  BOOST_TEST(lines[0] == "ctrl-out 21 09 0300 0000 [fd 03]");
  BOOST_TEST(lines[2] == "ctrl-out 21 09 0300 0000 [ff 03]");
  BOOST_TEST(board.bits == 0x04);
}

BOOST_FIXTURE_TEST_CASE(hid_relay_inverted_wiring, RelayFixture) {
  config.inverted = true;
  auto relay = Open();
  BOOST_REQUIRE(relay->Off(PowerCut::kSoft).ok());
  BOOST_TEST(board.bits == 0x04);  // normally-closed contact: energised cuts power
  BOOST_REQUIRE(relay->On().ok());
  BOOST_TEST(board.bits == 0x00);
}

BOOST_FIXTURE_TEST_CASE(hid_relay_reopens_once_after_a_protocol_error, RelayFixture) {
  auto relay = Open();
  device->TakeTransfers();
  device->FailNext(Status::Error(Layer::kTransport, "USB control OUT: LIBUSB_ERROR_PIPE"));
  Status s = relay->On();
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK_LINES(Strings(device->TakeTransfers()), (Lines{
                  "ctrl-out 21 09 0300 0000 [ff 03]",  // failed
                  "release 0", "attach 0",            // closed
                  "detach 0", "claim 0",              // re-opened
                  "ctrl-out 21 09 0300 0000 [ff 03]", "ctrl-in a1 01 0300 0000 len 8",
              }));
  BOOST_TEST(usb.opens() == 2);
}

BOOST_FIXTURE_TEST_CASE(hid_relay_that_does_not_switch_is_an_error, RelayFixture) {
  auto relay = Open();
  board.stuck = true;
  Status s = relay->On();
  BOOST_TEST(s.layer() == Layer::kTransport);
  BOOST_TEST(s.message().find("relay 3 did not close (state bits 0x00)") != std::string::npos,
             s.message());
  config.verify = false;
  auto blind = Open();
  BOOST_TEST(blind->On().ok());
}

BOOST_AUTO_TEST_CASE(hid_relay_errors) {
  FakeUsbContext usb;
  HidRelayConfig config;
  BOOST_TEST(HidRelayPower::Open(usb, config).status().message().find("no USB device 16c0:05df") !=
             std::string::npos);
  config.channel = 9;
  BOOST_TEST(HidRelayPower::Open(usb, config).status().layer() == Layer::kScenario);
  auto device = usb.Add(Info(0x16C0, 0x05DF, {1}));
  config.channel = 1;
  auto relay = HidRelayPower::Open(usb, config);
  BOOST_REQUIRE(relay.ok());
  usb.Unplug(device);
  Status s = (*relay)->On();
  BOOST_TEST(s.message().find("device gone") != std::string::npos, s.message());
}

// --- lcus relay -----------------------------------------------------------

BOOST_AUTO_TEST_CASE(lcus_frames) {
  BOOST_TEST((LcusRelayPower::Frame(1, true) == Bytes{0xA0, 0x01, 0x01, 0xA2}));
  BOOST_TEST((LcusRelayPower::Frame(1, false) == Bytes{0xA0, 0x01, 0x00, 0xA1}));
  BOOST_TEST((LcusRelayPower::Frame(4, true) == Bytes{0xA0, 0x04, 0x01, 0xA5}));
  FakeUsbContext usb;
  auto device = usb.Add(Info(0x5131, 0x2007, {5}));
  LcusRelayConfig config;
  config.channel = 2;
  auto relay = LcusRelayPower::Open(usb, config);
  BOOST_REQUIRE_MESSAGE(relay.ok(), relay.status().ToString());
  BOOST_REQUIRE((*relay)->On().ok());
  BOOST_REQUIRE((*relay)->Off(PowerCut::kHard).ok());
  CHECK_LINES(Strings(device->TakeTransfers()), (Lines{
                  "detach 0", "claim 0",
                  "int-out 01 [a0 02 01 a3]",
                  "int-out 01 [a0 02 00 a2]",
              }));
  device->FailNext(Status::Timeout("USB interrupt OUT: timeout"));
  BOOST_TEST((*relay)->On().timed_out());
}

// The CH340 variant: the same frames written to a tty (here a pseudo-terminal).
BOOST_AUTO_TEST_CASE(lcus_serial_writes_frames_to_the_tty) {
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  BOOST_REQUIRE(master >= 0);
  BOOST_REQUIRE(grantpt(master) == 0 && unlockpt(master) == 0);
  const std::string slave = ptsname(master);
  auto port = OpenSerialPort(slave, 9600);
  BOOST_REQUIRE_MESSAGE(port.ok(), port.status().ToString());
  LcusRelayConfig config;
  config.channel = 1;
  auto relay = LcusRelayPower::OpenSerial(std::move(port).value(), config);
  BOOST_REQUIRE(relay.ok());
  BOOST_REQUIRE((*relay)->On().ok());
  BOOST_REQUIRE((*relay)->Off(PowerCut::kHard).ok());
  Bytes got;
  while (got.size() < 8) {
    pollfd p{master, POLLIN, 0};
    BOOST_REQUIRE(poll(&p, 1, 2000) == 1);
    uint8_t buf[16];
    ssize_t n = read(master, buf, sizeof buf);
    BOOST_REQUIRE(n > 0);
    got.insert(got.end(), buf, buf + n);
  }
  BOOST_TEST((got == Bytes{0xA0, 0x01, 0x01, 0xA2, 0xA0, 0x01, 0x00, 0xA1}));
  close(master);

  BOOST_TEST(OpenSerialPort("/nonexistent/ttyUSB9").status().message().find("opening /nonexistent/ttyUSB9") !=
             std::string::npos);
  BOOST_TEST(OpenSerialPort(slave, 1234).status().layer() == Layer::kScenario);
}

// A CH340 is a common chip: the lcus board's tty is found only when exactly
// one device matches, never the first of several.
BOOST_AUTO_TEST_CASE(lcus_tty_is_found_for_exactly_one_matching_ch340) {
  FakeUsbContext usb;
  const UsbDeviceInfo board = testing::UsbDeviceAt(0x1A86, 0x7523, 3, {2});
  usb.Add(board);
  std::string dir = (std::filesystem::temp_directory_path() / "tpmlab-sysfs-XXXXXX").string();
  BOOST_REQUIRE(::mkdtemp(dir.data()) != nullptr);
  const std::string sysfs = dir;
  std::filesystem::create_directories(sysfs + "/3-2:1.0/ttyUSB4");
  const UsbMatch ch340{0x1A86, {0x7523}, "", ""};
  auto tty = FindUsbSerialTty(usb, ch340, sysfs);
  BOOST_TEST(tty.ok(), tty.status().ToString());
  if (tty.ok()) BOOST_TEST(*tty == "/dev/ttyUSB4");

  UsbDeviceInfo arduino = board;
  arduino.port_path = {5};
  usb.Add(arduino);
  auto two = FindUsbSerialTty(usb, ch340, sysfs);
  BOOST_TEST(!two.ok());
  BOOST_TEST(two.status().message().find("2 USB-serial devices match") != std::string::npos, two.status().message());
  BOOST_TEST(two.status().message().find("3-5") != std::string::npos, two.status().message());
  auto by_path = FindUsbSerialTty(usb, UsbMatch{0x1A86, {0x7523}, "", "3-5"}, sysfs);
  BOOST_TEST(by_path.status().message().find("has no ttyUSB") != std::string::npos, by_path.status().message());
  std::filesystem::remove_all(sysfs);
}

// --- hub port power -------------------------------------------------------

// A hub: a descriptor with `characteristics`, and per-port power bits that
// follow SET/CLEAR_FEATURE(PORT_POWER) unless `sticky` (the kernel re-powers).
struct HubModel {
  bool superspeed = false;
  uint16_t characteristics = 0x0009;  // per-port power switching
  uint8_t ports = 4;
  std::array<bool, 8> powered{true, true, true, true, true, true, true, true};
  bool sticky = false;
  void Attach(FakeUsbDevice& device) {
    device.SetResponder([this](const UsbTransfer& t) -> Result<Bytes> {
      if (t.kind == Kind::kControlIn && t.request_type == 0xA0 && t.request == 0x06) {
        return Bytes{static_cast<uint8_t>(superspeed ? 12 : 9), static_cast<uint8_t>(superspeed ? 0x2A : 0x29),
                     ports, static_cast<uint8_t>(characteristics), static_cast<uint8_t>(characteristics >> 8),
                     0x32, 0x64, 0, 0};
      }
      if (t.kind == Kind::kControlOut && t.request_type == 0x23 && t.value == 8 && !sticky) {
        powered[t.index] = t.request == 0x03;
      }
      if (t.kind == Kind::kControlIn && t.request_type == 0xA3 && t.request == 0x00) {
        uint16_t status = 0x0001;  // connected
        if (powered[t.index]) status |= superspeed ? 0x0200 : 0x0100;
        return Bytes{static_cast<uint8_t>(status), static_cast<uint8_t>(status >> 8), 0, 0};
      }
      return Bytes{};
    });
  }
};

struct HubFixture {
  FakeUsbContext usb;
  std::shared_ptr<FakeUsbDevice> device = usb.Add(Info(0x05E3, 0x0610, {1}, 0x0210));
  HubModel hub;
  HubPortConfig config;
  HubFixture() {
    hub.Attach(*device);
    config.hub.path = "1-1";
    config.port = 2;
    config.sysfs_usb_devices = "";
  }
  std::unique_ptr<HubPortPower> Open() {
    auto power = HubPortPower::Open(usb, config);
    BOOST_REQUIRE_MESSAGE(power.ok(), power.status().ToString());
    return std::move(power).value();
  }
};

BOOST_FIXTURE_TEST_CASE(hub_port_power_off_on_status, HubFixture) {
  auto power = Open();
  BOOST_TEST(power->warnings().empty());
  CHECK_LINES(Strings(device->TakeTransfers()), (Lines{"ctrl-in a0 06 2900 0000 len 12"}));
  BOOST_TEST(*power->IsPowered());
  device->TakeTransfers();
  BOOST_REQUIRE(power->Off(PowerCut::kHard).ok());
  CHECK_LINES(Strings(device->TakeTransfers()), (Lines{
                  "ctrl-out 23 01 0008 0002 []",     // CLEAR_FEATURE(PORT_POWER), port 2
                  "ctrl-in a3 00 0000 0002 len 4",  // GET_STATUS read-back
              }));
  BOOST_TEST(!hub.powered[2]);
  BOOST_TEST(hub.powered[1]);
  BOOST_TEST(!*power->IsPowered());
  device->TakeTransfers();
  BOOST_REQUIRE(power->On().ok());
  CHECK_LINES(Strings(device->TakeTransfers()),
              (Lines{"ctrl-out 23 03 0008 0002 []", "ctrl-in a3 00 0000 0002 len 4"}));
  BOOST_TEST(hub.powered[2]);
}

// Linux >= 6.0: the port's sysfs `disable` file instead of CLEAR/SET_FEATURE.
BOOST_FIXTURE_TEST_CASE(hub_port_power_through_sysfs_disable, HubFixture) {
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("usb_power_test_" + std::to_string(getpid()));
  const std::filesystem::path port_dir = root / "1-1:1.0" / "1-1-port2";
  std::filesystem::create_directories(port_dir);
  { std::ofstream(port_dir / "disable") << "0\n"; }
  config.sysfs_usb_devices = root;
  // The kernel powers the port as the file says.
  device->SetResponder([&](const UsbTransfer& t) -> Result<Bytes> {
    if (t.request_type == 0xA3) {
      std::ifstream in(port_dir / "disable");
      char c = '0';
      in >> c;
      return Bytes{0x01, static_cast<uint8_t>(c == '1' ? 0x00 : 0x01), 0, 0};
    }
    if (t.request_type == 0xA0) return Bytes{9, 0x29, 4, 0x09, 0, 0x32, 0x64, 0, 0};
    return Bytes{};
  });
  auto power = Open();
  device->TakeTransfers();
  BOOST_REQUIRE(power->Off(PowerCut::kHard).ok());
  CHECK_LINES(Strings(device->TakeTransfers()), (Lines{"ctrl-in a3 00 0000 0002 len 4"}));
  std::string content;
  std::ifstream(port_dir / "disable") >> content;
  BOOST_TEST(content == "1");
  BOOST_REQUIRE(power->On().ok());
  std::ifstream(port_dir / "disable") >> content;
  BOOST_TEST(content == "0");
  std::filesystem::remove_all(root);
}

BOOST_FIXTURE_TEST_CASE(hub_off_repeats_and_cycle_delay, HubFixture) {
  FakeClock clock;
  config.off_repeats = 3;
  config.sequence = {milliseconds(4000), &clock};
  auto power = Open();
  device->TakeTransfers();
  BOOST_REQUIRE(power->Cycle(PowerCut::kHard).ok());
  BOOST_TEST(clock.slept() == milliseconds(4000));
  CHECK_LINES(Strings(device->TakeTransfers()), (Lines{
                  "ctrl-out 23 01 0008 0002 []", "ctrl-out 23 01 0008 0002 []",
                  "ctrl-out 23 01 0008 0002 []", "ctrl-in a3 00 0000 0002 len 4",
                  "ctrl-out 23 03 0008 0002 []", "ctrl-in a3 00 0000 0002 len 4",
              }));
}

BOOST_FIXTURE_TEST_CASE(ganged_and_switchless_hubs_are_warned_about, HubFixture) {
  hub.characteristics = 0x0000;  // ganged
  auto ganged = Open();
  BOOST_REQUIRE(ganged->warnings().size() == 1u);
  BOOST_TEST(ganged->warnings()[0].find("ganged") != std::string::npos);
  hub.characteristics = 0x0002;  // no power switching
  auto none = Open();
  BOOST_REQUIRE(none->warnings().size() == 1u);
  BOOST_TEST(none->warnings()[0].find("no power switching") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(a_port_the_kernel_keeps_powered_is_an_error, HubFixture) {
  hub.sticky = true;
  auto power = Open();
  Status s = power->Off(PowerCut::kHard);
  BOOST_TEST(s.layer() == Layer::kTransport);
  BOOST_TEST(s.message().find("port 2 still powered after switching off (wPortStatus 0x0101)") !=
                 std::string::npos,
             s.message());
}

BOOST_FIXTURE_TEST_CASE(hub_errors, HubFixture) {
  config.port = 7;
  BOOST_TEST(HubPortPower::Open(usb, config).status().message().find("has 4 ports, not port 7") !=
             std::string::npos);
  config.port = 2;
  auto power = Open();
  device->FailNext(Status::Timeout("USB control OUT: timeout"));
  BOOST_TEST(power->On().timed_out());
  config.hub.path = "2-9";
  BOOST_TEST(HubPortPower::Open(usb, config).status().message().find("no USB device") !=
             std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(usb3_hub_switches_its_companion_too, HubFixture) {
  auto ss = usb.Add(Info(0x05E3, 0x0626, {2}, 0x0300));
  HubModel ss_hub;
  ss_hub.superspeed = true;
  ss_hub.Attach(*ss);
  config.companion = UsbMatch{0, {}, "", "1-2"};
  auto power = Open();
  CHECK_LINES(Strings(ss->TakeTransfers()), (Lines{"ctrl-in a0 06 2a00 0000 len 12"}));
  device->TakeTransfers();
  BOOST_REQUIRE(power->Off(PowerCut::kHard).ok());
  BOOST_TEST(!hub.powered[2]);
  BOOST_TEST(!ss_hub.powered[2]);
  CHECK_LINES(Strings(ss->TakeTransfers()),
              (Lines{"ctrl-out 23 01 0008 0002 []", "ctrl-in a3 00 0000 0002 len 4"}));
  BOOST_TEST(!*power->IsPowered());
  BOOST_REQUIRE(power->On().ok());
  BOOST_TEST(ss_hub.powered[2]);
  BOOST_TEST(*power->IsPowered());
  // The SS hub's power bit is 0x0200: a USB2-style 0x0100 would not count.
  ss_hub.sticky = true;
  ss_hub.powered[2] = true;
  BOOST_TEST(power->Off(PowerCut::kHard).message().find("wPortStatus 0x0201") != std::string::npos);
}

// --- command and manual switches -----------------------------------------

BOOST_AUTO_TEST_CASE(command_power_needs_the_bench_opt_in) {
  CommandPowerConfig config;
  config.off = {"/bin/true"};
  config.on = {"/bin/true"};
  auto refused = CommandPower::Create(config);
  BOOST_TEST(refused.status().layer() == Layer::kScenario);
  BOOST_TEST(refused.status().message().find("does not allow running commands") != std::string::npos);
  config.bench_allows_commands = true;
  config.on = {};
  BOOST_TEST(CommandPower::Create(config).status().layer() == Layer::kScenario);
  config.on = {"/bin/false"};
  FakeClock clock;
  config.sequence = {milliseconds(10), &clock};
  auto power = CommandPower::Create(config);
  BOOST_REQUIRE_MESSAGE(power.ok(), power.status().ToString());
  BOOST_TEST((*power)->Off(PowerCut::kHard).ok());
  Status s = (*power)->Cycle(PowerCut::kHard);
  BOOST_TEST(s.message().find("power on command '/bin/false' exited with 1") != std::string::npos,
             s.message());
  BOOST_TEST(clock.slept() == milliseconds(10));
}

BOOST_AUTO_TEST_CASE(manual_power_refuses_without_a_terminal) {
  std::istringstream in("\n");
  std::ostringstream out;
  auto refused = ManualPower::Create(in, out, false, "lab-board-3");
  BOOST_TEST(refused.status().layer() == Layer::kEnvironment);
  BOOST_TEST(refused.status().message().find("no terminal") != std::string::npos);
  BOOST_TEST(out.str().empty());
}

BOOST_AUTO_TEST_CASE(manual_power_asks_and_waits_for_enter) {
  std::istringstream in("\n\n");
  std::ostringstream out;
  auto power = ManualPower::Create(in, out, true, "lab-board-3");
  BOOST_REQUIRE(power.ok());
  BOOST_TEST((*power)->Off(PowerCut::kSoft).ok());
  BOOST_TEST((*power)->On().ok());
  BOOST_TEST(out.str().find("Cut the TPM power of lab-board-3, then press Enter") != std::string::npos,
             out.str());
  BOOST_TEST(out.str().find("Restore the power of lab-board-3") != std::string::npos);
  Status s = (*power)->Off(PowerCut::kHard);  // input ended
  BOOST_TEST(s.message().find("did not confirm") != std::string::npos);
}

}  // namespace
}  // namespace tpmlab
