#include "drivers/ftdi_spi.h"

#include <algorithm>

namespace tpmlab {
namespace ftdi {

Clock ClockFor(uint32_t hz) {
  Clock c;
  if (hz == 0) hz = 1;
  c.divide_by_5 = hz <= 6'000'000;
  const uint32_t base = c.divide_by_5 ? 12'000'000 : 60'000'000;
  // Smallest divisor whose frequency does not exceed hz.
  uint32_t half_periods = (base + 2 * hz - 1) / (2 * hz);  // ceil(base / 2hz)
  uint32_t divisor = half_periods == 0 ? 0 : half_periods - 1;
  divisor = std::min<uint32_t>(divisor, 0xFFFF);
  c.divisor = static_cast<uint16_t>(divisor);
  c.actual_hz = base / ((1 + divisor) * 2);
  return c;
}

}  // namespace ftdi

using namespace ftdi;

Result<std::unique_ptr<FtdiMpsseSpiBus>> FtdiMpsseSpiBus::Open(UsbContext& usb,
                                                               FtdiSpiConfig config) {
  TRY_ASSIGN(std::unique_ptr<UsbDevice> device, usb.Open(config.match));
  return Open(std::move(device), std::move(config));
}

Result<std::unique_ptr<FtdiMpsseSpiBus>> FtdiMpsseSpiBus::Open(std::unique_ptr<UsbDevice> device,
                                                               FtdiSpiConfig config) {
  if (config.interface < 1 || config.interface > 4) {
    return Status::Error(Layer::kScenario, "FTDI interface " + std::to_string(config.interface) +
                                               " (1=A .. 4=D)");
  }
  std::unique_ptr<FtdiMpsseSpiBus> bus(new FtdiMpsseSpiBus(std::move(device), std::move(config)));
  Status s = bus->Init();
  if (!s.ok()) return s.Wrap("FTDI " + bus->device_->info().Describe());
  return bus;
}

FtdiMpsseSpiBus::FtdiMpsseSpiBus(std::unique_ptr<UsbDevice> device, FtdiSpiConfig config)
    : device_(std::move(device)),
      config_(std::move(config)),
      clock_(ClockFor(config_.hz)),
      out_ep_(static_cast<uint8_t>(2 * config_.interface)),
      in_ep_(static_cast<uint8_t>(0x80 | (2 * config_.interface - 1))) {}

FtdiMpsseSpiBus::~FtdiMpsseSpiBus() {
  if (selected_) (void)Deselect();
  if (claim_) (void)Control(kSetBitmode, kBitmodeReset << 8, "leaving MPSSE");
  claim_.reset();
}

Status FtdiMpsseSpiBus::Control(uint8_t request, uint16_t value, const char* what) {
  Status s = device_->ControlOut(kRequestOut, request, value,
                                 static_cast<uint16_t>(config_.interface), {}, config_.usb_timeout);
  return s.Wrap(what);
}

Status FtdiMpsseSpiBus::Init() {
  TRY_ASSIGN(claim_, ClaimedInterface::Claim(*device_, config_.interface - 1));
  TRY(Control(kSioReset, kResetSio, "reset"));
  TRY(Control(kSioReset, kPurgeRx, "purging RX"));
  TRY(Control(kSioReset, kPurgeTx, "purging TX"));
  TRY(Control(kSetLatencyTimer, config_.latency_ms, "setting the latency timer"));
  TRY(Control(kSetBitmode, kBitmodeReset << 8, "resetting the bit mode"));
  TRY(Control(kSetBitmode, kBitmodeMpsse << 8, "entering MPSSE"));
  // MPSSE answers an invalid opcode with FA and the opcode: proof it listens
  // and that the IN stream is in step.
  queue_ = {0xAA, kSendImmediate};
  TRY(Flush().Wrap("MPSSE sync"));
  Result<Bytes> echo = Read(2);
  if (!echo.ok()) return echo.status().Wrap("MPSSE sync");
  if ((*echo)[0] != kBadCommandReply || (*echo)[1] != 0xAA) {
    return Status::Error(Layer::kTransport,
                         "MPSSE sync: expected fa aa, got " + ToHex(*echo) + " (not in MPSSE mode?)");
  }
  queue_ = {clock_.divide_by_5 ? kEnableDiv5 : kDisableDiv5,
            kTckDivisor,
            static_cast<uint8_t>(clock_.divisor),
            static_cast<uint8_t>(clock_.divisor >> 8),
            kLoopbackEnd,
            kSetBitsLow,
            kPinCs,
            kDirection};
  return Flush().Wrap("setting clock and pins");
}

Status FtdiMpsseSpiBus::Flush() {
  if (queue_.empty()) return Status::Ok();
  Bytes out = std::exchange(queue_, {});
  return device_->BulkOut(out_ep_, out, config_.usb_timeout);
}

Result<Bytes> FtdiMpsseSpiBus::Read(size_t n) {
  Bytes data;
  int empty = 0;
  while (data.size() < n) {
    const size_t want = n - data.size();
    const size_t packets = (want + kPacketSize - kStatusBytes - 1) / (kPacketSize - kStatusBytes);
    TRY_ASSIGN(Bytes got, device_->BulkIn(in_ep_, packets * kPacketSize, config_.usb_timeout));
    size_t before = data.size();
    for (size_t p = 0; p < got.size(); p += kPacketSize) {
      const size_t end = std::min(got.size(), p + kPacketSize);
      if (end - p > kStatusBytes) data.insert(data.end(), got.begin() + p + kStatusBytes, got.begin() + end);
    }
    if (data.size() == before && ++empty >= config_.max_empty_reads) {
      return Status::Timeout("FTDI read: " + std::to_string(data.size()) + " of " +
                             std::to_string(n) + " bytes after " + std::to_string(empty) +
                             " empty reads");
    }
  }
  if (data.size() > n) {
    return Status::Error(Layer::kTransport, "FTDI read: " + std::to_string(data.size()) +
                                                " bytes where " + std::to_string(n) +
                                                " were expected (stream out of step)");
  }
  return data;
}

Status FtdiMpsseSpiBus::Abort(const Status& cause) {
  selected_ = false;
  queue_ = {kSetBitsLow, kPinCs, kDirection};
  (void)Flush();
  queue_.clear();
  return cause;
}

Status FtdiMpsseSpiBus::DoSelect() {
  if (selected_) return Status::Error(Layer::kTransport, "FTDI SPI: chip select already asserted");
  queue_.insert(queue_.end(), {kSetBitsLow, 0x00, kDirection});
  selected_ = true;
  return Status::Ok();
}

Status FtdiMpsseSpiBus::DoTransfer(ByteView out, MutableByteView in) {
  if (!selected_) return Status::Error(Layer::kHarness, "FTDI SPI: transfer without chip select");
  size_t n = in.empty() ? out.size() : in.size();
  size_t done = 0;
  while (done < n) {
    const size_t chunk = std::min<size_t>(n - done, 0x10000);
    const uint8_t op = in.empty() ? kWriteBytes : out.empty() ? kReadBytes : kWriteReadBytes;
    queue_.insert(queue_.end(), {op, static_cast<uint8_t>(chunk - 1),
                                 static_cast<uint8_t>((chunk - 1) >> 8)});
    if (!out.empty()) queue_.insert(queue_.end(), out.begin() + done, out.begin() + done + chunk);
    if (!in.empty()) {
      queue_.push_back(kSendImmediate);
      Status s = Flush();
      if (!s.ok()) return Abort(s.Wrap("FTDI SPI transfer"));
      Result<Bytes> got = Read(chunk);
      if (!got.ok()) return Abort(got.status().Wrap("FTDI SPI transfer"));
      std::copy(got->begin(), got->end(), in.begin() + done);
    }
    done += chunk;
  }
  return Status::Ok();
}

Status FtdiMpsseSpiBus::DoDeselect() {
  if (!selected_) return Status::Ok();
  selected_ = false;
  queue_.insert(queue_.end(), {kSetBitsLow, kPinCs, kDirection});
  Status s = Flush();
  if (!s.ok()) return Abort(s.Wrap("FTDI SPI deselect"));
  return Status::Ok();
}

SpiBus::Info FtdiMpsseSpiBus::DoInfo() const {
  return {"ftdi", device_->info().Describe() + " interface " +
                      std::string(1, static_cast<char>('A' + config_.interface - 1)) + ", " +
                      std::to_string(clock_.actual_hz) + " Hz"};
}

}  // namespace tpmlab
