// SpiBus: the seam between a TPM-over-SPI protocol engine and whatever clocks
// the bits (an FTDI MPSSE or TPM2Go bridge over libusb, spidev, or the
// simulated SPI TPM of drivers/tis).
//
// One chip-select assertion frames one TPM register transaction, and the
// engine decides in the middle of it — after seeing the last header byte on
// MISO — whether to clock more single bytes (wait states). So chip select is
// explicit: Select, any number of full-duplex Transfers, Deselect.
//
// Clock: time for protocol timeouts, injectable so timeout tests run on a fake
// clock in microseconds instead of real seconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "drivers/bytes.h"
#include "drivers/status.h"

namespace tpmlab {

using MutableByteView = std::span<uint8_t>;

class SpiBus {
 public:
  struct Info {
    std::string name;         // "ftdi", "tpm2go", "tis-simulator"
    std::string description;  // which device: "FT232H serial FT5XYZ, 1 MHz"
  };

  virtual ~SpiBus() = default;

  /// Asserts chip select; a shared bridge may also take its lock here.
  /// @returns kTransport when the bridge is gone or CS is already asserted.
  Status Select() { return DoSelect(); }

  /// Clocks n bytes full duplex while selected: n = out.size() when `in` is
  /// empty (a write; MISO is discarded), n = in.size() when `out` is empty
  /// (a read; MOSI sends 0x00), else both must have the same size.
  /// A backend may queue write-only bytes and send them with the next read
  /// or at Deselect, so an I/O error can surface one call late.
  /// @returns kHarness when not selected or the sizes differ; kTransport on
  ///          I/O failure. After a failure chip select is released (the
  ///          caller still calls Deselect, which then does nothing).
  Status Transfer(ByteView out, MutableByteView in) {
    if (!out.empty() && !in.empty() && out.size() != in.size()) {
      return Status::Error(Layer::kHarness, "SPI transfer: " + std::to_string(out.size()) +
                                                " bytes out but " + std::to_string(in.size()) + " in");
    }
    return DoTransfer(out, in);
  }

  /// Deasserts chip select (flushing queued bytes). Harmless when not selected.
  /// @returns kTransport when the queued bytes could not be sent.
  Status Deselect() { return DoDeselect(); }

  Info info() const { return DoInfo(); }
  /// Whether chip select stays asserted across Transfers until Deselect. A
  /// bridge that frames each transfer itself (a TPM2Go without CS on a
  /// GPIO) cannot: a whole register frame must then go in one Transfer, and
  /// wait states cannot be honoured.
  bool holds_chip_select() const { return DoHoldsChipSelect(); }

 private:
  virtual bool DoHoldsChipSelect() const { return true; }
  virtual Status DoSelect() = 0;
  virtual Status DoTransfer(ByteView out, MutableByteView in) = 0;
  virtual Status DoDeselect() = 0;
  virtual Info DoInfo() const = 0;
};

// Deselects on scope exit unless Release() took the result.
class SpiSelection {
 public:
  explicit SpiSelection(SpiBus& bus) : bus_(bus) {}
  ~SpiSelection() {
    if (!released_) (void)bus_.Deselect();
  }
  SpiSelection(const SpiSelection&) = delete;
  SpiSelection& operator=(const SpiSelection&) = delete;
  Status Release() {
    released_ = true;
    return bus_.Deselect();
  }

 private:
  SpiBus& bus_;
  bool released_ = false;
};

class Clock {
 public:
  using Duration = std::chrono::microseconds;
  using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;

  virtual ~Clock() = default;
  virtual TimePoint Now() = 0;
  virtual void Sleep(Duration d) = 0;
};

// steady_clock and this_thread::sleep_for.
class SystemClock final : public Clock {
 public:
  TimePoint Now() override;
  void Sleep(Duration d) override;
};
// One shared instance for callers that pass no clock (it holds no state).
Clock& DefaultClock();

// Time moves only when someone sleeps or Advance is called.
class FakeClock final : public Clock {
 public:
  TimePoint Now() override { return now_; }
  void Sleep(Duration d) override {
    now_ += d;
    slept_ += d;
  }
  void Advance(Duration d) { now_ += d; }
  Duration slept() const { return slept_; }

 private:
  TimePoint now_{};
  Duration slept_{0};
};

}  // namespace tpmlab
