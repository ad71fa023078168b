// For tests that check the exact USB transfers a driver made: fake device
// descriptions, and transfers compared as text lines ("ctrl-out 40 0b ...").
#pragma once

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "drivers/fake_usb.h"
#include "layer_printing.h"

namespace tpmlab::testing {

using Lines = std::vector<std::string>;

inline Lines Strings(const std::vector<UsbTransfer>& transfers) {
  Lines out;
  for (const UsbTransfer& t : transfers) out.push_back(t.ToString());
  return out;
}

// A USB2 device VID:PID on `bus` at `ports` (the path from the root hub).
inline UsbDeviceInfo UsbDeviceAt(uint16_t vid, uint16_t pid, uint8_t bus, std::vector<uint8_t> ports,
                                 std::string serial = "", uint16_t bcd_usb = 0x0200) {
  UsbDeviceInfo info;
  info.vendor_id = vid;
  info.product_id = pid;
  info.bcd_usb = bcd_usb;
  info.serial = std::move(serial);
  info.bus = bus;
  info.port_path = std::move(ports);
  return info;
}

}  // namespace tpmlab::testing

// Compares two transcripts line by line, naming the first line that differs.
#define CHECK_LINES(actual, expected)                                          \
  do {                                                                         \
    ::tpmlab::testing::Lines a_ = (actual), e_ = (expected);                   \
    BOOST_CHECK_EQUAL_COLLECTIONS(a_.begin(), a_.end(), e_.begin(), e_.end()); \
  } while (0)
