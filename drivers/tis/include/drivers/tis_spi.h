// TisSpiTransport: a TPM reached over SPI with the TCG PC Client PTP FIFO
// (TIS) protocol, on any SpiBus.
//
// Each register access is one chip-select frame: a 4-byte header, wait states
// while the TPM stalls (the last header byte's MISO LSB is 0: CS stays
// asserted and single bytes are clocked until one has LSB 1), then up to 64
// data bytes. On top of that: the locality is requested through TPM_ACCESS
// at Open and released at destruction; a command is written after
// STS.commandReady, in burstCount-sized chunks, with STS.Expect checked before
// and after the last byte, then STS.tpmGo; the response is read once
// STS.dataAvail shows (header first for its size, then the rest), and
// STS.commandReady returns the TPM to idle.
//
// Every wait is bounded by a PTP timeout (TIMEOUT_A..D) or the caller's
// response timeout; errors say which register and which step. After any
// failure the next command first re-takes the locality and commandReady.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "drivers/spi_bus.h"
#include "drivers/tis_registers.h"
#include "drivers/transport.h"

namespace tpmlab {

struct TisTimeouts {
  // PTP defaults.
  std::chrono::milliseconds a{750};   // locality request (TPM_ACCESS)
  std::chrono::milliseconds b{2000};  // commandReady
  std::chrono::milliseconds c{750};   // stsValid after a write (Expect, dataAvail checks)
  std::chrono::milliseconds d{750};   // a non-zero burstCount
};

struct TisSpiConfig {
  uint8_t locality = 0;
  TisTimeouts timeouts;
  // Wait states: single-byte polls per frame before giving up; the first
  // `wait_state_fast_polls` go back to back, the rest `wait_state_interval` apart.
  int max_wait_state_polls = 256;
  int wait_state_fast_polls = 16;
  Clock::Duration wait_state_interval{1000};
  // How often STS is read while waiting for a bit.
  Clock::Duration poll_interval{500};
  // DID_VID probes at Open (the TPM may still be coming out of reset).
  int did_vid_probes = 100;
  Clock::Duration did_vid_probe_interval{10000};
  Clock* clock = nullptr;  // DefaultClock() when null
};

class TisSpiTransport final : public Transport {
 public:
  struct ChipId {
    uint16_t vendor_id = 0;
    uint16_t device_id = 0;
    uint8_t revision = 0;
    uint32_t intf_capability = 0;
  };

  /// Probes DID_VID, takes the locality, brings the TPM to commandReady and
  /// reads RID and INTF_CAPABILITY. `bus` must outlive the transport.
  /// @returns kTransport naming the step that failed (no TPM answering, the
  ///          locality held by another one, commandReady never set, ...).
  static Result<std::unique_ptr<TisSpiTransport>> Open(SpiBus& bus, TisSpiConfig config = {});
  /// Releases the locality (best effort).
  ~TisSpiTransport() override;
  TisSpiTransport(const TisSpiTransport&) = delete;
  TisSpiTransport& operator=(const TisSpiTransport&) = delete;

  const ChipId& chip() const { return chip_; }
  uint8_t locality() const { return config_.locality; }

  /// The TPM was reset (_TPM_Init: its TIS registers are back to power-on,
  /// no locality active). Forgets the locality and any command in flight;
  /// the next command takes the locality and commandReady again. Whoever
  /// switches the TPM's power calls this.
  void ChipReset();

  /// One register frame at the current locality (1..64 bytes), for
  /// diagnostics and tests. Register values are little-endian.
  Status ReadRegister(uint16_t reg, MutableByteView out);
  Status WriteRegister(uint16_t reg, ByteView data);
  Result<uint32_t> ReadStatus();

 private:
  TisSpiTransport(SpiBus& bus, TisSpiConfig config);

  Status DoTransmit(ByteView command) override;
  Result<Bytes> DoReceive(Duration timeout) override;
  Status DoCancel() override;
  Status DoSetLocality(uint8_t locality) override;
  Info DoInfo() const override;
  void DoAbandonResponse() override;

  Status Frame(bool read, uint8_t locality, uint16_t reg, MutableByteView in, ByteView out);
  Status WholeFrame(ByteView header, bool read, MutableByteView in, ByteView out, const std::string& step);
  Result<uint8_t> ReadAccess(uint8_t locality);
  Status WriteStatus(uint32_t bits);
  Status ProbeDidVid();
  Status RequestLocality();
  Status ReleaseLocality();
  // Waits until (STS & mask) == want, with a valid STS, within `timeout`.
  Result<uint32_t> WaitStatus(uint32_t mask, uint32_t want, std::chrono::milliseconds timeout,
                              const char* timeout_name, const std::string& step);
  Result<uint16_t> WaitBurstCount(const std::string& step);
  Status MakeReady(const std::string& step);
  Status SendCommand(ByteView command);
  Status ReadFifo(uint8_t* out, size_t n, const std::string& step);
  Result<Bytes> ReadResponse();
  // Best effort after a failure: commandReady, and re-take the locality and
  // commandReady before the next command.
  void Recover();

  std::string Where() const;  // " (locality 0)"
  Status Fail(const std::string& what) const;
  Status Fail(const Status& cause, const std::string& step) const;

  SpiBus& bus_;
  TisSpiConfig config_;
  Clock& clock_;
  ChipId chip_;
  bool have_locality_ = false;
  bool needs_recovery_ = false;
  bool executing_ = false;  // tpmGo written, response not yet read
};

// "Infineon", "STMicroelectronics", ... or "" for an unknown TCG vendor ID.
const char* TisVendorName(uint16_t vendor_id);

}  // namespace tpmlab
