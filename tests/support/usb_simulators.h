// Simulated USB parts, for tests that drive a bench's USB protocols end to
// end without hardware: an FTDI MPSSE engine and a TPM2Go whose SPI side is
// wired to a simulated SPI TPM, a USB2 hub with per-port power switching,
// and a dcttech HID relay board.
#pragma once

#include <algorithm>
#include <array>
#include <functional>
#include <memory>
#include <utility>

#include "drivers/fake_usb.h"
#include "drivers/ftdi_spi.h"
#include "drivers/tis_simulator.h"

namespace tpmlab::testing {

// One bulk IN packet of an FTDI chip: two modem-status bytes, then the data.
inline Bytes MpssePacket(const Bytes& data) {
  Bytes p(data.size() + 2);
  p[0] = 0x32;
  p[1] = 0x60;
  for (size_t i = 0; i < data.size(); ++i) p[i + 2] = data[i];
  return p;
}

// The chip's far end: an MPSSE interpreter that drives a simulated SPI TPM
// (CS on ADBUS3) and queues what it clocked in for the next bulk IN. A SIO
// reset or RX purge drops what was queued, as the chip does.
class MpsseToSimulator {
 public:
  explicit MpsseToSimulator(TisSimulator& sim) : sim_(sim) {}
  Result<Bytes> operator()(const UsbTransfer& t) {
    using Kind = UsbTransfer::Kind;
    if (t.kind == Kind::kControlOut && t.request == ftdi::kSioReset) pending_.clear();
    if (t.kind == Kind::kBulkIn) {
      Bytes packet = MpssePacket(pending_);
      pending_.clear();
      return packet;
    }
    if (t.kind != Kind::kBulkOut) return Bytes{};
    const Bytes& d = t.data;
    for (size_t i = 0; i < d.size();) {
      const uint8_t op = d[i++];
      // A command cut short is the driver's bug: answer as the chip would to
      // an opcode it cannot parse.
      if ((op == 0x80 || op == 0x86 || op == 0x31 || op == 0x11 || op == 0x20) && i + 2 > d.size()) {
        pending_.push_back(ftdi::kBadCommandReply);
        pending_.push_back(op);
        break;
      }
      auto length = [&] {
        size_t n = size_t{d[i]} + (size_t{d[i + 1]} << 8) + 1;
        i += 2;
        return n;
      };
      switch (op) {
        case 0x80: {
          const bool cs_high = d[i] & ftdi::kPinCs;
          i += 2;
          if (!cs_high && cs_high_) TRY(sim_.Select());
          if (cs_high && !cs_high_) TRY(sim_.Deselect());
          cs_high_ = cs_high;
          break;
        }
        case 0x31: case 0x11: {
          const size_t n = length();
          if (i + n > d.size()) return Status::Error(Layer::kTransport, "MPSSE write longer than its bulk transfer");
          Bytes miso(n);
          TRY(sim_.Transfer(ByteView(d).subspan(i, n), op == 0x31 ? MutableByteView(miso) : MutableByteView()));
          if (op == 0x31) pending_.insert(pending_.end(), miso.begin(), miso.end());
          i += n;
          break;
        }
        case 0x20: {
          Bytes miso(length());
          TRY(sim_.Transfer({}, miso));
          pending_.insert(pending_.end(), miso.begin(), miso.end());
          break;
        }
        case 0x86: i += 2; break;
        case 0x87: case 0x8A: case 0x8B: case 0x85: break;
        default:
          pending_.push_back(ftdi::kBadCommandReply);
          pending_.push_back(op);
      }
    }
    return Bytes{};
  }

 private:
  TisSimulator& sim_;
  Bytes pending_;
  bool cs_high_ = true;
};

// A USB2 hub with per-port power switching (wHubCharacteristics 0x0009):
// SET/CLEAR_FEATURE(PORT_POWER) switch a port, GET_STATUS reports it, and
// each change goes to `on_power` — what the port feeds loses or gets power.
class SimulatedHub {
 public:
  using OnPower = std::function<void(int port, bool on)>;
  SimulatedHub(FakeUsbDevice& device, uint8_t ports, OnPower on_power)
      : ports_(std::min<uint8_t>(ports, 15)), on_power_(std::move(on_power)) {
    powered_.fill(true);
    device.SetResponder([this](const UsbTransfer& t) { return Answer(t); });
  }
  bool powered(int port) const { return powered_.at(static_cast<size_t>(port)); }  // ports 1..15
  int switches() const { return switches_; }

