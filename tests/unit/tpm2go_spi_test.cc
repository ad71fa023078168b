// Tpm2GoSpiBus through the fake USB seam: the Cypress vendor sequence for
// every transfer, chip select on the GPIO request held across wait-state
// polls, the 68-byte split, short and missing MISO, transfer errors, a stick
// that went away and came back, and a whole TPM command through the USB byte
// stream into a simulated SPI TPM.
#define BOOST_TEST_MODULE tpm2go_spi
#include <boost/test/unit_test.hpp>

#include <deque>

#include "drivers/fake_transport.h"
#include "drivers/fake_usb.h"
#include "usb_transcript.h"
#include "drivers/tis_registers.h"
#include "drivers/tis_simulator.h"
#include "drivers/tis_spi.h"
#include "tis_over_bus.h"
#include "usb_simulators.h"
#include "drivers/tpm2go_spi.h"

namespace tpmlab {

namespace {

using Kind = UsbTransfer::Kind;
using testing::Lines;
using testing::Strings;

UsbDeviceInfo Stick(std::string serial, uint8_t port = 4) {
  return testing::UsbDeviceAt(0x365D, 0x1337, 3, {1, port}, std::move(serial));
}

// The stick answers bulk IN from a list of MISO chunks; everything else is OK.
void ScriptMiso(FakeUsbDevice& device, std::vector<Bytes> chunks) {
  auto queue = std::make_shared<std::deque<Bytes>>(chunks.begin(), chunks.end());
  device.SetResponder([queue](const UsbTransfer& t) -> Result<Bytes> {
    if (t.kind != Kind::kBulkIn) return Bytes{};
    if (queue->empty()) return Status::Error(Layer::kTransport, "no MISO scripted");
    Bytes b = std::move(queue->front());
    queue->pop_front();
    return b;
  });
}

struct Fixture {
  FakeUsbContext usb;
  std::shared_ptr<FakeUsbDevice> device = usb.Add(Stick("LTT2GO-0042"));
  std::unique_ptr<Tpm2GoSpiBus> bus;

