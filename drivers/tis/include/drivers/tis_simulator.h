// TisSimulator: a simulated SPI TPM. It is an SpiBus whose far end is the
// PTP FIFO register model (TPM_ACCESS per locality, TPM_STS with burstCount,
// TPM_DATA_FIFO, DID_VID, RID, INTF_CAPABILITY) in front of any inner
// Transport — a scripted fake in unit tests, a real swtpm's SwtpmTransport in
// integration tests — so a TIS engine's whole protocol runs without hardware.
//
// It decodes the bit stream byte by byte as a chip does: the 4-byte header,
// wait states (MISO 0x00 until ready, then 0x01; a host that clocks data
// during a wait state loses it), then the data phase. The command state
// machine is idle → ready (commandReady) → reception (Expect) → execution
// (tpmGo: the command goes to the inner transport) → completion (dataAvail)
// → idle (commandReady). Protocol mistakes by the host are recorded in
// violations() rather than tolerated silently.
//
// Knobs make it misbehave like real parts: wait states (fixed or seeded
// random), small or slow burst counts, slow commandReady and execution, a
// locality held by someone else, a TPM that stops answering, transfer errors.
#pragma once

#include <cstdint>
#include <deque>
#include <future>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "drivers/spi_bus.h"
#include "drivers/tis_registers.h"
#include "drivers/transport.h"

namespace tpmlab {

class TisSimulator final : public SpiBus {
 public:
  enum class State { kIdle, kReady, kReception, kExecution, kCompletion };
  enum class Silence {
    kNone,
    kAllOnes,     // nothing drives MISO: every byte reads 0xFF
    kNeverReady,  // every frame stalls in a wait state for ever
    kStuck,       // registers answer but the TPM never becomes ready or done
  };

  struct Options {
    uint16_t vendor_id = 0x1014;  // IBM, as swtpm reports
    uint16_t device_id = 0x0001;
    uint8_t revision = 0x01;
    // Wait-state polls per frame, drawn from [min, max] with `seed`.
    int wait_states_min = 0;
    int wait_states_max = 0;
    uint64_t seed = 1;
    // Largest burstCount the TPM offers (its FIFO size), and how many STS
    // reads show burstCount 0 after each FIFO access (a slow TPM).
    uint16_t burst_count = 64;
    int burst_zero_reads = 0;
    // STS reads before commandReady shows after it was asked for, and before
    // dataAvail shows once the inner transport answered.
    int ready_delay_reads = 0;
    int execution_reads = 0;
    // Writing commandReady in Completion goes to Idle (so it takes a second
    // write to reach Ready); false goes straight to Ready.
    bool completion_to_idle = true;
    // How long one STS read during execution waits for the inner response
    // (the inner transport runs each command on its own thread, as a TPM
    // executes independently of the bus).
    std::chrono::milliseconds inner_poll{1};
  };

  // One frame as the host sent it.
  struct FrameRecord {
    Bytes mosi;        // every byte clocked out by the host under this CS
    bool read = false;
    uint8_t locality = 0;
    uint16_t reg = 0;
    size_t length = 0;
    int wait_states = 0;
  };

  explicit TisSimulator(Transport& inner) : TisSimulator(inner, Options{}) {}
  TisSimulator(Transport& inner, Options options);
  /// Waits for a command still running on the inner transport.
  ~TisSimulator() override;

  Options& options() { return options_; }

  /// Another host (firmware, another driver) holds `locality`; nobody else
  /// gets the TPM until ReleaseHeldLocality.
  void HoldLocality(uint8_t locality);
  void ReleaseHeldLocality();

  /// _TPM_Init: the TIS registers reset as a chip's do at power-on — no
  /// locality active, held or pending, the command state machine idle, any
  /// command in flight dropped (waited for first). Knobs, counters, frames and
  /// violations stay. Whoever switches the inner TPM's power calls this.
  void PowerOn();

