// FtdiMpsseSpiBus through the fake USB seam: the exact control requests and
// MPSSE byte streams for open, TIS register reads and writes with and without
// wait states (chip select held across the polls), the clock divisor,
// transfer errors, a device that went away and a read that times out; and a
// TPM command from the TIS engine through the MPSSE byte stream into a
// simulated SPI TPM.
#define BOOST_TEST_MODULE ftdi_spi
#include <boost/test/unit_test.hpp>

#include "drivers/fake_transport.h"
#include "drivers/fake_usb.h"
#include "usb_transcript.h"
#include "drivers/ftdi_spi.h"
#include "drivers/tis_registers.h"
#include "drivers/tis_simulator.h"
#include "drivers/tis_spi.h"
#include "tis_over_bus.h"
#include "usb_simulators.h"

namespace tpmlab {

namespace {

using Kind = UsbTransfer::Kind;
using testing::Lines;
using testing::Strings;

UsbDeviceInfo Ft232h(std::string serial = "FT5XYZ", uint8_t port = 2) {
  return testing::UsbDeviceAt(0x0403, 0x6014, 1, {port}, std::move(serial));
}

Bytes Packet(const Bytes& data) { return testing::MpssePacket(data); }

struct Fixture {
  FakeUsbContext usb;
  std::shared_ptr<FakeUsbDevice> device = usb.Add(Ft232h());
  std::unique_ptr<FtdiMpsseSpiBus> bus;

