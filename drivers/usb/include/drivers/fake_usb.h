// FakeUsb: the USB seam for tests. A FakeUsbDevice records every transfer a
// driver makes (setup packet, endpoint, bytes) and answers IN transfers from
// a script — queued replies, or a responder function that sees each transfer
// (e.g. one that forwards SPI bytes into a TisSimulator). Failures are
// scripted too: the next transfer fails, or the device is gone.
// FakeUsbContext lists fake devices, opens them, and lets a test unplug one
// and have it re-appear after a number of enumerations.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "drivers/usb_device.h"

namespace tpmlab {

struct UsbTransfer {
  enum class Kind {
    kControlOut, kControlIn, kBulkOut, kBulkIn, kInterruptOut, kInterruptIn,
    kClaim, kRelease, kDetach, kAttach,
  };
  Kind kind = Kind::kControlOut;
  uint8_t request_type = 0;
  uint8_t request = 0;
  uint16_t value = 0;
  uint16_t index = 0;    // control: wIndex; claim/detach: the interface
  uint16_t length = 0;   // control IN: wLength; bulk/interrupt IN: max bytes
  uint8_t endpoint = 0;
  Bytes data;            // OUT: what was sent

  bool IsIn() const {
    return kind == Kind::kControlIn || kind == Kind::kBulkIn || kind == Kind::kInterruptIn;
  }
  // "ctrl-out 40 0b 0200 0001 []", "bulk-out 02 [80 08 fb]", "bulk-in 81 max 512"
  std::string ToString() const;
};

class FakeUsbDevice final : public UsbDevice {
 public:
  using Responder = std::function<Result<Bytes>(const UsbTransfer&)>;

  explicit FakeUsbDevice(UsbDeviceInfo info) : info_(std::move(info)) {}

  /// Answers every transfer (OUT ones: the returned bytes are ignored).
  void SetResponder(Responder responder) { responder_ = std::move(responder); }
  /// The next IN transfer with a data stage (when no responder is set)
  /// returns these bytes.
  void QueueIn(Bytes data) { replies_.push_back(std::move(data)); }
  /// The transfer after `skip` more transfers fails with `status`.
  void FailNext(Status status, int skip = 0) { fail_ = status; fail_skip_ = skip; }
  /// Every later call fails with "device gone".
  void SetGone(bool gone) { gone_ = gone; }
  void SetKernelDriverBound(bool bound) { kernel_driver_ = bound; }

  const std::vector<UsbTransfer>& transfers() const { return transfers_; }
  std::vector<UsbTransfer> TakeTransfers() { return std::exchange(transfers_, {}); }
  // The transfers of one kind, e.g. the control transfers a relay made.
  std::vector<UsbTransfer> Transfers(UsbTransfer::Kind kind) const;
  size_t pending_replies() const { return replies_.size(); }
  bool claimed() const { return claimed_; }
  bool kernel_driver_bound() const { return kernel_driver_; }

 private:
  Result<Bytes> Do(UsbTransfer t);

  const UsbDeviceInfo& DoInfo() const override { return info_; }
  Status DoControlOut(uint8_t request_type, uint8_t request, uint16_t value, uint16_t index,
                      ByteView data, Timeout timeout) override;
  Result<Bytes> DoControlIn(uint8_t request_type, uint8_t request, uint16_t value,
                            uint16_t index, uint16_t length, Timeout timeout) override;
  Status DoBulkOut(uint8_t endpoint, ByteView data, Timeout timeout) override;
  Result<Bytes> DoBulkIn(uint8_t endpoint, size_t max, Timeout timeout) override;
  Status DoInterruptOut(uint8_t endpoint, ByteView data, Timeout timeout) override;
  Result<Bytes> DoInterruptIn(uint8_t endpoint, size_t max, Timeout timeout) override;
  Status DoClaimInterface(int interface) override;
  Status DoReleaseInterface(int interface) override;
  Result<bool> DoDetachKernelDriver(int interface) override;
  Status DoAttachKernelDriver(int interface) override;

  UsbDeviceInfo info_;
  Responder responder_;
  std::deque<Bytes> replies_;
  std::optional<Status> fail_;
  int fail_skip_ = 0;
  bool gone_ = false;
  bool kernel_driver_ = true;
  bool claimed_ = false;
  std::vector<UsbTransfer> transfers_;
};

class FakeUsbContext final : public UsbContext {
 public:
  /// Plugs a device in; the context and the test share it.
  std::shared_ptr<FakeUsbDevice> Add(UsbDeviceInfo info);
  /// The device disappears (its transfers fail with "device gone") and
  /// re-appears, as a fresh device, after `enumerations` more enumerations
  /// (-1: never).
  void Unplug(const std::shared_ptr<FakeUsbDevice>& device, int enumerations = -1);
  int opens() const { return opens_; }

 private:
  struct Slot {
    std::shared_ptr<FakeUsbDevice> device;
    int absent_for = 0;  // enumerations until it shows again; -1 never
  };
  Result<std::vector<UsbDeviceInfo>> DoEnumerate() override;
  Result<std::unique_ptr<UsbDevice>> DoOpen(const UsbDeviceInfo& device) override;

  std::vector<Slot> slots_;
  int opens_ = 0;
};

}  // namespace tpmlab