 private:
  Result<Bytes> Answer(const UsbTransfer& t) {
    using Kind = UsbTransfer::Kind;
    if (t.kind == Kind::kControlIn && t.request_type == 0xA0 && t.request == 0x06) {
      return Bytes{9, 0x29, ports_, 0x09, 0x00, 0x32, 0x64, 0, 0};
    }
    if (t.kind == Kind::kControlOut && t.request_type == 0x23 && t.value == 8 && t.index >= 1 && t.index <= ports_) {
      const bool on = t.request == 0x03;
      if (powered_[t.index] != on) {
        powered_[t.index] = on;
        ++switches_;
        if (on_power_) on_power_(t.index, on);
      }
    }
    if (t.kind == Kind::kControlIn && t.request_type == 0xA3 && t.request == 0x00) {
      if (t.index < 1 || t.index > ports_) return Status::Error(Layer::kTransport, "hub: no such port (stall)");
      const uint16_t status = powered_[t.index] ? 0x0101 : 0x0000;
      return Bytes{static_cast<uint8_t>(status), static_cast<uint8_t>(status >> 8), 0, 0};
    }
    return Bytes{};
  }

  uint8_t ports_;
  OnPower on_power_;
  std::array<bool, 16> powered_{};
  int switches_ = 0;
};

// A TPM2Go's far end without CS on a GPIO: each vendor transfer is one
// chip-select frame into the simulated SPI TPM, its MISO the next bulk IN.
inline FakeUsbDevice::Responder Tpm2GoFramesToSimulator(TisSimulator& sim) {
  auto miso = std::make_shared<Bytes>();
  return [&sim, miso](const UsbTransfer& t) -> Result<Bytes> {
    if (t.kind == UsbTransfer::Kind::kBulkOut) {
      miso->assign(t.data.size(), 0);
      TRY(sim.Select());
      TRY(sim.Transfer(t.data, *miso));
      TRY(sim.Deselect());
    }
    if (t.kind == UsbTransfer::Kind::kBulkIn) return std::exchange(*miso, {});
    return Bytes{};
  };
}

// A dcttech USB HID relay board (16c0:05df): SET_REPORT FF n / FD n
// energise / release relay n, GET_REPORT reads the bits back in byte 7;
// each change goes to `on_switch` (relay n, energised).
class SimulatedHidRelay {
 public:
  using OnSwitch = std::function<void(int relay, bool energised)>;
  SimulatedHidRelay(FakeUsbDevice& device, OnSwitch on_switch) : on_switch_(std::move(on_switch)) {
    device.SetResponder([this](const UsbTransfer& t) -> Result<Bytes> {
      using Kind = UsbTransfer::Kind;
      if (t.kind == Kind::kControlOut && t.request == 0x09 && t.data.size() >= 2 && t.data[1] >= 1 && t.data[1] <= 8) {
        const uint8_t bit = static_cast<uint8_t>(1u << (t.data[1] - 1));
        const bool energise = t.data[0] == 0xFF;
        const uint8_t before = bits_;
        bits_ = energise ? (bits_ | bit) : (bits_ & ~bit);
        if (bits_ != before) {
          ++switches_;
          if (on_switch_) on_switch_(t.data[1], energise);
        }
      }
      if (t.kind == Kind::kControlIn && t.request == 0x01) return Bytes{'T', 'L', 'A', 'B', '1', 0, 0, bits_};
      return Bytes{};
    });
  }
  int switches() const { return switches_; }

 private:
  OnSwitch on_switch_;
  uint8_t bits_ = 0;
  int switches_ = 0;
};

}  // namespace tpmlab::testing
