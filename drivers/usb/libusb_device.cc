// The libusb-1.0 implementation of the USB seam. Kept thin: every method is
// one libusb call and one error mapping. Not exercised by the test suite
// (no hardware there); the drivers above it are, through FakeUsb.
#include <libusb.h>

#include "drivers/usb_device.h"

namespace tpmlab {
namespace {

Status UsbError(int rc, const std::string& what, const UsbDeviceInfo* info = nullptr) {
  std::string where = info ? " (" + info->Describe() + ")" : "";
  switch (rc) {
    case LIBUSB_ERROR_TIMEOUT:
      return Status::Timeout("USB " + what + where + ": timeout");
    case LIBUSB_ERROR_NO_DEVICE:
      return Status::Error(Layer::kTransport, "USB " + what + where + ": device gone");
    case LIBUSB_ERROR_ACCESS:
      return Status::Error(Layer::kTransport,
                           "USB " + what + where +
                               ": permission denied (install tpmlab's udev rules from hw/, or run "
                               "as root)");
    default:
      return Status::Error(Layer::kTransport, "USB " + what + where + ": " + libusb_error_name(rc));
  }
}

class LibusbDevice final : public UsbDevice {
 public:
  LibusbDevice(libusb_device_handle* handle, UsbDeviceInfo info)
      : handle_(handle), info_(std::move(info)) {}
  ~LibusbDevice() override { libusb_close(handle_); }

 private:
  const UsbDeviceInfo& DoInfo() const override { return info_; }

  Status DoControlOut(uint8_t request_type, uint8_t request, uint16_t value, uint16_t index,
                      ByteView data, Timeout timeout) override {
    Bytes copy(data.begin(), data.end());
    int rc = libusb_control_transfer(handle_, request_type, request, value, index, copy.data(),
                                     static_cast<uint16_t>(copy.size()),
                                     static_cast<unsigned>(timeout.count()));
    if (rc < 0) return UsbError(rc, "control OUT", &info_);
    if (static_cast<size_t>(rc) != copy.size()) {
      return Status::Error(Layer::kTransport, "USB control OUT (" + info_.Describe() + "): sent " +
                                                  std::to_string(rc) + " of " +
                                                  std::to_string(copy.size()) + " bytes");
    }
    return Status::Ok();
  }
  Result<Bytes> DoControlIn(uint8_t request_type, uint8_t request, uint16_t value,
                            uint16_t index, uint16_t length, Timeout timeout) override {
    Bytes buf(length);
    int rc = libusb_control_transfer(handle_, request_type, request, value, index, buf.data(),
                                     length, static_cast<unsigned>(timeout.count()));
    if (rc < 0) return UsbError(rc, "control IN", &info_);
    buf.resize(static_cast<size_t>(rc));
    return buf;
  }
  Status Out(bool bulk, uint8_t endpoint, ByteView data, Timeout timeout) {
    Bytes copy(data.begin(), data.end());
    int done = 0;
    int rc = bulk ? libusb_bulk_transfer(handle_, endpoint, copy.data(),
                                         static_cast<int>(copy.size()), &done,
                                         static_cast<unsigned>(timeout.count()))
                  : libusb_interrupt_transfer(handle_, endpoint, copy.data(),
                                              static_cast<int>(copy.size()), &done,
                                              static_cast<unsigned>(timeout.count()));
    if (rc < 0) return UsbError(rc, bulk ? "bulk OUT" : "interrupt OUT", &info_);
    if (static_cast<size_t>(done) != copy.size()) {
      return Status::Error(Layer::kTransport, "USB OUT (" + info_.Describe() + "): sent " +
                                                  std::to_string(done) + " of " +
                                                  std::to_string(copy.size()) + " bytes");
    }
    return Status::Ok();
  }
  Result<Bytes> In(bool bulk, uint8_t endpoint, size_t max, Timeout timeout) {
    Bytes buf(max);
    int done = 0;
    int rc = bulk ? libusb_bulk_transfer(handle_, endpoint, buf.data(), static_cast<int>(max),
                                         &done, static_cast<unsigned>(timeout.count()))
                  : libusb_interrupt_transfer(handle_, endpoint, buf.data(),
                                              static_cast<int>(max), &done,
                                              static_cast<unsigned>(timeout.count()));
    if (rc < 0) return UsbError(rc, bulk ? "bulk IN" : "interrupt IN", &info_);
    buf.resize(static_cast<size_t>(done));
    return buf;
  }
  Status DoBulkOut(uint8_t endpoint, ByteView data, Timeout timeout) override {
    return Out(true, endpoint, data, timeout);
  }
  Result<Bytes> DoBulkIn(uint8_t endpoint, size_t max, Timeout timeout) override {
    return In(true, endpoint, max, timeout);
  }
  Status DoInterruptOut(uint8_t endpoint, ByteView data, Timeout timeout) override {
    return Out(false, endpoint, data, timeout);
  }
  Result<Bytes> DoInterruptIn(uint8_t endpoint, size_t max, Timeout timeout) override {
    return In(false, endpoint, max, timeout);
  }
  Status DoClaimInterface(int interface) override {
    int rc = libusb_claim_interface(handle_, interface);
    return rc < 0 ? UsbError(rc, "claim interface", &info_) : Status::Ok();
  }
  Status DoReleaseInterface(int interface) override {
    int rc = libusb_release_interface(handle_, interface);
    return rc < 0 ? UsbError(rc, "release interface", &info_) : Status::Ok();
  }
  Result<bool> DoDetachKernelDriver(int interface) override {
    int active = libusb_kernel_driver_active(handle_, interface);
    if (active == 0 || active == LIBUSB_ERROR_NOT_SUPPORTED) return false;
    if (active < 0) return UsbError(active, "kernel driver query", &info_);
    int rc = libusb_detach_kernel_driver(handle_, interface);
    if (rc < 0) return UsbError(rc, "detach kernel driver", &info_);
    return true;
  }
  Status DoAttachKernelDriver(int interface) override {
    int rc = libusb_attach_kernel_driver(handle_, interface);
    return rc < 0 ? UsbError(rc, "attach kernel driver", &info_) : Status::Ok();
  }

