// Private to harness/store: how a step's evidence is packed before it goes
// into a BLOB column. zstd for what does not repeat, sha256 to name what does.
#pragma once

#include <string>
#include <vector>

#include "drivers/bytes.h"
#include "drivers/trace_record.h"
#include "drivers/status.h"

namespace tpmlab::store_codec {

/// zstd; with a prefix, what the data shares with it costs a few bytes (the
/// same prefix must be given to Decompress).
Bytes Compress(ByteView data, ByteView prefix = {});
Result<Bytes> Decompress(ByteView frame, ByteView prefix = {});

Bytes Sha256(ByteView data);

/// A step's command trace, packed: per command its sequence number, codes,
/// duration in nanoseconds and both byte strings, in order.
void PackTrace(const std::vector<TraceRecord>& trace, Bytes& out);
/// Reads what PackTrace wrote from `at` on (`end`: where it stopped); false
/// when the bytes are cut short.
bool UnpackTrace(ByteView packed, size_t at, std::vector<TraceRecord>& out, size_t* end = nullptr);

/// When each command was sent within its step (TraceRecord::since_step_start),
/// as a section of its own at the end of a step's record: a tpmlab that
/// predates it stops reading before it, and a record without it (stored
/// earlier) leaves the times absent. Writes nothing when no command has one.
void PackTraceTimes(const std::vector<TraceRecord>& trace, Bytes& out);
/// Reads that section from `at` when it is there; false when it is there but
/// damaged or does not match the trace.
bool UnpackTraceTimes(ByteView packed, size_t at, std::vector<TraceRecord>& trace);

}  // namespace tpmlab::store_codec
