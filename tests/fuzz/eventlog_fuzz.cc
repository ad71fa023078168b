// libFuzzer target: any bytes as a TCG event log. Parsing either fails with
// an offset inside the input, or gives a log that replays, checks, decodes
// to valid UTF-8 JSON and writes back to a log that parses the same.
// Built by tests/fuzz/run_fuzz.sh (clang, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>

#include "harness/event_data.h"
#include "harness/eventlog.h"
#include "harness/findings.h"
#include "harness/replay.h"

namespace {

// A broken promise of the parser's contract: stop here, with the input saved.
void Require(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tpmlab;
  auto log = ParseEventLog(ByteView(data, size));
  if (!log.ok()) {
    Require(log.status().layer() == Layer::kParse && log.status().offset().has_value() &&
            *log.status().offset() <= size);
    return 0;
  }
  (void)ReplayEventLog(*log);
  (void)CheckEventLog(*log);
  // strict: nlohmann throws (and libFuzzer reports) on invalid UTF-8.
  constexpr auto kStrict = nlohmann::json::error_handler_t::strict;
  (void)SpecIdJson(log->spec()).dump(-1, ' ', false, kStrict);
  for (const Event& e : log->events()) (void)DecodeEventData(*log, e).data.dump(-1, ' ', false, kStrict);

  const Bytes written = WriteEventLog(*log);
  auto again = ParseEventLog(ByteView(written));
  Require(again.ok() && again->size() == log->size());
  if (log->format() == LogFormat::kCryptoAgile) Require(*again == *log);
  return 0;
}
