#include "codec.h"

#include <openssl/evp.h>
#include <zstd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>

namespace tpmlab::store_codec {
namespace {

// Level 6: a step is tens of KB, so a stronger level costs well under a
// millisecond and finds more of what the step shares with its reference.
constexpr int kLevel = 6;

template <typename T>
void Put(Bytes& out, T v) {
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // little-endian hosts only: the file stays on the host kind that wrote it
  out.insert(out.end(), b, b + sizeof(T));
}

template <typename T>
bool Get(ByteView in, size_t& at, T& v) {
  if (at > in.size() || in.size() - at < sizeof(T)) return false;
  std::memcpy(&v, in.data() + at, sizeof(T));
  at += sizeof(T);
  return true;
}

bool GetBytes(ByteView in, size_t& at, Bytes& v) {
  uint32_t n = 0;
  if (!Get(in, at, n) || in.size() - at < n) return false;
  v.assign(in.begin() + static_cast<std::ptrdiff_t>(at), in.begin() + static_cast<std::ptrdiff_t>(at + n));
  at += n;
  return true;
}

}  // namespace

Bytes Compress(ByteView data, ByteView prefix) {
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, kLevel);
  if (!prefix.empty()) ZSTD_CCtx_refPrefix(cctx.get(), prefix.data(), prefix.size());
  Bytes out(ZSTD_compressBound(data.size()));
  const size_t n = ZSTD_compress2(cctx.get(), out.data(), out.size(), data.data(), data.size());
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}

Result<Bytes> Decompress(ByteView frame, ByteView prefix) {
  const unsigned long long size = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > (1ull << 31)) {
    return Status::Parse("not a zstd frame this store wrote");
  }
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!prefix.empty()) ZSTD_DCtx_refPrefix(dctx.get(), prefix.data(), prefix.size());
  Bytes out(size);
  ZSTD_inBuffer in{frame.data(), frame.size(), 0};
  ZSTD_outBuffer o{out.data(), out.size(), 0};
  const size_t rc = ZSTD_decompressStream(dctx.get(), &o, &in);
  if (ZSTD_isError(rc) || o.pos != out.size()) {
    return Status::Parse(std::string("corrupt compressed evidence: ") +
                         (ZSTD_isError(rc) ? ZSTD_getErrorName(rc) : "cut short"));
  }
  return out;
}

Bytes Sha256(ByteView data) {
  Bytes md(32);
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md.data(), &n, EVP_sha256(), nullptr);
  md.resize(n);
  return md;
}

void PackTrace(const std::vector<TraceRecord>& trace, Bytes& out) {
  Put(out, static_cast<uint32_t>(trace.size()));
  for (const auto& r : trace) {
    Put(out, r.sequence);
    Put(out, r.command_code);
    Put(out, r.response_code);
    Put(out, static_cast<uint8_t>(r.failed));
    Put(out, static_cast<int64_t>(r.duration.count()));
    Put(out, static_cast<uint32_t>(r.command.size()));
    out.insert(out.end(), r.command.begin(), r.command.end());
    Put(out, static_cast<uint32_t>(r.response.size()));
    out.insert(out.end(), r.response.begin(), r.response.end());
  }
}

bool UnpackTrace(ByteView in, size_t at, std::vector<TraceRecord>& out, size_t* end) {
  uint32_t n = 0;
  if (!Get(in, at, n)) return false;
  out.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    TraceRecord r;
    uint8_t failed = 0;
    int64_t ns = 0;
    if (!Get(in, at, r.sequence) || !Get(in, at, r.command_code) || !Get(in, at, r.response_code) ||
        !Get(in, at, failed) || !Get(in, at, ns) || !GetBytes(in, at, r.command) || !GetBytes(in, at, r.response)) {
      return false;
    }
    r.failed = failed != 0;
    r.duration = std::chrono::nanoseconds(ns);
    out.push_back(std::move(r));
  }
  if (end) *end = at;
  return true;
}

namespace {
constexpr uint32_t kTraceTimesTag = 0x314d4954;  // "TIM1"
constexpr int64_t kNoTime = INT64_MIN;
}  // namespace

void PackTraceTimes(const std::vector<TraceRecord>& trace, Bytes& out) {
  const bool any = std::any_of(trace.begin(), trace.end(), [](const TraceRecord& r) { return r.since_step_start.has_value(); });
  if (!any) return;
  Put(out, kTraceTimesTag);
  Put(out, static_cast<uint32_t>(trace.size()));
  for (const auto& r : trace) Put(out, r.since_step_start ? static_cast<int64_t>(r.since_step_start->count()) : kNoTime);
}

bool UnpackTraceTimes(ByteView in, size_t at, std::vector<TraceRecord>& trace) {
  if (at == in.size()) return true;  // stored before the times were kept
  uint32_t tag = 0, n = 0;
  if (!Get(in, at, tag) || tag != kTraceTimesTag || !Get(in, at, n) || n != trace.size()) return false;
  for (auto& r : trace) {
    int64_t ns = 0;
    if (!Get(in, at, ns)) return false;
    if (ns != kNoTime) r.since_step_start = std::chrono::nanoseconds(ns);
  }
  return true;
}

}  // namespace tpmlab::store_codec
