#include "drivers/fake_usb.h"

#include <cstdio>

namespace tpmlab {
namespace {

std::string H(unsigned v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%0*x", digits, v);
  return buf;
}

// Forwards to a shared FakeUsbDevice (Open hands out owning pointers; the
// test keeps its own reference to the device).
class FakeUsbHandle final : public UsbDevice {
 public:
  explicit FakeUsbHandle(std::shared_ptr<FakeUsbDevice> d) : d_(std::move(d)) {}

 private:
  const UsbDeviceInfo& DoInfo() const override { return d_->info(); }
  Status DoControlOut(uint8_t rt, uint8_t r, uint16_t v, uint16_t i, ByteView data,
                      Timeout t) override {
    return d_->ControlOut(rt, r, v, i, data, t);
  }
  Result<Bytes> DoControlIn(uint8_t rt, uint8_t r, uint16_t v, uint16_t i, uint16_t len,
                            Timeout t) override {
    return d_->ControlIn(rt, r, v, i, len, t);
  }
  Status DoBulkOut(uint8_t ep, ByteView data, Timeout t) override { return d_->BulkOut(ep, data, t); }
  Result<Bytes> DoBulkIn(uint8_t ep, size_t max, Timeout t) override { return d_->BulkIn(ep, max, t); }
  Status DoInterruptOut(uint8_t ep, ByteView data, Timeout t) override {
    return d_->InterruptOut(ep, data, t);
  }
  Result<Bytes> DoInterruptIn(uint8_t ep, size_t max, Timeout t) override {
    return d_->InterruptIn(ep, max, t);
  }
  Status DoClaimInterface(int i) override { return d_->ClaimInterface(i); }
  Status DoReleaseInterface(int i) override { return d_->ReleaseInterface(i); }
  Result<bool> DoDetachKernelDriver(int i) override { return d_->DetachKernelDriver(i); }
  Status DoAttachKernelDriver(int i) override { return d_->AttachKernelDriver(i); }

