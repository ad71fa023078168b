#include "drivers/usb_device.h"

#include <cstdio>
#include <regex>

namespace tpmlab {
namespace {

std::string Hex4(uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04x", v);
  return buf;
}

}  // namespace

std::string UsbDeviceInfo::Path() const {
  std::string p = std::to_string(bus);
  for (size_t i = 0; i < port_path.size(); ++i) {
    // Appended piecewise: `"-" + std::string` trips GCC 12's -Wrestrict
    // false positive at -O3 (a prepend inside operator+).
    p += i == 0 ? '-' : '.';
    p += std::to_string(port_path[i]);
  }
  return p;
}

std::string UsbDeviceInfo::Describe() const {
  std::string d = Hex4(vendor_id) + ":" + Hex4(product_id);
  if (!serial.empty()) d += " serial " + serial;
  return d + " at " + Path();
}

bool UsbMatch::Matches(const UsbDeviceInfo& info) const {
  if (vendor_id != 0 && info.vendor_id != vendor_id) return false;
  if (!product_ids.empty()) {
    bool any = false;
    for (uint16_t pid : product_ids) any = any || pid == info.product_id;
    if (!any) return false;
  }
  if (!path.empty() && info.Path() != path) return false;
  if (!serial_pattern.empty()) {
    try {
      if (!std::regex_match(info.serial, std::regex(serial_pattern))) return false;
    } catch (const std::regex_error&) {
      return false;
    }
  }
  return true;
}

std::string UsbMatch::Describe() const {
  std::string d = vendor_id ? Hex4(vendor_id) : std::string("*");
  d += ":";
  if (product_ids.empty()) d += "*";
  for (size_t i = 0; i < product_ids.size(); ++i) {
    if (i) d += '|';
    d += Hex4(product_ids[i]);
  }
  if (!serial_pattern.empty()) d += " serial ~ /" + serial_pattern + "/";
  if (!path.empty()) d += " at " + path;
  return d;
}

Result<std::unique_ptr<ClaimedInterface>> ClaimedInterface::Claim(UsbDevice& device,
                                                                  int interface) {
  TRY_ASSIGN(bool detached, device.DetachKernelDriver(interface));
  Status s = device.ClaimInterface(interface);
  if (!s.ok()) {
    if (detached) (void)device.AttachKernelDriver(interface);
    return s.Wrap("claiming interface " + std::to_string(interface) + " of " +
                  device.info().Describe());
  }
  return std::unique_ptr<ClaimedInterface>(new ClaimedInterface(device, interface, detached));
}

ClaimedInterface::~ClaimedInterface() {
  (void)device_.ReleaseInterface(interface_);
  if (reattach_) (void)device_.AttachKernelDriver(interface_);
}

Result<std::unique_ptr<UsbDevice>> UsbContext::Open(const UsbMatch& match) {
  if (!match.serial_pattern.empty()) {
    try {
      std::regex check(match.serial_pattern);
    } catch (const std::regex_error& e) {
      return Status::Error(Layer::kScenario,
                           "USB serial pattern /" + match.serial_pattern + "/: " + e.what());
    }
  }
  TRY_ASSIGN(std::vector<UsbDeviceInfo> all, DoEnumerate());
  std::vector<UsbDeviceInfo> found;
  for (const UsbDeviceInfo& d : all) {
    if (match.Matches(d)) found.push_back(d);
  }
  if (found.empty()) {
    return Status::Error(Layer::kTransport, "no USB device " + match.Describe());
  }
  if (found.size() > 1) {
    std::string list;
    for (const UsbDeviceInfo& d : found) list += (list.empty() ? "" : "; ") + d.Describe();
    return Status::Error(Layer::kTransport, std::to_string(found.size()) + " USB devices match " +
                                                match.Describe() + " (" + list +
                                                "): give a serial pattern or a path");
  }
  return DoOpen(found.front());
}

Result<std::unique_ptr<UsbDevice>> UsbContext::WaitAndOpen(const UsbMatch& match,
                                                           std::chrono::milliseconds timeout,
                                                           Clock& clock,
                                                           Clock::Duration interval) {
  const Clock::TimePoint deadline = clock.Now() + timeout;
  while (true) {
    Result<std::unique_ptr<UsbDevice>> device = Open(match);
    if (device.ok()) return device;
    if (clock.Now() >= deadline) {
      return Status::Timeout("USB device " + match.Describe() + " did not appear within " +
                             std::to_string(timeout.count()) + " ms (last: " +
                             device.status().message() + ")");
    }
    clock.Sleep(interval);
  }
}

}  // namespace tpmlab