  void set_silence(Silence silence) { silence_ = silence; }
  /// The `nth` Transfer from now (1 = the next one) fails; the frame it was
  /// part of never completes.
  void FailTransfer(int nth) { fail_countdown_ = nth; }
  /// Each Transfer fails with this probability (seeded by Options::seed).
  void set_transfer_error_rate(double p) { error_rate_ = p; }

  State state() const { return state_; }
  std::optional<uint8_t> active_locality() const { return active_; }
  const std::vector<std::string>& violations() const { return violations_; }
  void clear_violations() { violations_.clear(); }
  /// The most recent frames (up to 4096), oldest first.
  const std::deque<FrameRecord>& frames() const { return frames_; }
  void clear_frames() { frames_.clear(); }
  uint64_t commands() const { return commands_; }
  uint64_t frames_total() const { return frames_total_; }  // all frames, not only the kept ones
  uint64_t wait_states_inserted() const { return wait_states_total_; }
  uint64_t injected_errors() const { return injected_errors_; }
  /// Why the inner transport stopped answering (the simulated TPM then hangs
  /// in execution, as a chip whose firmware died would).
  const std::string& last_inner_error() const { return last_inner_error_; }

 private:
  enum class Phase { kHeader, kWait, kData, kDone };

  Status DoSelect() override;
  Status DoTransfer(ByteView out, MutableByteView in) override;
  Status DoDeselect() override;
  Info DoInfo() const override { return {"tis-simulator", "simulated SPI TPM in front of " + inner_.info().name}; }

  uint8_t Clock(uint8_t mosi);
  void DecodeHeader();
  uint8_t ReadByte();
  void FinishWrite();

  uint32_t Status32();
  void WriteAccess(uint8_t locality, uint8_t value);
  void WriteSts(size_t offset, ByteView data);
  void WriteFifo(ByteView data);
  void PollExecution();
  void GrantPending();
  bool IsActive(uint8_t locality) const { return active_ && *active_ == locality && !held_; }
  void Violation(const std::string& what);

  Transport& inner_;
  Options options_;
  std::mt19937_64 rng_;

  // The frame under chip select.
  bool selected_ = false;
  Phase phase_ = Phase::kDone;
  FrameRecord frame_;
  Bytes header_;
  size_t data_index_ = 0;
  int wait_left_ = 0;
  Bytes write_data_;
  Bytes read_data_;  // snapshot of a non-FIFO register read

  // Localities.
  std::optional<uint8_t> active_;
  bool held_ = false;  // active_ is held by someone else
  bool pending_[tis::kMaxLocality + 1] = {};

  // The command state machine.
  State state_ = State::kIdle;
  Bytes fifo_in_;
  Bytes response_;
  size_t response_read_ = 0;
  int burst_zero_left_ = 0;
  int ready_delay_left_ = 0;
  int execution_left_ = 0;
  bool ready_pending_ = false;   // commandReady asked for, shown after ready_delay_left_ reads
  bool have_response_ = false;   // the inner transport answered (execution may still show)
  size_t burst_credit_ = 0;      // FIFO bytes the last STS read allowed
  bool inner_failed_ = false;
  std::string last_inner_error_;
  std::future<Result<Bytes>> exec_;  // the inner Exchange of the command in execution
  // The inner transport's locality as last set; kUnknownLocality after a
  // power-on, so the next command sets it again.
  static constexpr uint8_t kUnknownLocality = 0xFF;
  uint8_t inner_locality_ = 0;

  Silence silence_ = Silence::kNone;
  int fail_countdown_ = 0;
  double error_rate_ = 0;

  std::vector<std::string> violations_;
  std::deque<FrameRecord> frames_;
  uint64_t frames_total_ = 0;
  uint64_t commands_ = 0;
  uint64_t wait_states_total_ = 0;
  uint64_t injected_errors_ = 0;
};

const char* TisStateName(TisSimulator::State state);

}  // namespace tpmlab
