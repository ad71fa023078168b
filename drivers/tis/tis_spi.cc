#include "drivers/tis_spi.h"

#include <algorithm>
#include <array>
#include <cstdio>

namespace tpmlab {
namespace {

using tis::kMaxFrame;

std::string Hex(uint32_t v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%0*x", digits, v);
  return buf;
}

std::string Ms(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

uint32_t Le32(const std::array<uint8_t, 4>& b) {
  return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
}

const char* RegisterName(uint16_t reg) {
  switch (reg) {
    case tis::kAccess: return "TPM_ACCESS";
    case tis::kIntfCapability: return "TPM_INTF_CAPABILITY";
    case tis::kSts: return "TPM_STS";
    case tis::kSts + 3: return "TPM_STS byte 3";
    case tis::kDataFifo: return "TPM_DATA_FIFO";
    case tis::kInterfaceId: return "TPM_INTERFACE_ID";
    case tis::kXDataFifo: return "TPM_XDATA_FIFO";
    case tis::kDidVid: return "TPM_DID_VID";
    case tis::kRid: return "TPM_RID";
    default: return nullptr;
  }
}

std::string RegisterLabel(uint16_t reg) {
  const char* name = RegisterName(reg);
  return name ? name : "register " + Hex(reg, 3);
}

// A valid STS: something drives MISO (not all ones) and stsValid is set.
bool StsValid(uint32_t sts) { return (sts & 0xFF) != 0xFF && (sts & tis::kStsValid) != 0; }
bool AccessValid(uint8_t access) { return access != 0xFF && (access & tis::kAccessValid) != 0; }

std::string StsHint(uint32_t sts) {
  if (sts == 0xFFFFFFFF) return " (reads all ones: no TPM is driving MISO)";
  if ((sts & 0xFF) == 0xFF) return " (low byte 0xFF: not a valid status)";
  if (!(sts & tis::kStsValid)) return " (stsValid not set)";
  return "";
}

// The same error without timed_out(): the response it concerned is lost.
Status Final(const Status& s) {
  if (s.ok() || !s.timed_out()) return s;
  return Status::Error(s.layer(), s.message());
}

}  // namespace

const char* TisVendorName(uint16_t vendor_id) {
  // TCG vendor IDs are PCI-SIG vendor IDs.
  switch (vendor_id) {
    case 0x1014: return "IBM";
    case 0x104A: return "STMicroelectronics";
    case 0x1050: return "Nuvoton";
    case 0x15D1: return "Infineon";
    case 0x1AE0: return "Google";
    default: return "";
  }
}

TisSpiTransport::TisSpiTransport(SpiBus& bus, TisSpiConfig config)
    : bus_(bus), config_(config), clock_(config.clock ? *config.clock : DefaultClock()) {}

Result<std::unique_ptr<TisSpiTransport>> TisSpiTransport::Open(SpiBus& bus, TisSpiConfig config) {
  if (config.locality > tis::kMaxLocality) {
    return Status::Error(Layer::kHarness, "TIS: locality " + std::to_string(config.locality) +
                                              " does not exist (0..4)");
  }
  std::unique_ptr<TisSpiTransport> t(new TisSpiTransport(bus, config));
  TRY(t->ProbeDidVid());
  TRY(t->RequestLocality());
  TRY_ASSIGN(const uint32_t sts, t->ReadStatus());
  if (StsValid(sts) && (sts & tis::kStsFamilyMask) != tis::kStsFamilyTpm2) {
    return t->Fail("TPM_STS.tpmFamily is " + std::to_string((sts & tis::kStsFamilyMask) >> 26) +
                   ", not 1 (TPM 2.0): TPM_STS=" + Hex(sts, 8));
  }
  TRY(t->MakeReady("opening"));
  uint8_t rid = 0;
  TRY(t->ReadRegister(tis::kRid, {&rid, 1}));
  t->chip_.revision = rid;
  std::array<uint8_t, 4> cap{};
  TRY(t->ReadRegister(tis::kIntfCapability, cap));
  t->chip_.intf_capability = Le32(cap);
  return t;
}

TisSpiTransport::~TisSpiTransport() {
  if (executing_) DoAbandonResponse();
  (void)ReleaseLocality();
}

std::string TisSpiTransport::Where() const {
  return " (locality " + std::to_string(config_.locality) + ")";
}

Status TisSpiTransport::Fail(const std::string& what) const {
  return Status::Error(Layer::kTransport, "TIS: " + what + Where());
}

Status TisSpiTransport::Fail(const Status& cause, const std::string& step) const {
  return cause.Wrap("TIS: " + step + Where());
}

Status TisSpiTransport::Frame(bool read, uint8_t locality, uint16_t reg, MutableByteView in,
                              ByteView out) {
  const size_t len = read ? in.size() : out.size();
  const std::string step = std::string(read ? "reading " : "writing ") + RegisterLabel(reg);
  if (len == 0 || len > kMaxFrame) {
    return Status::Error(Layer::kHarness, "TIS: " + step + ": " + std::to_string(len) +
                                              " bytes in one frame (1..64)");
  }
  const auto header = tis::Header(read, len, locality, reg);
  if (!bus_.holds_chip_select()) return WholeFrame(header, read, in, out, step);
  std::array<uint8_t, tis::kHeaderSize> miso{};
  Status s = bus_.Select();
  if (!s.ok()) return Fail(s, step);
  SpiSelection selection(bus_);
  s = bus_.Transfer(header, miso);
  if (!s.ok()) return Fail(s, step);
  // The TPM stalls while the last header byte's LSB is 0: keep CS asserted
  // and clock single bytes until one comes back with LSB 1.
  if (!(miso[3] & 0x01)) {
    uint8_t flow = 0;
    int polls = 0;
    while (!(flow & 0x01)) {
      if (polls >= config_.max_wait_state_polls) {
        return Fail("wait state not released after " + std::to_string(polls) +
                    " polls (last MISO byte " + Hex(flow, 2) + ") " + step);
      }
      if (polls >= config_.wait_state_fast_polls) clock_.Sleep(config_.wait_state_interval);
      s = bus_.Transfer({}, {&flow, 1});
      if (!s.ok()) return Fail(s, step + " (wait state poll " + std::to_string(polls) + ")");
      ++polls;
    }
  }
  s = read ? bus_.Transfer({}, in) : bus_.Transfer(out, {});
  if (!s.ok()) return Fail(s, step);
  s = selection.Release();
  if (!s.ok()) return Fail(s, step);
  return Status::Ok();
}

// A bus that frames each transfer with chip select itself gets header and
// data in one transfer. The TPM cannot be given wait states there: one it
// inserts anyway (the header's last MISO byte with LSB 0) fails the frame,
// since the data phase went by while the TPM was not ready for it.
Status TisSpiTransport::WholeFrame(ByteView header, bool read, MutableByteView in, ByteView out,
                                   const std::string& step) {
  const size_t len = read ? in.size() : out.size();
  Bytes mosi(header.begin(), header.end());
  if (read) {
    mosi.resize(header.size() + len, 0x00);
  } else {
    mosi.insert(mosi.end(), out.begin(), out.end());
  }
  Bytes miso(mosi.size());
  Status s = bus_.Select();
  if (!s.ok()) return Fail(s, step);
  SpiSelection selection(bus_);
  s = bus_.Transfer(mosi, miso);
  if (!s.ok()) return Fail(s, step);
  s = selection.Release();
  if (!s.ok()) return Fail(s, step);
  if (!(miso[tis::kHeaderSize - 1] & 0x01)) {
    return Fail("the TPM inserted a wait state, which this bus cannot hold chip select for (" +
                bus_.info().description + ") " + step);
  }
  if (read) std::copy(miso.begin() + tis::kHeaderSize, miso.end(), in.begin());
  return Status::Ok();
}

Status TisSpiTransport::ReadRegister(uint16_t reg, MutableByteView out) {
  return Frame(true, config_.locality, reg, out, {});
}

Status TisSpiTransport::WriteRegister(uint16_t reg, ByteView data) {
  return Frame(false, config_.locality, reg, {}, data);
}

Result<uint32_t> TisSpiTransport::ReadStatus() {
  std::array<uint8_t, 4> b{};
  TRY(ReadRegister(tis::kSts, b));
  return Le32(b);
}

Result<uint8_t> TisSpiTransport::ReadAccess(uint8_t locality) {
  uint8_t access = 0;
  TRY(Frame(true, locality, tis::kAccess, {&access, 1}, {}));
  return access;
}

Status TisSpiTransport::WriteStatus(uint32_t bits) {
  // Command bits live in byte 0, commandCancel and resetEstablishment in byte 3.
  if (bits & 0xFF) {
    const uint8_t b = static_cast<uint8_t>(bits);
    TRY(WriteRegister(tis::kSts, {&b, 1}));
  }
  if (bits >> 24) {
    const uint8_t b = static_cast<uint8_t>(bits >> 24);
    TRY(WriteRegister(tis::kSts + 3, {&b, 1}));
  }
  return Status::Ok();
}

Status TisSpiTransport::ProbeDidVid() {
  // Right after reset a TPM may not answer yet: all ones, all zeros or a stall.
  Status last;
  std::array<uint8_t, 4> b{};
  for (int i = 0; i < std::max(1, config_.did_vid_probes); ++i) {
    if (i > 0) clock_.Sleep(config_.did_vid_probe_interval);
    last = ReadRegister(tis::kDidVid, b);
    if (!last.ok()) continue;
    const uint32_t v = Le32(b);
    if (v == 0xFFFFFFFF || v == 0) {
      last = Fail("TPM_DID_VID reads " + Hex(v, 8) + ": no TPM answering on " + bus_.info().description);
      continue;
    }
    chip_.vendor_id = static_cast<uint16_t>(v);
    chip_.device_id = static_cast<uint16_t>(v >> 16);
    return Status::Ok();
  }
  return last.Wrap("after " + std::to_string(config_.did_vid_probes) + " probes");
}

Status TisSpiTransport::RequestLocality() {
  const uint8_t me = config_.locality;
  const auto deadline = clock_.Now() + config_.timeouts.a;
  bool requested = false;
  uint8_t access = 0;
  while (true) {
    auto read = ReadAccess(me);
    if (!read.ok()) return Fail(read.status(), "requesting the locality");
    access = *read;
    if (AccessValid(access) && (access & tis::kAccessActiveLocality)) {
      have_locality_ = true;
      return Status::Ok();
    }
    if (AccessValid(access) && !requested) {
      const uint8_t bit = tis::kAccessRequestUse;
      Status s = Frame(false, me, tis::kAccess, {}, {&bit, 1});
      if (!s.ok()) return Fail(s, "writing TPM_ACCESS.requestUse");
      requested = true;
      continue;
    }
    if (clock_.Now() >= deadline) break;
    clock_.Sleep(config_.poll_interval);
  }
  if (!AccessValid(access)) {
    return Fail("TPM_ACCESS.tpmRegValidSts not set within TIMEOUT_A (" + Ms(config_.timeouts.a) +
                "): TPM_ACCESS=" + Hex(access, 2) +
                (access == 0xFF ? " (all ones: no TPM is driving MISO)" : ""));
  }
  // Who has it? Each locality's ACCESS says whether that one is active.
  std::string holder = "another locality holds the TPM";
  for (uint8_t l = 0; l <= tis::kMaxLocality; ++l) {
    if (l == me) continue;
    auto other = ReadAccess(l);
    if (other.ok() && AccessValid(*other) && (*other & tis::kAccessActiveLocality)) {
      holder = "locality " + std::to_string(l) + " holds the TPM";
      break;
    }
  }
  // Withdraw the request, so the TPM does not hand us the locality later.
  const uint8_t bit = tis::kAccessActiveLocality;
  (void)Frame(false, me, tis::kAccess, {}, {&bit, 1});
  return Fail("locality not granted within TIMEOUT_A (" + Ms(config_.timeouts.a) + "): " + holder +
              ", TPM_ACCESS=" + Hex(access, 2));
}

Status TisSpiTransport::ReleaseLocality() {
  if (!have_locality_) return Status::Ok();
  have_locality_ = false;
  const uint8_t bit = tis::kAccessActiveLocality;
  return Frame(false, config_.locality, tis::kAccess, {}, {&bit, 1});
}

Result<uint32_t> TisSpiTransport::WaitStatus(uint32_t mask, uint32_t want,
                                             std::chrono::milliseconds timeout,
                                             const char* timeout_name, const std::string& step) {
  const auto deadline = clock_.Now() + timeout;
  while (true) {
    auto sts = ReadStatus();
    if (!sts.ok()) return Fail(sts.status(), step);
    if (StsValid(*sts) && (*sts & mask) == want) return *sts;
    if (clock_.Now() >= deadline) {
      return Status::Timeout("TIS: " + step + ": not reached within " + timeout_name + " (" +
                             Ms(timeout) + "), TPM_STS=" + Hex(*sts, 8) + StsHint(*sts) + Where());
    }
    clock_.Sleep(config_.poll_interval);
  }
}

Result<uint16_t> TisSpiTransport::WaitBurstCount(const std::string& step) {
  const auto deadline = clock_.Now() + config_.timeouts.d;
  while (true) {
    auto sts = ReadStatus();
    if (!sts.ok()) return Fail(sts.status(), step);
    const auto burst = static_cast<uint16_t>((*sts & tis::kStsBurstMask) >> tis::kStsBurstShift);
    if (StsValid(*sts) && burst > 0) return burst;
    if (clock_.Now() >= deadline) {
      return Fail("TPM_STS.burstCount stayed 0 for TIMEOUT_D (" + Ms(config_.timeouts.d) + ") " +
                  step + ", TPM_STS=" + Hex(*sts, 8) + StsHint(*sts));
    }
    clock_.Sleep(config_.poll_interval);
  }
}

Status TisSpiTransport::MakeReady(const std::string& step) {
  const std::string what = "TPM_STS.commandReady " + step;
  TRY_ASSIGN(const uint32_t sts, ReadStatus());
  if (StsValid(sts) && (sts & tis::kStsCommandReady)) return Status::Ok();
  // From Completion a TPM may go to Idle first and want commandReady twice;
  // and some miss the first request after their own reset.
  for (int attempt = 0; attempt < 2; ++attempt) {
    Status s = WriteStatus(tis::kStsCommandReady);
    if (!s.ok()) return Fail(s, "writing " + what);
    auto r = WaitStatus(tis::kStsCommandReady, tis::kStsCommandReady, config_.timeouts.b,
                        "TIMEOUT_B", what);
    if (r.ok()) return Status::Ok();
    if (!r.status().timed_out() || attempt == 1) return Final(r.status());
  }
  return Status::Ok();
}

Status TisSpiTransport::SendCommand(ByteView command) {
  const size_t n = command.size();
  const std::string total = " of " + std::to_string(n) + " command bytes";
  size_t sent = 0;
  // All but the last byte, as the TPM's burstCount allows.
  while (sent + 1 < n) {
    TRY_ASSIGN(const uint16_t burst, WaitBurstCount("after " + std::to_string(sent) + total));
    const size_t chunk = std::min({size_t{burst}, kMaxFrame, n - 1 - sent});
    TRY(Frame(false, config_.locality, tis::kDataFifo, {}, command.subspan(sent, chunk)));
    sent += chunk;
  }
  auto before = WaitStatus(tis::kStsValid, tis::kStsValid, config_.timeouts.c, "TIMEOUT_C",
                           "TPM_STS.stsValid before the last command byte");
  if (!before.ok()) return Final(before.status());
  if (!(*before & tis::kStsExpect)) {
    return Fail("TPM_STS.Expect cleared after " + std::to_string(sent) + total +
                ": the TPM wants fewer bytes than the command header says, TPM_STS=" + Hex(*before, 8));
  }
  TRY(WaitBurstCount("before the last command byte").status());
  TRY(Frame(false, config_.locality, tis::kDataFifo, {}, command.subspan(n - 1, 1)));
  auto after = WaitStatus(tis::kStsValid, tis::kStsValid, config_.timeouts.c, "TIMEOUT_C",
                          "TPM_STS.stsValid after the last command byte");
  if (!after.ok()) return Final(after.status());
  if (*after & tis::kStsExpect) {
    return Fail("TPM_STS.Expect still set after the last command byte, TPM_STS=" + Hex(*after, 8));
  }
  Status s = WriteStatus(tis::kStsGo);
  if (!s.ok()) return Fail(s, "writing TPM_STS.tpmGo");
  return Status::Ok();
}

Status TisSpiTransport::ReadFifo(uint8_t* out, size_t n, const std::string& step) {
  size_t got = 0;
  while (got < n) {
    const std::string where = step + " after " + std::to_string(got) + " of " + std::to_string(n) + " bytes";
    TRY_ASSIGN(const uint32_t sts, ReadStatus());
    if (StsValid(sts) && !(sts & tis::kStsDataAvail)) {
      return Fail("TPM_STS.dataAvail cleared " + where + ", TPM_STS=" + Hex(sts, 8));
    }
    TRY_ASSIGN(const uint16_t burst, WaitBurstCount(where));
    const size_t chunk = std::min({size_t{burst}, kMaxFrame, n - got});
    TRY(Frame(true, config_.locality, tis::kDataFifo, {out + got, chunk}, {}));
    got += chunk;
  }
  return Status::Ok();
}

Result<Bytes> TisSpiTransport::ReadResponse() {
  Bytes response(kTpmHeaderSize);
  TRY(ReadFifo(response.data(), kTpmHeaderSize, "reading the response header"));
  const uint32_t size = TpmHeaderSize(response);
  if (size < kTpmHeaderSize || size > kTpmMaxMessage) {
    return Fail("response header claims " + std::to_string(size) + " bytes (" +
                ToHex(response) + ")");
  }
  response.resize(size);
  if (size > kTpmHeaderSize) {
    TRY(ReadFifo(response.data() + kTpmHeaderSize, size - kTpmHeaderSize,
                 "reading the " + std::to_string(size) + "-byte response"));
  }
  auto after = WaitStatus(tis::kStsValid, tis::kStsValid, config_.timeouts.c, "TIMEOUT_C",
                          "TPM_STS.stsValid after the response");
  if (!after.ok()) return Final(after.status());
  if (*after & tis::kStsDataAvail) {
    return Fail("TPM_STS.dataAvail still set after the whole " + std::to_string(size) +
                "-byte response: the TPM has more bytes than its header says");
  }
  return response;
}

void TisSpiTransport::ChipReset() {
  have_locality_ = false;
  executing_ = false;
  needs_recovery_ = true;
}

void TisSpiTransport::Recover() {
  executing_ = false;
  needs_recovery_ = true;
  (void)WriteStatus(tis::kStsCommandReady);  // abort whatever the TPM was doing
}

Status TisSpiTransport::DoTransmit(ByteView command) {
  if (needs_recovery_ || !have_locality_) {
    Status s = RequestLocality();
    if (!s.ok()) return s;
    needs_recovery_ = false;
  }
  Status s = MakeReady("before sending a command");
  if (s.ok()) s = SendCommand(command);
  if (!s.ok()) {
    Recover();
    return s;
  }
  executing_ = true;
  return Status::Ok();
}

Result<Bytes> TisSpiTransport::DoReceive(Duration timeout) {
  if (!executing_) return Fail("no command in flight to receive a response for");
  const auto deadline = clock_.Now() + timeout;
  while (true) {
    auto sts = ReadStatus();
    if (!sts.ok()) {
      Recover();
      return Fail(sts.status(), "waiting for the response");
    }
    if (StsValid(*sts) && (*sts & tis::kStsDataAvail)) break;
    if (clock_.Now() >= deadline) {
      // Still owed: a later Receive may get it, AbandonResponse gives it up.
      return Status::Timeout("TIS: no response within " + std::to_string(timeout.count()) +
                             " ms: TPM_STS.dataAvail not set, TPM_STS=" + Hex(*sts, 8) +
                             StsHint(*sts) + Where());
    }
    clock_.Sleep(config_.poll_interval);
  }
  auto response = ReadResponse();
  executing_ = false;
  if (!response.ok()) {
    Recover();
    return response;
  }
  // Back to idle; if this fails the next command recovers first.
  if (!WriteStatus(tis::kStsCommandReady).ok()) needs_recovery_ = true;
  return response;
}

Status TisSpiTransport::DoCancel() {
  if (!executing_) return Status::Ok();
  Status s = WriteStatus(tis::kStsCommandCancel);
  if (!s.ok()) return Fail(s, "writing TPM_STS.commandCancel");
  return Status::Ok();
}

void TisSpiTransport::DoAbandonResponse() {
  if (executing_) (void)WriteStatus(tis::kStsCommandCancel);
  Recover();
}

Status TisSpiTransport::DoSetLocality(uint8_t locality) {
  if (locality > tis::kMaxLocality) {
    return Status::Error(Layer::kHarness,
                         "TIS: locality " + std::to_string(locality) + " does not exist (0..4)");
  }
  if (executing_) return Fail("cannot change locality while a command is in flight");
  if (locality == config_.locality && have_locality_) return Status::Ok();
  (void)ReleaseLocality();
  config_.locality = locality;
  TRY(RequestLocality());
  needs_recovery_ = false;
  return MakeReady("after taking the locality");
}

Transport::Info TisSpiTransport::DoInfo() const {
  char id[32];
  std::snprintf(id, sizeof id, "%04x:%04x:%02x", chip_.vendor_id, chip_.device_id, chip_.revision);
  std::string vendor = TisVendorName(chip_.vendor_id);
  return {"tis-spi", bus_.info().description + ", TPM " + (vendor.empty() ? "" : vendor + " ") +
                         "vid:did:rid " + id + ", locality " + std::to_string(config_.locality)};
}

}  // namespace tpmlab