  void Open(std::optional<uint8_t> cs_gpio = 4) {
    Tpm2GoSpiConfig config;
    config.serial_pattern = "LTT2GO-.*";
    config.cs_gpio = cs_gpio;
    auto opened = Tpm2GoSpiBus::Open(usb, config);
    BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
    bus = std::move(opened).value();
    device->TakeTransfers();
  }
};

// The TIS engine's frame: header full duplex, wait-state polls, data, deselect.
Status TisFrame(SpiBus& bus, bool read, uint16_t reg, MutableByteView in, ByteView out) {
  const size_t len = read ? in.size() : out.size();
  const auto header = tis::Header(read, len, 0, reg);
  std::array<uint8_t, 4> miso{};
  TRY(bus.Select());
  SpiSelection selection(bus);
  TRY(bus.Transfer(header, miso));
  uint8_t flow = miso[3];
  while (!(flow & 1)) TRY(bus.Transfer({}, {&flow, 1}));
  TRY(read ? bus.Transfer({}, in) : bus.Transfer(out, {}));
  return selection.Release();
}

BOOST_FIXTURE_TEST_CASE(open_claims_interface_0_and_parks_chip_select_high, Fixture) {
  Tpm2GoSpiConfig config;
  config.cs_gpio = 4;
  auto opened = Tpm2GoSpiBus::Open(usb, config);
  BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  CHECK_LINES(Strings(device->TakeTransfers()),
              (Lines{"detach 0", "claim 0", "ctrl-in c0 db 0004 0001 len 0"}));
  BOOST_TEST((*opened)->holds_chip_select());
  opened->reset();
  CHECK_LINES(Strings(device->TakeTransfers()), (Lines{"release 0", "attach 0"}));
}

BOOST_AUTO_TEST_CASE(the_serial_pattern_chooses_the_stick) {
  FakeUsbContext usb;
  usb.Add(Stick("LTT2GO-0001", 1));
  usb.Add(Stick("LTT2GO-0002", 2));
  Tpm2GoSpiConfig config;
  auto ambiguous = Tpm2GoSpiBus::Open(usb, config);
  BOOST_TEST(ambiguous.status().message().find("2 USB devices match 365d:1337") != std::string::npos);
  config.serial_pattern = ".*0002";
  auto opened = Tpm2GoSpiBus::Open(usb, config);
  BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  BOOST_TEST((*opened)->info().description.find("LTT2GO-0002 at 3-1.2") != std::string::npos);
  config.serial_pattern = "(";
  BOOST_TEST(Tpm2GoSpiBus::Open(usb, config).status().layer() == Layer::kScenario);
}

BOOST_FIXTURE_TEST_CASE(register_read_without_wait_states, Fixture) {
  Open();
  ScriptMiso(*device, {{0xFF, 0xFF, 0xFF, 0x01}, {0xA0, 0x00, 0x00, 0x00}});
  std::array<uint8_t, 4> sts{};
  Status s = TisFrame(*bus, true, tis::kSts, sts, {});
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  BOOST_TEST(sts[0] == 0xA0);
  CHECK_LINES(Strings(device->TakeTransfers()), (Lines{
                  "ctrl-in c0 db 0004 0000 len 0",  // CS low
                  "ctrl-in c0 ca 0003 0004 len 0",  // CY_SPI_WRITEREAD, 4 bytes
                  "bulk-out 01 [83 d4 00 18]",
                  "bulk-in 82 max 4",
                  "ctrl-in c0 ca 0003 0004 len 0",
                  "bulk-out 01 [00 00 00 00]",
                  "bulk-in 82 max 4",
                  "ctrl-in c0 db 0004 0001 len 0",  // CS high
              }));
}

BOOST_FIXTURE_TEST_CASE(register_write_with_wait_states_holds_chip_select, Fixture) {
  Open();
  ScriptMiso(*device, {{0xFF, 0xFF, 0xFF, 0x00}, {0x00}, {0x01}, {0xFF}});
  const uint8_t request_use[] = {tis::kAccessRequestUse};
  Status s = TisFrame(*bus, false, tis::kAccess, {}, request_use);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK_LINES(Strings(device->TakeTransfers()), (Lines{
                  "ctrl-in c0 db 0004 0000 len 0",
                  "ctrl-in c0 ca 0003 0004 len 0",
                  "bulk-out 01 [00 d4 00 00]",
                  "bulk-in 82 max 4",
                  "ctrl-in c0 ca 0003 0001 len 0",  // poll, CS still low
                  "bulk-out 01 [00]",
                  "bulk-in 82 max 1",
                  "ctrl-in c0 ca 0003 0001 len 0",
                  "bulk-out 01 [00]",
                  "bulk-in 82 max 1",
                  "ctrl-in c0 ca 0003 0001 len 0",  // the queued data byte, at Deselect
                  "bulk-out 01 [02]",
                  "bulk-in 82 max 1",
                  "ctrl-in c0 db 0004 0001 len 0",
              }));
}

BOOST_FIXTURE_TEST_CASE(without_a_cs_gpio_each_transfer_frames_itself, Fixture) {
  Open(std::nullopt);
  BOOST_TEST(!bus->holds_chip_select());
  BOOST_TEST(bus->info().description.find("no wait states") != std::string::npos);
  ScriptMiso(*device, {{0xFF, 0xFF, 0xFF, 0x01}, {1, 2, 3, 4}});
  std::array<uint8_t, 4> sts{};
  BOOST_REQUIRE(TisFrame(*bus, true, tis::kSts, sts, {}).ok());
  for (const UsbTransfer& t : device->transfers()) BOOST_TEST(t.request != tpm2go::kCmdGpioSet);
}

// Without CS on a GPIO the stick frames each vendor transfer, so the TIS
// engine sends header and data of a register frame in one transfer: a TPM
// command goes through when the TPM inserts no wait state, and one it does
// insert fails the frame with the reason instead of garbling it.
BOOST_FIXTURE_TEST_CASE(without_a_cs_gpio_whole_frames_carry_a_tpm_command, Fixture) {
  FakeTransport tpm;
  testing::AnswerReversed(tpm);
  TisSimulator::Options options;
  options.burst_count = 32;
  TisSimulator sim(tpm, options);
  Open(std::nullopt);
  device->SetResponder(testing::Tpm2GoFramesToSimulator(sim));
  FakeClock clock;
  TisSpiConfig config;
  config.clock = &clock;
  auto tis = TisSpiTransport::Open(*bus, config);
  BOOST_REQUIRE_MESSAGE(tis.ok(), tis.status().ToString());
  ByteWriter w;
  w.U16(0x8001).U32(150).U32(0x17B);
  for (uint32_t i = 10; i < 150; ++i) w.U8(static_cast<uint8_t>(i));
  const Bytes command = w.Take();
  auto response = (*tis)->Exchange(command);
  BOOST_REQUIRE_MESSAGE(response.ok(), response.status().ToString());
  BOOST_TEST(response->size() == 150u);
  BOOST_TEST(sim.violations().empty());
  // Every vendor transfer was one whole frame: a 4-byte header and its data.
  for (const UsbTransfer& t : device->Transfers(Kind::kBulkOut)) BOOST_TEST(t.data.size() > 4u);

  TisSimulator::Options slow = options;
  slow.wait_states_min = 1;
  slow.wait_states_max = 1;
  TisSimulator stalling(tpm, slow);
  device->SetResponder(testing::Tpm2GoFramesToSimulator(stalling));
  (*tis)->ChipReset();
  auto refused = (*tis)->Exchange(command);
  BOOST_TEST(!refused.ok());
  BOOST_TEST(refused.status().message().find("inserted a wait state") != std::string::npos, refused.status().ToString());
}

BOOST_FIXTURE_TEST_CASE(long_transfers_split_at_68_bytes_and_short_reads_are_completed, Fixture) {
  Open();
  Bytes first(68, 0x11), second(32, 0x22);
  ScriptMiso(*device, {Bytes(first.begin(), first.begin() + 60), Bytes(first.begin() + 60, first.end()),
                       second});
  Bytes in(100);
  BOOST_REQUIRE(bus->Select().ok());
  Status s = bus->Transfer({}, in);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  BOOST_TEST(in[67] == 0x11);
  BOOST_TEST(in[68] == 0x22);
  Lines lines = Strings(device->TakeTransfers());
  BOOST_TEST(lines[1] == "ctrl-in c0 ca 0003 0044 len 0");
  BOOST_TEST(lines[3] == "bulk-in 82 max 68");
  BOOST_TEST(lines[4] == "bulk-in 82 max 8");
  BOOST_TEST(lines[5] == "ctrl-in c0 ca 0003 0020 len 0");
  BOOST_TEST(bus->Deselect().ok());
}

BOOST_FIXTURE_TEST_CASE(miso_that_never_comes_times_out, Fixture) {
  Open();
  ScriptMiso(*device, {{}, {}, {}, {}, {}});
  std::array<uint8_t, 4> sts{};
  Status s = TisFrame(*bus, true, tis::kSts, sts, {});
  BOOST_TEST(s.timed_out());
  BOOST_TEST(s.message().find("0 of 4 bytes after 5 reads") != std::string::npos);
  BOOST_TEST(device->transfers().back().ToString() == "ctrl-in c0 db 0004 0001 len 0");
}

BOOST_FIXTURE_TEST_CASE(transfer_error_releases_chip_select, Fixture) {
  Open();
  ScriptMiso(*device, {{0, 0, 0, 1}, {9, 9, 9, 9}});
  device->FailNext(Status::Error(Layer::kTransport, "USB bulk OUT: LIBUSB_ERROR_PIPE"), 2);
  std::array<uint8_t, 4> sts{};
  Status s = TisFrame(*bus, true, tis::kSts, sts, {});
  BOOST_TEST(s.layer() == Layer::kTransport);
  BOOST_TEST(s.message().find("LIBUSB_ERROR_PIPE") != std::string::npos);
  BOOST_TEST(device->transfers().back().ToString() == "ctrl-in c0 db 0004 0001 len 0");
  BOOST_TEST(bus->Select().ok());  // usable again
  BOOST_TEST(bus->Deselect().ok());
  BOOST_TEST(bus->Transfer({}, {}).layer() == Layer::kHarness);
}

BOOST_FIXTURE_TEST_CASE(a_stick_that_went_away_and_came_back, Fixture) {
  Open();
  usb.Unplug(device, 3);
  std::array<uint8_t, 4> sts{};
  Status s = TisFrame(*bus, true, tis::kSts, sts, {});
  BOOST_TEST(s.message().find("device gone") != std::string::npos);
  bus.reset();

  FakeClock clock;
  auto reopened = usb.WaitAndOpen(Tpm2GoSpiBus::Match({}), std::chrono::seconds(2), clock);
  BOOST_REQUIRE_MESSAGE(reopened.ok(), reopened.status().ToString());
  BOOST_TEST(clock.slept() == std::chrono::milliseconds(300));
  Tpm2GoSpiConfig config;
  config.cs_gpio = 4;
  auto bus2 = Tpm2GoSpiBus::Open(std::move(reopened).value(), config);
  BOOST_REQUIRE_MESSAGE(bus2.ok(), bus2.status().ToString());

  usb.Unplug(device);  // for good
  auto never = usb.WaitAndOpen(Tpm2GoSpiBus::Match({}), std::chrono::seconds(1), clock);
  BOOST_TEST(never.status().timed_out());
  BOOST_TEST(never.status().message().find("did not appear within 1000 ms") != std::string::npos);
}

// The stick's far end: CS on the GPIO request and each write-read forwarded
// into a simulated SPI TPM.
void ForwardToSimulator(FakeUsbDevice& device, TisSimulator& sim) {
  auto miso = std::make_shared<Bytes>();
  device.SetResponder([&sim, miso](const UsbTransfer& t) -> Result<Bytes> {
    if (t.kind == Kind::kControlIn && t.request == tpm2go::kCmdGpioSet) {
      return t.index == 0 ? sim.Select() : sim.Deselect();
    }
    if (t.kind == Kind::kBulkOut) {
      miso->assign(t.data.size(), 0);
      TRY(sim.Transfer(t.data, *miso));
    }
    if (t.kind == Kind::kBulkIn) return std::exchange(*miso, {});
    return Bytes{};
  });
}

BOOST_FIXTURE_TEST_CASE(a_tpm_command_through_the_usb_byte_stream_with_wait_states, Fixture) {
  FakeTransport tpm;
  testing::AnswerReversed(tpm);
  TisSimulator::Options options;
  options.wait_states_min = 1;
  options.wait_states_max = 3;
  options.burst_count = 32;
  TisSimulator sim(tpm, options);
  Open();
  ForwardToSimulator(*device, sim);

  FakeClock clock;
  TisSpiConfig config;
  config.clock = &clock;
  auto tis = TisSpiTransport::Open(*bus, config);
  BOOST_REQUIRE_MESSAGE(tis.ok(), tis.status().ToString());
  testing::ExchangeThroughTis(**tis, sim, tpm, 150);
}

}  // namespace
}  // namespace tpmlab
