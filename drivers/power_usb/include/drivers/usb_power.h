// Power switches on USB: a dcttech HID relay board (16c0:05df) with state
// read-back, an lcus relay board (5131:*), and per-port power on a USB hub
// (../shared/docs/hardware-reference.md §6, §7). Each Cycle is off, a wait
// (the rail must drain), on.
//
// Wiring: `inverted` means the TPM is powered while the relay is released
// (normally-closed contact).
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "drivers/power.h"
#include "drivers/serial_port.h"
#include "drivers/usb_device.h"

namespace tpmlab {

struct PowerSequence {
  Clock::Duration off_time = std::chrono::milliseconds(1000);
  Clock* clock = nullptr;  // DefaultClock() when null
};

// Off, wait `off_time`, on.
class SequencedPower : public PowerControl {
 public:
  explicit SequencedPower(PowerSequence sequence)
      : sequence_(sequence), clock_(sequence.clock ? *sequence.clock : DefaultClock()) {}

 protected:
  Clock& clock() { return clock_; }

 private:
  Status DoCycle(PowerCut cut) override {
    TRY(Off(cut));
    clock_.Sleep(sequence_.off_time);
    return On();
  }
  PowerSequence sequence_;
  Clock& clock_;
};

namespace hid_relay {
inline constexpr uint16_t kVendorId = 0x16C0;
inline constexpr uint16_t kProductId = 0x05DF;
inline constexpr uint8_t kSetReportType = 0x21;  // class | interface... | OUT
inline constexpr uint8_t kGetReportType = 0xA1;
inline constexpr uint8_t kSetReport = 0x09;
inline constexpr uint8_t kGetReport = 0x01;
inline constexpr uint16_t kFeatureReport0 = 0x0300;
inline constexpr uint8_t kOn = 0xFF;
inline constexpr uint8_t kOff = 0xFD;
inline constexpr uint16_t kStateLength = 8;  // byte 7: bit n-1 = relay n
}  // namespace hid_relay

struct HidRelayConfig {
  UsbMatch match{hid_relay::kVendorId, {hid_relay::kProductId}, "", ""};
  int channel = 1;        // 1..8
  bool inverted = false;
  bool verify = true;     // read the state back after each switch
  PowerSequence sequence;
};

class HidRelayPower final : public SequencedPower {
 public:
  /// Opens the board and claims its HID interface (detaching usbhid).
  static Result<std::unique_ptr<HidRelayPower>> Open(UsbContext& usb, HidRelayConfig config);
  ~HidRelayPower() override;

  /// The board's relay bits (bit n-1 = relay n energised).
  Result<uint8_t> ReadState();
  /// Energises (true) or releases relay `channel`, re-opening the board once
  /// when the transfer fails (these boards are known to return protocol
  /// errors after a few dozen switches), then checks the read-back.
  Status SetRelay(bool energised);

 private:
  HidRelayPower(UsbContext& usb, HidRelayConfig config)
      : SequencedPower(config.sequence), usb_(usb), config_(std::move(config)) {}
  Status Connect();
  Status SetOnce(bool energised);
  Status DoOff(PowerCut cut) override;
  Status DoOn() override;

  UsbContext& usb_;
  HidRelayConfig config_;
  std::unique_ptr<UsbDevice> device_;
  std::unique_ptr<ClaimedInterface> claim_;  // released before device_ closes
};

namespace lcus {
inline constexpr uint16_t kUsbVendorId = 0x5131;     // boards with their own USB interface
inline constexpr uint16_t kSerialVendorId = 0x1A86;  // boards behind a CH340 (1a86:7523): a tty
}  // namespace lcus

struct LcusRelayConfig {
  UsbMatch match{lcus::kUsbVendorId, {}, "", ""};
  int channel = 1;
  bool inverted = false;
  int interface = 0;
  uint8_t endpoint = 0x01;  // interrupt OUT [unverified: confirm per board]
  PowerSequence sequence;
};

// Frames [A0, n, on?1:0, (A0+n+state)&FF], either on the interrupt OUT
// endpoint of a USB board (5131:*, reference §6.2) or written to the tty of a
// board behind a CH340 USB-serial chip (1a86:7523; 9600 baud [unverified]).
// The boards have no read-back, so a switch is only as sure as the write.
class LcusRelayPower final : public SequencedPower {
 public:
  static Result<std::unique_ptr<LcusRelayPower>> Open(UsbContext& usb, LcusRelayConfig config);
  /// The serial variant: `match`, `interface` and `endpoint` are unused.
  static Result<std::unique_ptr<LcusRelayPower>> OpenSerial(std::unique_ptr<SerialPort> port,
                                                            LcusRelayConfig config);
  ~LcusRelayPower() override;
  Status SetRelay(bool energised);
  static Bytes Frame(int channel, bool energised);

