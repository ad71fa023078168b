#include "drivers/swtpm_control.h"

namespace tpmlab {

const char* SwtpmCtrlName(SwtpmCtrl code) {
  switch (code) {
    case SwtpmCtrl::kGetCapability: return "CMD_GET_CAPABILITY";
    case SwtpmCtrl::kInit: return "CMD_INIT";
    case SwtpmCtrl::kShutdown: return "CMD_SHUTDOWN";
    case SwtpmCtrl::kGetTpmEstablished: return "CMD_GET_TPMESTABLISHED";
    case SwtpmCtrl::kSetLocality: return "CMD_SET_LOCALITY";
    case SwtpmCtrl::kHashStart: return "CMD_HASH_START";
    case SwtpmCtrl::kHashData: return "CMD_HASH_DATA";
    case SwtpmCtrl::kHashEnd: return "CMD_HASH_END";
    case SwtpmCtrl::kCancelTpmCmd: return "CMD_CANCEL_TPM_CMD";
    case SwtpmCtrl::kStoreVolatile: return "CMD_STORE_VOLATILE";
    case SwtpmCtrl::kResetTpmEstablished: return "CMD_RESET_TPMESTABLISHED";
    case SwtpmCtrl::kGetStateBlob: return "CMD_GET_STATEBLOB";
    case SwtpmCtrl::kSetStateBlob: return "CMD_SET_STATEBLOB";
    case SwtpmCtrl::kStop: return "CMD_STOP";
    case SwtpmCtrl::kGetConfig: return "CMD_GET_CONFIG";
    case SwtpmCtrl::kSetDatafd: return "CMD_SET_DATAFD";
    case SwtpmCtrl::kSetBufferSize: return "CMD_SET_BUFFERSIZE";
    case SwtpmCtrl::kGetInfo: return "CMD_GET_INFO";
  }
  return "CMD_UNKNOWN";
}

std::string SwtpmResultName(uint32_t result) {
  switch (result) {
    case 0: return "TPM_SUCCESS";
    case 3: return "TPM_BAD_PARAMETER";
    case 9: return "TPM_FAIL";
    case 10: return "TPM_BAD_ORDINAL (is the TPM running, or stopped?)";
    case 23: return "TPM_SIZE";
    case 31: return "TPM_IOERROR";
    case 61: return "TPM_BAD_LOCALITY";
    default: return "result " + std::to_string(result);
  }
}

Result<Bytes> SwtpmControl::CallOn(Socket& s, SwtpmCtrl code, ByteView request,
                                    size_t rest) {
  const std::string what = std::string(SwtpmCtrlName(code)) + " on " + endpoint_.ToString();
  Bytes msg = ByteWriter().U32(static_cast<uint32_t>(code)).Append(request).Take();
  Status sent = s.SendAll(msg, timeout_);
  if (!sent.ok()) return sent.Wrap(what);

  uint8_t res_bytes[4];
  Status got = s.ReadExact(res_bytes, sizeof(res_bytes), timeout_);
  if (!got.ok()) return got.Wrap(what);
  const uint32_t res = uint32_t{res_bytes[0]} << 24 | uint32_t{res_bytes[1]} << 16 |
                       uint32_t{res_bytes[2]} << 8 | res_bytes[3];
  if (res != 0) {
    return Status::Error(Layer::kEmulator, what + " failed: " + SwtpmResultName(res));
  }
  Bytes body(rest);
  if (rest > 0) {
    got = s.ReadExact(body.data(), rest, timeout_);
    if (!got.ok()) return got.Wrap(what);
  }
  return body;
}

Result<Bytes> SwtpmControl::Call(SwtpmCtrl code, ByteView request, size_t rest) {
  auto s = Socket::Connect(endpoint_, timeout_);
  if (!s.ok()) return s.status().Wrap(SwtpmCtrlName(code));
  return CallOn(*s, code, request, rest);
}

Status SwtpmControl::Simple(SwtpmCtrl code, ByteView request) {
  return Call(code, request, 0).status();
}

Result<uint64_t> SwtpmControl::GetCapability() {
  // The response is one u64; its high half is the result word we already read.
  TRY_ASSIGN(Bytes body, Call(SwtpmCtrl::kGetCapability, {}, 4));
  ByteReader r(body, "CMD_GET_CAPABILITY response");
  TRY_ASSIGN(uint32_t caps, r.U32());
  return uint64_t{caps};
}

Status SwtpmControl::Init(bool delete_volatile) {
  Bytes req = ByteWriter().U32(delete_volatile ? 1 : 0).Take();
  return Simple(SwtpmCtrl::kInit, req);
}

Status SwtpmControl::Shutdown() { return Simple(SwtpmCtrl::kShutdown); }

Result<bool> SwtpmControl::GetTpmEstablished() {
  TRY_ASSIGN(Bytes body, Call(SwtpmCtrl::kGetTpmEstablished, {}, 4));
  return (body[0] & 1) != 0;
}

Status SwtpmControl::SetLocality(uint8_t locality) {
  const uint8_t req[] = {locality};
  return Simple(SwtpmCtrl::kSetLocality, req);
}

Status SwtpmControl::HashStart() { return Simple(SwtpmCtrl::kHashStart); }

Status SwtpmControl::HashData(ByteView data) {
  Bytes req = ByteWriter().U32(static_cast<uint32_t>(data.size())).Append(data).Take();
  return Simple(SwtpmCtrl::kHashData, req);
}

Status SwtpmControl::HashEnd() { return Simple(SwtpmCtrl::kHashEnd); }

Status SwtpmControl::CancelTpmCommand() { return Simple(SwtpmCtrl::kCancelTpmCmd); }

Status SwtpmControl::StoreVolatile() { return Simple(SwtpmCtrl::kStoreVolatile); }

Status SwtpmControl::ResetTpmEstablished(uint8_t locality) {
  const uint8_t req[] = {locality};
  return Simple(SwtpmCtrl::kResetTpmEstablished, req);
}

Result<StateBlob> SwtpmControl::GetStateBlob(StateBlobType type, bool decrypted) {
  const std::string what = "CMD_GET_STATEBLOB";
  auto connected = Socket::Connect(endpoint_, timeout_);
  if (!connected.ok()) return connected.status().Wrap(what);
  Socket s = std::move(*connected);
  Bytes req = ByteWriter()
                  .U32(decrypted ? 1 : 0)
                  .U32(static_cast<uint32_t>(type))
                  .U32(0)  // offset: on a socket the whole blob comes at once
                  .Take();
  TRY_ASSIGN(Bytes head, CallOn(s, SwtpmCtrl::kGetStateBlob, req, 12));
  ByteReader r(head, what + " response");
  StateBlob blob;
  TRY_ASSIGN(blob.flags, r.U32());
  TRY_ASSIGN(uint32_t total, r.U32());
  TRY_ASSIGN(uint32_t length, r.U32());
  // A libtpms state is tens of KiB; refuse sizes no swtpm would send.
  constexpr uint32_t kMaxBlob = 16u << 20;
  if (length > kMaxBlob || total > kMaxBlob) {
    return Status::Error(Layer::kEmulator, what + ": implausible blob length " +
                                               std::to_string(length));
  }
  blob.data.resize(length);
  Status got = s.ReadExact(blob.data.data(), length, timeout_);
  if (!got.ok()) return got.Wrap(what);
  return blob;
}

Status SwtpmControl::SetStateBlob(StateBlobType type, ByteView data, bool encrypted) {
  Bytes req = ByteWriter()
                  .U32(encrypted ? 2 : 0)
                  .U32(static_cast<uint32_t>(type))
                  .U32(static_cast<uint32_t>(data.size()))
                  .Append(data)
                  .Take();
  return Simple(SwtpmCtrl::kSetStateBlob, req);
}

Status SwtpmControl::Stop() { return Simple(SwtpmCtrl::kStop); }

Result<uint32_t> SwtpmControl::GetConfig() {
  TRY_ASSIGN(Bytes body, Call(SwtpmCtrl::kGetConfig, {}, 4));
  ByteReader r(body, "CMD_GET_CONFIG response");
  return r.U32();
}

Result<BufferSizes> SwtpmControl::SetBufferSize(uint32_t size) {
  Bytes req = ByteWriter().U32(size).Take();
  TRY_ASSIGN(Bytes body, Call(SwtpmCtrl::kSetBufferSize, req, 12));
  ByteReader r(body, "CMD_SET_BUFFERSIZE response");
  BufferSizes sizes;
  TRY_ASSIGN(sizes.size, r.U32());
  TRY_ASSIGN(sizes.min, r.U32());
  TRY_ASSIGN(sizes.max, r.U32());
  return sizes;
}

Result<std::string> SwtpmControl::GetInfo(uint64_t flags) {
  auto connected = Socket::Connect(endpoint_, timeout_);
  if (!connected.ok()) return connected.status().Wrap("CMD_GET_INFO");
  Socket s = std::move(*connected);
  Bytes req = ByteWriter().U64(flags).U32(0).U32(0).Take();
  TRY_ASSIGN(Bytes head, CallOn(s, SwtpmCtrl::kGetInfo, req, 8));
  ByteReader r(head, "CMD_GET_INFO response");
  TRY_ASSIGN(uint32_t total, r.U32());
  TRY_ASSIGN(uint32_t length, r.U32());
  if (length > total || length > (1u << 20)) {
    return Status::Error(Layer::kEmulator, "CMD_GET_INFO: implausible length " +
                                               std::to_string(length));
  }
  std::string json(length, '\0');
  Status got = s.ReadExact(reinterpret_cast<uint8_t*>(json.data()), length, timeout_);
  if (!got.ok()) return got.Wrap("CMD_GET_INFO");
  // swtpm counts the terminating NUL in the length.
  while (!json.empty() && json.back() == '\0') json.pop_back();
  return json;
}

}  // namespace tpmlab