  void Open(uint32_t hz = 1'000'000) {
    device->QueueIn(Packet({0xFA, 0xAA}));
    FtdiSpiConfig config;
    config.hz = hz;
    config.max_empty_reads = 3;
    auto opened = FtdiMpsseSpiBus::Open(usb, config);
    BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
    bus = std::move(opened).value();
    device->TakeTransfers();
  }
};

BOOST_AUTO_TEST_CASE(clock_divisor) {
  auto c = ftdi::ClockFor(15'000'000);
  BOOST_TEST(!c.divide_by_5);
  BOOST_TEST(c.divisor == 1);
  BOOST_TEST(c.actual_hz == 15'000'000u);
  c = ftdi::ClockFor(1'000'000);
  BOOST_TEST(c.divide_by_5);
  BOOST_TEST(c.divisor == 5);
  BOOST_TEST(c.actual_hz == 1'000'000u);
  c = ftdi::ClockFor(7'000'000);  // never faster than asked: 6 MHz
  BOOST_TEST(!c.divide_by_5);
  BOOST_TEST(c.divisor == 4);
  BOOST_TEST(c.actual_hz == 6'000'000u);
  c = ftdi::ClockFor(100);
  BOOST_TEST(c.divisor == 59999);
  BOOST_TEST(c.actual_hz == 100u);
  c = ftdi::ClockFor(50);  // below the slowest clock: the divisor saturates
  BOOST_TEST(c.divisor == 0xFFFF);
}

BOOST_FIXTURE_TEST_CASE(open_resets_purges_enters_mpsse_and_sets_clock_and_pins, Fixture) {
  device->QueueIn(Packet({0xFA, 0xAA}));
  FtdiSpiConfig config;
  config.hz = 15'000'000;
  auto opened = FtdiMpsseSpiBus::Open(usb, config);
  BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  CHECK_LINES(Strings(device->TakeTransfers()), (Lines{
                  "detach 0",
                  "claim 0",
                  "ctrl-out 40 00 0000 0001 []",  // SIO_RESET
                  "ctrl-out 40 00 0001 0001 []",  // purge RX
                  "ctrl-out 40 00 0002 0001 []",  // purge TX
                  "ctrl-out 40 09 0002 0001 []",  // latency 2 ms
                  "ctrl-out 40 0b 0000 0001 []",  // bit mode reset
                  "ctrl-out 40 0b 0200 0001 []",  // MPSSE
                  "bulk-out 02 [aa 87]",          // bad opcode: expect fa aa
                  "bulk-in 81 max 512",
                  "bulk-out 02 [8a 86 01 00 85 80 08 fb]",  // 60 MHz base, /4, no loopback, CS high
              }));
  BOOST_TEST(device->claimed());
  BOOST_TEST((*opened)->info().description.find("15000000 Hz") != std::string::npos);
  opened->reset();
  // Closing leaves MPSSE, releases the interface and gives ftdi_sio back.
  CHECK_LINES(Strings(device->TakeTransfers()),
              (Lines{"ctrl-out 40 0b 0000 0001 []", "release 0", "attach 0"}));
  BOOST_TEST(device->kernel_driver_bound());
}

BOOST_FIXTURE_TEST_CASE(open_fails_when_mpsse_does_not_echo, Fixture) {
  device->QueueIn(Packet({0x00, 0x00}));
  auto opened = FtdiMpsseSpiBus::Open(usb, FtdiSpiConfig{});
  BOOST_REQUIRE(!opened.ok());
  BOOST_TEST(opened.status().layer() == Layer::kTransport);
  BOOST_TEST(opened.status().message().find("MPSSE sync") != std::string::npos);
  BOOST_TEST(device->kernel_driver_bound());  // given back on failure
}

BOOST_AUTO_TEST_CASE(open_picks_the_device_by_serial_pattern) {
  FakeUsbContext usb;
  usb.Add(Ft232h("FT111", 2));
  auto wanted = usb.Add(Ft232h("FT222", 3));
  auto ambiguous = FtdiMpsseSpiBus::Open(usb, FtdiSpiConfig{});
  BOOST_REQUIRE(!ambiguous.ok());
  BOOST_TEST(ambiguous.status().message().find("2 USB devices match") != std::string::npos);
  BOOST_TEST(ambiguous.status().message().find("FT111") != std::string::npos);

  wanted->QueueIn(Packet({0xFA, 0xAA}));
  FtdiSpiConfig config;
  config.match.serial_pattern = "FT2.*";
  auto opened = FtdiMpsseSpiBus::Open(usb, config);
  BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  BOOST_TEST((*opened)->info().description.find("FT222 at 1-3") != std::string::npos);

  config.match.serial_pattern = "nope";
  auto none = FtdiMpsseSpiBus::Open(usb, config);
  BOOST_TEST(none.status().message().find("no USB device 0403:6014|6010|6011 serial ~ /nope/") !=
             std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(interface_b_uses_its_endpoints_and_index, Fixture) {
  device->QueueIn(Packet({0xFA, 0xAA}));
  FtdiSpiConfig config;
  config.interface = 2;
  auto opened = FtdiMpsseSpiBus::Open(usb, config);
  BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  Lines lines = Strings(device->TakeTransfers());
  BOOST_TEST(lines[1] == "claim 1");
  BOOST_TEST(lines[2] == "ctrl-out 40 00 0000 0002 []");
  BOOST_TEST(lines[8] == "bulk-out 04 [aa 87]");
  BOOST_TEST(lines[9] == "bulk-in 83 max 512");
}

// The TIS engine's frame: header full duplex, wait-state polls, data, deselect.
Status TisFrame(SpiBus& bus, bool read, uint16_t reg, MutableByteView in, ByteView out,
                int* polls = nullptr) {
  const size_t len = read ? in.size() : out.size();
  const auto header = tis::Header(read, len, 0, reg);
  std::array<uint8_t, 4> miso{};
  TRY(bus.Select());
  SpiSelection selection(bus);
  TRY(bus.Transfer(header, miso));
  uint8_t flow = miso[3];
  while (!(flow & 1)) {
    TRY(bus.Transfer({}, {&flow, 1}));
    if (polls) ++*polls;
  }
  TRY(read ? bus.Transfer({}, in) : bus.Transfer(out, {}));
  return selection.Release();
}

BOOST_FIXTURE_TEST_CASE(register_read_without_wait_states, Fixture) {
  Open();
  device->QueueIn(Packet({0xFF, 0xFF, 0xFF, 0x01}));
  device->QueueIn(Packet({0x90, 0x00, 0x40, 0x04}));
  std::array<uint8_t, 4> sts{};
  Status s = TisFrame(*bus, true, tis::kSts, sts, {});
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  BOOST_TEST(sts[0] == 0x90);
  BOOST_TEST(sts[3] == 0x04);
  CHECK_LINES(Strings(device->TakeTransfers()), (Lines{
                  "bulk-out 02 [80 00 fb 31 03 00 83 d4 00 18 87]",  // CS low, header 83 D4 00 18
                  "bulk-in 81 max 512",
                  "bulk-out 02 [20 03 00 87]",  // read 4
                  "bulk-in 81 max 512",
                  "bulk-out 02 [80 08 fb]",  // CS high
              }));
}

BOOST_FIXTURE_TEST_CASE(register_read_with_wait_states_holds_chip_select, Fixture) {
  Open();
  device->QueueIn(Packet({0xFF, 0xFF, 0xFF, 0x00}));  // stall
  device->QueueIn(Packet({0x00}));
  device->QueueIn(Packet({0x00}));
  device->QueueIn(Packet({0x01}));
  device->QueueIn(Packet({0x00, 0x01, 0x1B, 0x00}));
  std::array<uint8_t, 4> did_vid{};
  int polls = 0;
  Status s = TisFrame(*bus, true, tis::kDidVid, did_vid, {}, &polls);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  BOOST_TEST(polls == 3);
  BOOST_TEST(did_vid[2] == 0x1B);
  CHECK_LINES(Strings(device->TakeTransfers()), (Lines{
                  "bulk-out 02 [80 00 fb 31 03 00 83 d4 0f 00 87]",
                  "bulk-in 81 max 512",
                  "bulk-out 02 [20 00 00 87]",  // one-byte polls, CS still low
                  "bulk-in 81 max 512",
                  "bulk-out 02 [20 00 00 87]",
                  "bulk-in 81 max 512",
                  "bulk-out 02 [20 00 00 87]",
                  "bulk-in 81 max 512",
                  "bulk-out 02 [20 03 00 87]",
                  "bulk-in 81 max 512",
                  "bulk-out 02 [80 08 fb]",
              }));
}

BOOST_FIXTURE_TEST_CASE(register_write_with_and_without_wait_states, Fixture) {
  Open();
  const uint8_t request_use[] = {tis::kAccessRequestUse};
  device->QueueIn(Packet({0xFF, 0xFF, 0xFF, 0x01}));
  Status s = TisFrame(*bus, false, tis::kAccess, {}, request_use);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK_LINES(Strings(device->TakeTransfers()), (Lines{
                  "bulk-out 02 [80 00 fb 31 03 00 00 d4 00 00 87]",
                  "bulk-in 81 max 512",
                  "bulk-out 02 [11 00 00 02 80 08 fb]",  // data and CS high in one write
              }));

  device->QueueIn(Packet({0xFF, 0xFF, 0xFF, 0x00}));
  device->QueueIn(Packet({0x01}));
  s = TisFrame(*bus, false, tis::kAccess, {}, request_use);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK_LINES(Strings(device->TakeTransfers()), (Lines{
                  "bulk-out 02 [80 00 fb 31 03 00 00 d4 00 00 87]",
                  "bulk-in 81 max 512",
                  "bulk-out 02 [20 00 00 87]",
                  "bulk-in 81 max 512",
                  "bulk-out 02 [11 00 00 02 80 08 fb]",
              }));
}

BOOST_FIXTURE_TEST_CASE(data_split_across_packets_loses_every_status_pair, Fixture) {
  Open();
  // 600 bytes come back as a 512-byte packet (510 data) and a second one (90).
  Bytes first;
  for (int i = 0; i < 600; ++i) {
    if (i == 0 || i == 510) {
      first.push_back(0x32);
      first.push_back(0x60);
    }
    first.push_back(static_cast<uint8_t>(i));
  }
  device->QueueIn(first);
  Bytes in(600);
  BOOST_REQUIRE(bus->Select().ok());
  Status s = bus->Transfer({}, in);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  for (int i = 0; i < 600; ++i) BOOST_TEST_REQUIRE(in[i] == static_cast<uint8_t>(i));
  BOOST_TEST(bus->Deselect().ok());
}

BOOST_FIXTURE_TEST_CASE(use_errors, Fixture) {
  Open();
  uint8_t b = 0;
  BOOST_TEST(bus->Transfer({}, {&b, 1}).layer() == Layer::kHarness);
  BOOST_TEST(bus->Select().ok());
  BOOST_TEST(bus->Select().layer() == Layer::kTransport);
  BOOST_TEST(bus->Deselect().ok());
  BOOST_TEST(bus->Deselect().ok());  // harmless when not selected
}

BOOST_FIXTURE_TEST_CASE(transfer_error_releases_chip_select, Fixture) {
  Open();
  device->FailNext(Status::Error(Layer::kTransport, "USB bulk OUT: LIBUSB_ERROR_IO"));
  std::array<uint8_t, 4> sts{};
  Status s = TisFrame(*bus, true, tis::kSts, sts, {});
  BOOST_TEST(s.layer() == Layer::kTransport);
  BOOST_TEST(s.message().find("LIBUSB_ERROR_IO") != std::string::npos);
  Lines lines = Strings(device->TakeTransfers());
  BOOST_REQUIRE(lines.size() == 2u);
  BOOST_TEST(lines.back() == "bulk-out 02 [80 08 fb]");  // best-effort CS high
  // The bus is usable again.
  device->QueueIn(Packet({0, 0, 0, 1}));
  device->QueueIn(Packet({1, 2, 3, 4}));
  s = TisFrame(*bus, true, tis::kSts, sts, {});
  BOOST_TEST(s.ok());
}

BOOST_FIXTURE_TEST_CASE(device_gone, Fixture) {
  Open();
  device->SetGone(true);
  std::array<uint8_t, 4> sts{};
  Status s = TisFrame(*bus, true, tis::kSts, sts, {});
  BOOST_TEST(s.layer() == Layer::kTransport);
  BOOST_TEST(s.message().find("device gone") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(read_times_out_when_only_status_bytes_come, Fixture) {
  Open();
  device->SetResponder([](const UsbTransfer& t) -> Result<Bytes> {
    if (t.kind == Kind::kBulkIn) return Bytes{0x32, 0x60};
    return Bytes{};
  });
  std::array<uint8_t, 4> sts{};
  Status s = TisFrame(*bus, true, tis::kSts, sts, {});
  BOOST_TEST(s.timed_out());
  BOOST_TEST(s.message().find("0 of 4 bytes after 3 empty reads") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(a_tpm_command_through_the_mpsse_byte_stream_with_wait_states, Fixture) {
  FakeTransport tpm;
  testing::AnswerReversed(tpm);
  TisSimulator::Options options;
  options.wait_states_min = 0;
  options.wait_states_max = 4;
  options.burst_count = 48;
  TisSimulator sim(tpm, options);
  device->SetResponder(testing::MpsseToSimulator(sim));
  FtdiSpiConfig config;
  config.hz = 15'000'000;
  auto opened = FtdiMpsseSpiBus::Open(usb, config);
  BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());

  FakeClock clock;
  TisSpiConfig tis_config;
  tis_config.clock = &clock;
  auto tis = TisSpiTransport::Open(**opened, tis_config);
  BOOST_REQUIRE_MESSAGE(tis.ok(), tis.status().ToString());
  testing::ExchangeThroughTis(**tis, sim, tpm, 200);
}

}  // namespace
}  // namespace tpmlab