  std::shared_ptr<FakeUsbDevice> d_;
};

}  // namespace

std::string UsbTransfer::ToString() const {
  std::string bytes = "[";
  // Appended piecewise: `"" + std::string` trips GCC 12's -Wrestrict false
  // positive at -O3 (a prepend inside operator+), as in usb_device.cc.
  for (size_t i = 0; i < data.size(); ++i) {
    if (i) bytes += ' ';
    bytes += H(data[i], 2);
  }
  bytes += "]";
  switch (kind) {
    case Kind::kControlOut:
      return "ctrl-out " + H(request_type, 2) + " " + H(request, 2) + " " + H(value, 4) + " " +
             H(index, 4) + " " + bytes;
    case Kind::kControlIn:
      return "ctrl-in " + H(request_type, 2) + " " + H(request, 2) + " " + H(value, 4) + " " +
             H(index, 4) + " len " + std::to_string(length);
    case Kind::kBulkOut: return "bulk-out " + H(endpoint, 2) + " " + bytes;
    case Kind::kBulkIn: return "bulk-in " + H(endpoint, 2) + " max " + std::to_string(length);
    case Kind::kInterruptOut: return "int-out " + H(endpoint, 2) + " " + bytes;
    case Kind::kInterruptIn: return "int-in " + H(endpoint, 2) + " max " + std::to_string(length);
    case Kind::kClaim: return "claim " + std::to_string(index);
    case Kind::kRelease: return "release " + std::to_string(index);
    case Kind::kDetach: return "detach " + std::to_string(index);
    case Kind::kAttach: return "attach " + std::to_string(index);
  }
  return "?";
}

std::vector<UsbTransfer> FakeUsbDevice::Transfers(UsbTransfer::Kind kind) const {
  std::vector<UsbTransfer> out;
  for (const UsbTransfer& t : transfers_) {
    if (t.kind == kind) out.push_back(t);
  }
  return out;
}

Result<Bytes> FakeUsbDevice::Do(UsbTransfer t) {
  if (gone_) {
    return Status::Error(Layer::kTransport, "USB " + t.ToString() + " (" + info_.Describe() +
                                                "): device gone");
  }
  if (fail_) {
    if (fail_skip_ == 0) {
      Status s = *fail_;
      fail_.reset();
      transfers_.push_back(std::move(t));
      return s;
    }
    --fail_skip_;
  }
  transfers_.push_back(t);
  if (responder_) return responder_(transfers_.back());
  // OUT transfers, and control IN ones without a data stage, need no answer.
  if (!t.IsIn() || (t.kind == UsbTransfer::Kind::kControlIn && t.length == 0)) return Bytes{};
  if (replies_.empty()) {
    return Status::Error(Layer::kTransport, "fake USB: nothing scripted for " + t.ToString());
  }
  Bytes reply = std::move(replies_.front());
  replies_.pop_front();
  return reply;
}

Status FakeUsbDevice::DoControlOut(uint8_t request_type, uint8_t request, uint16_t value,
                                   uint16_t index, ByteView data, Timeout) {
  UsbTransfer t{UsbTransfer::Kind::kControlOut, request_type, request, value, index,
                static_cast<uint16_t>(data.size()), 0, Bytes(data.begin(), data.end())};
  return Do(std::move(t)).status();
}
Result<Bytes> FakeUsbDevice::DoControlIn(uint8_t request_type, uint8_t request, uint16_t value,
                                         uint16_t index, uint16_t length, Timeout) {
  TRY_ASSIGN(Bytes reply,
             Do({UsbTransfer::Kind::kControlIn, request_type, request, value, index, length, 0, {}}));
  if (reply.size() > length) reply.resize(length);
  return reply;
}
Status FakeUsbDevice::DoBulkOut(uint8_t endpoint, ByteView data, Timeout) {
  return Do({UsbTransfer::Kind::kBulkOut, 0, 0, 0, 0, static_cast<uint16_t>(data.size()),
             endpoint, Bytes(data.begin(), data.end())})
      .status();
}
Result<Bytes> FakeUsbDevice::DoBulkIn(uint8_t endpoint, size_t max, Timeout) {
  TRY_ASSIGN(Bytes reply, Do({UsbTransfer::Kind::kBulkIn, 0, 0, 0, 0,
                              static_cast<uint16_t>(max), endpoint, {}}));
  if (reply.size() > max) reply.resize(max);
  return reply;
}
Status FakeUsbDevice::DoInterruptOut(uint8_t endpoint, ByteView data, Timeout) {
  return Do({UsbTransfer::Kind::kInterruptOut, 0, 0, 0, 0, static_cast<uint16_t>(data.size()),
             endpoint, Bytes(data.begin(), data.end())})
      .status();
}
Result<Bytes> FakeUsbDevice::DoInterruptIn(uint8_t endpoint, size_t max, Timeout) {
  TRY_ASSIGN(Bytes reply, Do({UsbTransfer::Kind::kInterruptIn, 0, 0, 0, 0,
                              static_cast<uint16_t>(max), endpoint, {}}));
  if (reply.size() > max) reply.resize(max);
  return reply;
}
Status FakeUsbDevice::DoClaimInterface(int interface) {
  TRY(Do({UsbTransfer::Kind::kClaim, 0, 0, 0, static_cast<uint16_t>(interface), 0, 0, {}}));
  if (kernel_driver_) {
    return Status::Error(Layer::kTransport, "USB claim interface: busy (kernel driver bound)");
  }
  claimed_ = true;
  return Status::Ok();
}
Status FakeUsbDevice::DoReleaseInterface(int interface) {
  TRY(Do({UsbTransfer::Kind::kRelease, 0, 0, 0, static_cast<uint16_t>(interface), 0, 0, {}}));
  claimed_ = false;
  return Status::Ok();
}
Result<bool> FakeUsbDevice::DoDetachKernelDriver(int interface) {
  TRY(Do({UsbTransfer::Kind::kDetach, 0, 0, 0, static_cast<uint16_t>(interface), 0, 0, {}}));
  return std::exchange(kernel_driver_, false);
}
Status FakeUsbDevice::DoAttachKernelDriver(int interface) {
  TRY(Do({UsbTransfer::Kind::kAttach, 0, 0, 0, static_cast<uint16_t>(interface), 0, 0, {}}));
  kernel_driver_ = true;
  return Status::Ok();
}

std::shared_ptr<FakeUsbDevice> FakeUsbContext::Add(UsbDeviceInfo info) {
  auto device = std::make_shared<FakeUsbDevice>(std::move(info));
  slots_.push_back({device, 0});
  return device;
}

void FakeUsbContext::Unplug(const std::shared_ptr<FakeUsbDevice>& device, int enumerations) {
  for (Slot& slot : slots_) {
    if (slot.device != device) continue;
    device->SetGone(true);
    slot.absent_for = enumerations < 0 ? -1 : enumerations + 1;
  }
}

Result<std::vector<UsbDeviceInfo>> FakeUsbContext::DoEnumerate() {
  std::vector<UsbDeviceInfo> out;
  for (Slot& slot : slots_) {
    if (slot.absent_for > 0 && --slot.absent_for == 0) slot.device->SetGone(false);
    if (slot.absent_for == 0) out.push_back(slot.device->info());
  }
  return out;
}

Result<std::unique_ptr<UsbDevice>> FakeUsbContext::DoOpen(const UsbDeviceInfo& want) {
  for (Slot& slot : slots_) {
    const UsbDeviceInfo& info = slot.device->info();
    if (slot.absent_for == 0 && info.Path() == want.Path() && info.vendor_id == want.vendor_id &&
        info.product_id == want.product_id) {
      ++opens_;
      return std::unique_ptr<UsbDevice>(new FakeUsbHandle(slot.device));
    }
  }
  return Status::Error(Layer::kTransport, "USB open " + want.Describe() + ": device gone");
}

}  // namespace tpmlab