  libusb_device_handle* handle_;
  UsbDeviceInfo info_;
};

class LibusbContext final : public UsbContext {
 public:
  explicit LibusbContext(libusb_context* ctx) : ctx_(ctx) {}
  ~LibusbContext() override { libusb_exit(ctx_); }

 private:
  static std::string ReadString(libusb_device_handle* h, uint8_t index) {
    if (index == 0 || h == nullptr) return "";
    unsigned char buf[256];
    int n = libusb_get_string_descriptor_ascii(h, index, buf, sizeof buf);
    return n > 0 ? std::string(reinterpret_cast<char*>(buf), static_cast<size_t>(n)) : "";
  }

  // Descriptors; strings only when the device can be opened (permissions).
  static UsbDeviceInfo Describe(libusb_device* dev) {
    UsbDeviceInfo info;
    libusb_device_descriptor d{};
    if (libusb_get_device_descriptor(dev, &d) == 0) {
      info.vendor_id = d.idVendor;
      info.product_id = d.idProduct;
      info.bcd_usb = d.bcdUSB;
      info.device_class = d.bDeviceClass;
    }
    info.bus = libusb_get_bus_number(dev);
    uint8_t ports[8];
    int n = libusb_get_port_numbers(dev, ports, sizeof ports);
    if (n > 0) info.port_path.assign(ports, ports + n);
    libusb_device_handle* h = nullptr;
    if (libusb_open(dev, &h) == 0) {
      info.serial = ReadString(h, d.iSerialNumber);
      info.product = ReadString(h, d.iProduct);
      libusb_close(h);
    }
    return info;
  }

  template <typename F>
  Status ForEach(F&& f) {
    libusb_device** list = nullptr;
    ssize_t n = libusb_get_device_list(ctx_, &list);
    if (n < 0) return UsbError(static_cast<int>(n), "enumerate");
    for (ssize_t i = 0; i < n; ++i) {
      if (f(list[i])) break;
    }
    libusb_free_device_list(list, 1);
    return Status::Ok();
  }

  Result<std::vector<UsbDeviceInfo>> DoEnumerate() override {
    std::vector<UsbDeviceInfo> out;
    TRY(ForEach([&](libusb_device* dev) {
      out.push_back(Describe(dev));
      return false;
    }));
    return out;
  }

  Result<std::unique_ptr<UsbDevice>> DoOpen(const UsbDeviceInfo& want) override {
    Result<std::unique_ptr<UsbDevice>> result =
        Status::Error(Layer::kTransport, "USB device " + want.Describe() + " went away");
    TRY(ForEach([&](libusb_device* dev) {
      UsbDeviceInfo info = Describe(dev);
      if (info.Path() != want.Path() || info.vendor_id != want.vendor_id ||
          info.product_id != want.product_id) {
        return false;
      }
      libusb_device_handle* h = nullptr;
      int rc = libusb_open(dev, &h);
      if (rc < 0) {
        result = UsbError(rc, "open", &info);
      } else {
        result = std::unique_ptr<UsbDevice>(new LibusbDevice(h, std::move(info)));
      }
      return true;
    }));
    return result;
  }

  libusb_context* ctx_;
};

}  // namespace

Result<std::unique_ptr<UsbContext>> OpenLibusbContext() {
  libusb_context* ctx = nullptr;
  int rc = libusb_init(&ctx);
  if (rc < 0) return UsbError(rc, "init");
  return std::unique_ptr<UsbContext>(new LibusbContext(ctx));
}

}  // namespace tpmlab