 private:
  LcusRelayPower(std::unique_ptr<UsbDevice> device, LcusRelayConfig config)
      : SequencedPower(config.sequence), config_(std::move(config)), device_(std::move(device)) {}
  Status DoOff(PowerCut cut) override;
  Status DoOn() override;

  LcusRelayConfig config_;
  std::unique_ptr<UsbDevice> device_;
  std::unique_ptr<ClaimedInterface> claim_;
  std::unique_ptr<SerialPort> serial_;
};

namespace hub {
inline constexpr uint8_t kPortOut = 0x23;  // class | other | OUT
inline constexpr uint8_t kPortIn = 0xA3;
inline constexpr uint8_t kHubIn = 0xA0;
inline constexpr uint8_t kGetStatus = 0x00;
inline constexpr uint8_t kClearFeature = 0x01;
inline constexpr uint8_t kSetFeature = 0x03;
inline constexpr uint8_t kGetDescriptor = 0x06;
inline constexpr uint16_t kPortPower = 8;
inline constexpr uint8_t kHubDescriptor = 0x29;
inline constexpr uint8_t kSsHubDescriptor = 0x2A;
inline constexpr uint16_t kPowerBitUsb2 = 0x0100;
inline constexpr uint16_t kPowerBitUsb3 = 0x0200;
}  // namespace hub

struct HubPortConfig {
  UsbMatch hub;                       // the hub (its path is the usual key)
  int port = 1;
  std::optional<UsbMatch> companion;  // a USB3 hub's other half: switched too
  int off_repeats = 1;                // uhubctl -r N
  bool verify = true;                 // GET_STATUS after each switch
  // Linux >= 6.0: the port's sysfs `disable` file is written first (1 off,
  // 0 on) so the kernel does not power the port again; SET/CLEAR_FEATURE is
  // only sent when that file is absent or cannot be written. "" skips sysfs.
  std::filesystem::path sysfs_usb_devices = "/sys/bus/usb/devices";
  PowerSequence sequence;
};

// The port's sysfs `disable` file or SET_FEATURE / CLEAR_FEATURE(PORT_POWER)
// to the port, then GET_STATUS read-back
// (power bit 0x0100 on USB2 hubs, 0x0200 on SuperSpeed ones). Many hubs cut
// data but not VBUS; a bench must verify with a load. Powering off the port
// of a USB bridge makes it re-enumerate: re-open it with
// UsbContext::WaitAndOpen.
class HubPortPower final : public SequencedPower {
 public:
  /// Opens the hub (and its companion), reads each hub descriptor and
  /// records a warning when power switching is ganged or absent.
  static Result<std::unique_ptr<HubPortPower>> Open(UsbContext& usb, HubPortConfig config);

  const std::vector<std::string>& warnings() const { return warnings_; }
  /// Whether the port has power (on every hub switched).
  Result<bool> IsPowered();
  Status SetPower(bool on);

 private:
  struct Hub {
    std::unique_ptr<UsbDevice> device;
    bool superspeed = false;
  };
  HubPortPower(HubPortConfig config) : SequencedPower(config.sequence), config_(std::move(config)) {}
  Status AddHub(UsbContext& usb, const UsbMatch& match);
  Result<uint16_t> PortStatus(Hub& hub);
  bool WriteSysfsDisable(const Hub& hub, bool on);
  Status DoOff(PowerCut cut) override;
  Status DoOn() override;

  HubPortConfig config_;
  std::vector<Hub> hubs_;
  std::vector<std::string> warnings_;
};

}  // namespace tpmlab
