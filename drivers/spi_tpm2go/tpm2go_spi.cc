#include "drivers/tpm2go_spi.h"

#include <algorithm>

namespace tpmlab {

using namespace tpm2go;

Result<std::unique_ptr<Tpm2GoSpiBus>> Tpm2GoSpiBus::Open(UsbContext& usb, Tpm2GoSpiConfig config) {
  TRY_ASSIGN(std::unique_ptr<UsbDevice> device, usb.Open(Match(config)));
  return Open(std::move(device), std::move(config));
}

Result<std::unique_ptr<Tpm2GoSpiBus>> Tpm2GoSpiBus::Open(std::unique_ptr<UsbDevice> device,
                                                         Tpm2GoSpiConfig config) {
  std::unique_ptr<Tpm2GoSpiBus> bus(new Tpm2GoSpiBus(std::move(device), std::move(config)));
  Result<std::unique_ptr<ClaimedInterface>> claim = ClaimedInterface::Claim(*bus->device_, 0);
  if (!claim.ok()) return claim.status().Wrap("TPM2Go");
  bus->claim_ = std::move(claim).value();
  if (bus->holds_chip_select()) {
    Status s = bus->SetCs(true);
    if (!s.ok()) return s.Wrap("TPM2Go " + bus->device_->info().Describe() + ": chip select idle");
  }
  return bus;
}

Tpm2GoSpiBus::~Tpm2GoSpiBus() {
  if (selected_) (void)Deselect();
}

Status Tpm2GoSpiBus::SetCs(bool high) {
  return device_
      ->ControlIn(kRequestIn, kCmdGpioSet, *config_.cs_gpio, high ? 1 : 0, 0, config_.usb_timeout)
      .status()
      .Wrap(std::string("TPM2Go chip select ") + (high ? "high" : "low"));
}

Status Tpm2GoSpiBus::WriteRead(ByteView mosi, uint8_t* miso) {
  const uint16_t len = static_cast<uint16_t>(mosi.size());
  TRY(device_->ControlIn(kRequestIn, kCmdSpi, kSpiWriteRead, len, 0, config_.usb_timeout)
          .status()
          .Wrap("TPM2Go SPI write-read"));
  TRY(device_->BulkOut(kEndpointOut, mosi, config_.usb_timeout).Wrap("TPM2Go SPI MOSI"));
  size_t got = 0;
  for (int attempt = 0; got < len; ++attempt) {
    if (attempt == kInRetries) {
      return Status::Timeout("TPM2Go SPI MISO: " + std::to_string(got) + " of " +
                             std::to_string(len) + " bytes after " + std::to_string(kInRetries) +
                             " reads");
    }
    TRY_ASSIGN(Bytes in, device_->BulkIn(kEndpointIn, len - got, config_.usb_timeout));
    if (miso) std::copy(in.begin(), in.end(), miso + got);
    got += in.size();
  }
  return Status::Ok();
}

Status Tpm2GoSpiBus::Send(ByteView mosi, uint8_t* miso) {
  for (size_t done = 0; done < mosi.size(); done += kMaxTransfer) {
    const size_t n = std::min(kMaxTransfer, mosi.size() - done);
    TRY(WriteRead(mosi.subspan(done, n), miso ? miso + done : nullptr));
  }
  return Status::Ok();
}

Status Tpm2GoSpiBus::Abort(const Status& cause) {
  selected_ = false;
  queue_.clear();
  if (holds_chip_select()) (void)SetCs(true);
  return cause;
}

Status Tpm2GoSpiBus::DoSelect() {
  if (selected_) return Status::Error(Layer::kTransport, "TPM2Go SPI: chip select already asserted");
  if (holds_chip_select()) TRY(SetCs(false));
  selected_ = true;
  return Status::Ok();
}

Status Tpm2GoSpiBus::DoTransfer(ByteView out, MutableByteView in) {
  if (!selected_) return Status::Error(Layer::kHarness, "TPM2Go SPI: transfer without chip select");
  if (in.empty()) {
    queue_.insert(queue_.end(), out.begin(), out.end());
    return Status::Ok();
  }
  // Queued writes and this transfer go out together; MISO of the queued part
  // is discarded.
  const size_t skip = queue_.size();
  Bytes mosi = std::exchange(queue_, {});
  if (out.empty()) {
    mosi.resize(skip + in.size(), 0x00);
  } else {
    mosi.insert(mosi.end(), out.begin(), out.end());
  }
  Bytes miso(mosi.size());
  Status s = Send(mosi, miso.data());
  if (!s.ok()) return Abort(s);
  std::copy(miso.begin() + static_cast<std::ptrdiff_t>(skip), miso.end(), in.begin());
  return Status::Ok();
}

Status Tpm2GoSpiBus::DoDeselect() {
  if (!selected_) return Status::Ok();
  Bytes mosi = std::exchange(queue_, {});
  if (!mosi.empty()) {
    Status s = Send(mosi, nullptr);
    if (!s.ok()) return Abort(s);
  }
  selected_ = false;
  if (holds_chip_select()) TRY(SetCs(true));
  return Status::Ok();
}

SpiBus::Info Tpm2GoSpiBus::DoInfo() const {
  return {"tpm2go", "LetsTrust TPM2Go " + device_->info().Describe() +
                        (holds_chip_select() ? ", CS on GPIO " + std::to_string(*config_.cs_gpio)
                                             : ", CS per transfer (no wait states)")};
}

}  // namespace tpmlab
