#include "drivers/tis_simulator.h"

#include <algorithm>
#include <bit>
#include <climits>
#include <cstdio>

namespace tpmlab {
namespace {

std::string Hex(uint32_t v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%0*x", digits, v);
  return buf;
}

bool IsFifo(uint16_t reg) {
  return (reg >= tis::kDataFifo && reg < tis::kDataFifo + 4) ||
         (reg >= tis::kXDataFifo && reg < tis::kXDataFifo + 4);
}

// Interface version TIS 1.3 for TPM 2.0 (bits 30:28 = 011), 64-byte
// transfers (bits 10:9 = 11). [from memory of the PTP; not interpreted by the engine]
constexpr uint32_t kIntfCapability = 0x30000600;
constexpr size_t kMaxFrames = 4096;

// The command size its header states, once 6 bytes are in; until then (and
// beyond the TPM's buffer) the buffer size.
size_t CommandSize(const Bytes& in) {
  if (in.size() < 6) return kTpmMaxMessage;
  const size_t size = uint32_t{in[2]} << 24 | uint32_t{in[3]} << 16 | uint32_t{in[4]} << 8 | in[5];
  return std::min(size, kTpmMaxMessage);
}

}  // namespace

const char* TisStateName(TisSimulator::State state) {
  switch (state) {
    case TisSimulator::State::kIdle: return "idle";
    case TisSimulator::State::kReady: return "ready";
    case TisSimulator::State::kReception: return "reception";
    case TisSimulator::State::kExecution: return "execution";
    case TisSimulator::State::kCompletion: return "completion";
  }
  return "?";
}

TisSimulator::TisSimulator(Transport& inner, Options options)
    : inner_(inner), options_(options), rng_(options.seed) {}

TisSimulator::~TisSimulator() {
  if (exec_.valid()) exec_.wait();
}

void TisSimulator::HoldLocality(uint8_t locality) {
  active_ = locality;
  held_ = true;
}

void TisSimulator::ReleaseHeldLocality() {
  if (!held_) return;
  held_ = false;
  active_.reset();
  GrantPending();
}

void TisSimulator::PowerOn() {
  if (exec_.valid()) (void)exec_.get();
  active_.reset();
  held_ = false;
  for (bool& p : pending_) p = false;
  state_ = State::kIdle;
  fifo_in_.clear();
  response_.clear();
  response_read_ = 0;
  burst_zero_left_ = 0;
  ready_delay_left_ = 0;
  execution_left_ = 0;
  ready_pending_ = false;
  have_response_ = false;
  burst_credit_ = 0;
  inner_failed_ = false;
  inner_locality_ = kUnknownLocality;
}

void TisSimulator::GrantPending() {
  if (active_) return;
  for (int l = tis::kMaxLocality; l >= 0; --l) {
    if (pending_[l]) {
      pending_[l] = false;
      active_ = static_cast<uint8_t>(l);
      return;
    }
  }
}

void TisSimulator::Violation(const std::string& what) {
  if (violations_.size() < 1000) violations_.push_back(what);
}

Status TisSimulator::DoSelect() {
  if (selected_) {
    Violation("chip select asserted twice");
    return Status::Error(Layer::kHarness, "TIS simulator: chip select is already asserted");
  }
  selected_ = true;
  phase_ = Phase::kHeader;
  frame_ = FrameRecord{};
  header_.clear();
  write_data_.clear();
  read_data_.clear();
  data_index_ = 0;
  wait_left_ = 0;
  return Status::Ok();
}

Status TisSimulator::DoTransfer(ByteView out, MutableByteView in) {
  if (!selected_) {
    Violation("transfer without chip select");
    return Status::Error(Layer::kHarness, "TIS simulator: transfer without chip select");
  }
  bool fail = false;
  if (fail_countdown_ > 0 && --fail_countdown_ == 0) fail = true;
  if (error_rate_ > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < error_rate_) fail = true;
  if (fail) {
    // The bridge lost the frame: CS drops, nothing of it is applied.
    ++injected_errors_;
    selected_ = false;
    phase_ = Phase::kDone;
    return Status::Error(Layer::kTransport, "simulated SPI transfer error #" +
                                                std::to_string(injected_errors_));
  }
  const size_t n = std::max(out.size(), in.size());
  for (size_t i = 0; i < n; ++i) {
    const uint8_t miso = Clock(i < out.size() ? out[i] : 0x00);
    if (!in.empty()) in[i] = miso;
  }
  return Status::Ok();
}

Status TisSimulator::DoDeselect() {
  if (!selected_) return Status::Ok();
  selected_ = false;
  if (silence_ != Silence::kAllOnes) {
    if (phase_ == Phase::kHeader && !header_.empty()) {
      Violation("chip select released after " + std::to_string(header_.size()) + " header bytes");
    } else if (phase_ == Phase::kWait) {
      Violation("chip select released during a wait state");
    } else if (phase_ == Phase::kData) {
      Violation("chip select released after " + std::to_string(data_index_) + " of " +
                std::to_string(frame_.length) + " data bytes");
    }
  }
  frames_.push_back(std::move(frame_));
  ++frames_total_;
  if (frames_.size() > kMaxFrames) frames_.pop_front();
  phase_ = Phase::kDone;
  return Status::Ok();
}

uint8_t TisSimulator::Clock(uint8_t mosi) {
  frame_.mosi.push_back(mosi);
  if (silence_ == Silence::kAllOnes) return 0xFF;
  switch (phase_) {
    case Phase::kHeader: {
      header_.push_back(mosi);
      if (header_.size() < tis::kHeaderSize) return 0x00;
      DecodeHeader();
      int wait = 0;
      if (silence_ == Silence::kNeverReady) {
        wait = INT_MAX;
      } else if (options_.wait_states_max > 0) {
        wait = std::uniform_int_distribution<int>(options_.wait_states_min,
                                                  std::max(options_.wait_states_min,
                                                           options_.wait_states_max))(rng_);
      }
      frame_.wait_states = wait;
      if (wait > 0) {
        wait_states_total_ += static_cast<uint64_t>(wait == INT_MAX ? 0 : wait);
        phase_ = Phase::kWait;
        wait_left_ = wait;
        return 0x00;
      }
      phase_ = Phase::kData;
      return 0x01;
    }
    case Phase::kWait:
      // A host that sends data now loses it: the TPM is not listening yet.
      if (silence_ == Silence::kNeverReady || --wait_left_ > 0) return 0x00;
      phase_ = Phase::kData;
      return 0x01;
    case Phase::kData: {
      uint8_t miso = 0x00;
      if (frame_.read) {
        miso = IsFifo(frame_.reg) ? ReadByte() : read_data_[data_index_];
      } else {
        write_data_.push_back(mosi);
      }
      if (++data_index_ == frame_.length) {
        phase_ = Phase::kDone;
        if (!frame_.read) FinishWrite();
        if (IsFifo(frame_.reg)) burst_zero_left_ = options_.burst_zero_reads;
      }
      return miso;
    }
    case Phase::kDone:
      Violation("more bytes clocked than the frame's " + std::to_string(frame_.length) + " data bytes");
      return 0xFF;
  }
  return 0xFF;
}

void TisSimulator::DecodeHeader() {
  frame_.read = (header_[0] & 0x80) != 0;
  frame_.length = (header_[0] & 0x3F) + 1u;
  frame_.locality = static_cast<uint8_t>(header_[2] >> 4);
  frame_.reg = static_cast<uint16_t>((header_[2] & 0x0F) << 8 | header_[3]);
  const bool valid = header_[1] == 0xD4 && frame_.locality <= tis::kMaxLocality;
  if (!valid) {
    Violation("address " + Hex(uint32_t{header_[1]} << 16 | uint32_t{header_[2]} << 8 | header_[3], 6) +
              " is not a TPM register (0xD4Lxxx, locality 0..4)");
    frame_.reg = 0xFFF;  // reads 0xFF, writes ignored
  }
  if (!frame_.read) return;
  if (IsFifo(frame_.reg)) return;  // bytes come out of the FIFO one by one
  std::optional<uint32_t> sts;
  for (size_t i = 0; i < frame_.length; ++i) {
    const uint32_t addr = frame_.reg + i;
    uint8_t b = 0xFF;
    if (addr == tis::kAccess) {
      b = tis::kAccessValid | tis::kAccessEstablishment;
      if (active_ && *active_ == frame_.locality) b |= tis::kAccessActiveLocality;
      for (uint8_t l = 0; l <= tis::kMaxLocality; ++l) {
        if (l != frame_.locality && pending_[l]) b |= tis::kAccessRequestPending;
      }
    } else if (addr >= tis::kSts && addr < tis::kSts + 4u) {
      // A locality that is not active reads all ones.
      if (IsActive(frame_.locality)) {
        if (!sts) sts = Status32();
        b = static_cast<uint8_t>(*sts >> (8 * (addr - tis::kSts)));
      }
    } else if (addr >= tis::kIntfCapability && addr < tis::kIntfCapability + 4u) {
      b = static_cast<uint8_t>(kIntfCapability >> (8 * (addr - tis::kIntfCapability)));
    } else if (addr >= tis::kInterfaceId && addr < tis::kInterfaceId + 4u) {
      b = 0x00;
    } else if (addr >= tis::kDidVid && addr < tis::kDidVid + 4u) {
      const uint32_t v = uint32_t{options_.device_id} << 16 | options_.vendor_id;
      b = static_cast<uint8_t>(v >> (8 * (addr - tis::kDidVid)));
    } else if (addr == tis::kRid) {
      b = options_.revision;
    }
    read_data_.push_back(b);
  }
}

uint32_t TisSimulator::Status32() {
  uint32_t sts = tis::kStsFamilyTpm2 | tis::kStsValid | tis::kStsSelfTestDone;
  if (silence_ == Silence::kStuck) return sts;
  size_t burst = 0;
  if (state_ == State::kIdle && ready_pending_ && --ready_delay_left_ <= 0) {
    ready_pending_ = false;
    state_ = State::kReady;
    fifo_in_.clear();
  }
  if (state_ == State::kExecution) PollExecution();
  switch (state_) {
    case State::kIdle: break;
    case State::kReady:
      sts |= tis::kStsCommandReady;
      burst = options_.burst_count;
      break;
    case State::kReception: {
      const size_t want = CommandSize(fifo_in_);
      if (fifo_in_.size() < want) {
        sts |= tis::kStsExpect;
        burst = std::min<size_t>(options_.burst_count, want - fifo_in_.size());
      }
      break;
    }
    case State::kExecution: break;
    case State::kCompletion:
      if (response_read_ < response_.size()) {
        sts |= tis::kStsDataAvail;
        burst = std::min<size_t>(options_.burst_count, response_.size() - response_read_);
      }
      break;
  }
  if (burst > 0 && burst_zero_left_ > 0) {
    --burst_zero_left_;
    burst = 0;
  }
  burst_credit_ = burst;
  return sts | static_cast<uint32_t>(burst) << tis::kStsBurstShift;
}

void TisSimulator::PollExecution() {
  if (inner_failed_) return;
  if (!have_response_) {
    if (!exec_.valid() || exec_.wait_for(options_.inner_poll) != std::future_status::ready) return;
    auto r = exec_.get();
    if (!r.ok()) {
      // The TPM hangs in execution until the host aborts with commandReady.
      inner_failed_ = true;
      last_inner_error_ = r.status().ToString();
      return;
    }
    response_ = std::move(*r);
    response_read_ = 0;
    have_response_ = true;
  }
  if (execution_left_ > 0) {
    --execution_left_;
    return;
  }
  state_ = State::kCompletion;
}

void TisSimulator::FinishWrite() {
  const uint16_t reg = frame_.reg;
  if (reg == tis::kAccess && write_data_.size() == 1) {
    WriteAccess(frame_.locality, write_data_[0]);
  } else if (reg >= tis::kSts && reg < tis::kSts + 4u) {
    if (!IsActive(frame_.locality)) {
      Violation("TPM_STS write at locality " + std::to_string(frame_.locality) + ", which is not active");
      return;
    }
    WriteSts(reg - tis::kSts, write_data_);
  } else if (IsFifo(reg)) {
    if (!IsActive(frame_.locality)) {
      Violation("TPM_DATA_FIFO write at locality " + std::to_string(frame_.locality) + ", which is not active");
      return;
    }
    WriteFifo(write_data_);
  }
}

void TisSimulator::WriteAccess(uint8_t locality, uint8_t value) {
  if (std::popcount(value) != 1) {
    Violation("TPM_ACCESS write " + Hex(value, 2) + " sets " + std::to_string(std::popcount(value)) +
              " bits (one at a time)");
    return;
  }
  if (value == tis::kAccessRequestUse) {
    if (!active_) {
      active_ = locality;
    } else if (*active_ != locality) {
      pending_[locality] = true;
    }
  } else if (value == tis::kAccessActiveLocality) {
    if (active_ && *active_ == locality && !held_) {
      active_.reset();
      GrantPending();
    } else {
      pending_[locality] = false;  // withdraws a pending request
    }
  }
}

void TisSimulator::WriteSts(size_t offset, ByteView data) {
  uint32_t bits = 0;
  for (size_t i = 0; i < data.size() && offset + i < 4; ++i) bits |= uint32_t{data[i]} << (8 * (offset + i));
  if (silence_ == Silence::kStuck) return;
  if (bits & tis::kStsCommandCancel) {
    if (state_ == State::kExecution && !have_response_ && !inner_failed_) (void)inner_.Cancel();
  }
  if (bits & tis::kStsCommandReady) {
    switch (state_) {
      case State::kIdle:
        if (!ready_pending_) {
          ready_pending_ = true;
          ready_delay_left_ = options_.ready_delay_reads;
          if (ready_delay_left_ <= 0) {
            ready_pending_ = false;
            state_ = State::kReady;
          }
        }
        break;
      case State::kReady: break;
      case State::kExecution:
        // Abort: the inner command is cancelled and its response dropped
        // (the next tpmGo waits until it has finished).
        if (!have_response_ && !inner_failed_) (void)inner_.Cancel();
        inner_failed_ = false;
        state_ = State::kReady;
        break;
      case State::kReception: state_ = State::kReady; break;
      case State::kCompletion: state_ = options_.completion_to_idle ? State::kIdle : State::kReady; break;
    }
    fifo_in_.clear();
    response_.clear();
    response_read_ = 0;
    have_response_ = false;
  }
  if (bits & tis::kStsGo) {
    if (state_ != State::kReception || fifo_in_.size() < kTpmHeaderSize ||
        TpmHeaderSize(fifo_in_) != fifo_in_.size()) {
      Violation(std::string("tpmGo in state ") + TisStateName(state_) + " with " +
                std::to_string(fifo_in_.size()) + " command bytes");
    } else {
      ++commands_;
      if (exec_.valid()) (void)exec_.get();  // an aborted command still running
      if (frame_.locality != inner_locality_) {
        Status s = inner_.SetLocality(frame_.locality);
        if (s.ok()) inner_locality_ = frame_.locality;
      }
      state_ = State::kExecution;
      execution_left_ = options_.execution_reads;
      have_response_ = false;
      inner_failed_ = false;
      exec_ = std::async(std::launch::async,
                         [this, command = fifo_in_] { return inner_.Exchange(command); });
    }
  }
  if ((bits & tis::kStsResponseRetry) && state_ == State::kCompletion) response_read_ = 0;
}

void TisSimulator::WriteFifo(ByteView data) {
  if (silence_ == Silence::kStuck) return;
  if (state_ == State::kReady) {
    state_ = State::kReception;
    fifo_in_.clear();
  }
  if (state_ != State::kReception) {
    Violation(std::string("TPM_DATA_FIFO write of ") + std::to_string(data.size()) + " bytes in state " +
              TisStateName(state_));
    return;
  }
  for (size_t i = 0; i < data.size(); ++i) {
    if (burst_credit_ == 0) {
      Violation("TPM_DATA_FIFO write past burstCount: " + std::to_string(data.size() - i) +
                " bytes dropped");
      return;
    }
    if (fifo_in_.size() >= CommandSize(fifo_in_)) {
      Violation("TPM_DATA_FIFO write of " + std::to_string(data.size() - i) +
                " bytes past the command's header size: dropped");
      return;
    }
    --burst_credit_;
    fifo_in_.push_back(data[i]);
  }
}

uint8_t TisSimulator::ReadByte() {
  if (!IsActive(frame_.locality)) return 0xFF;
  if (state_ != State::kCompletion || response_read_ >= response_.size()) {
    Violation(std::string("TPM_DATA_FIFO read with no response byte left (state ") +
              TisStateName(state_) + ")");
    return 0xFF;
  }
  if (burst_credit_ == 0) {
    Violation("TPM_DATA_FIFO read past burstCount");
  } else {
    --burst_credit_;
  }
  return response_[response_read_++];
}

}  // namespace tpmlab
