#include "harness/trace.h"

#include <sys/utsname.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <map>

#include "pcapng.h"

namespace tpmlab {
namespace {

constexpr uint16_t kTpmPort = 2321;         // the TPM simulator's command port
constexpr uint32_t kTpmSendCommand = 8;     // the simulator's TPM_SEND_COMMAND
constexpr uint32_t kStartupCode = 0x144;    // TPM2_Startup
constexpr uint16_t kFirstClientPort = 49152;

// "2026-12-07T03:34:45.123Z" (UtcNow) as nanoseconds since the epoch.
std::optional<int64_t> ParseUtc(const std::string& text) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  int64_t fraction_ns = 0;
  if (text[static_cast<size_t>(consumed)] == '.') {
    int64_t scale = 100000000;
    for (size_t i = static_cast<size_t>(consumed) + 1; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
      fraction_ns += (text[i] - '0') * scale;
      scale /= 10;
    }
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t seconds = ::timegm(&tm);
  if (seconds == static_cast<std::time_t>(-1)) return std::nullopt;
  return static_cast<int64_t>(seconds) * 1000000000 + fraction_ns;
}

std::string Hex(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof(b), "0x%03x", v);
  return b;
}

std::string Join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "\n" + b;
}

// "step 7: power_cycle reset (cycle 3), passed" and what went wrong.
std::string DescribeStep(const StepResult& s) {
  std::string d = "step " + std::to_string(s.index) + ": " + s.action;
  if (!s.kind.empty()) d += " " + s.kind;
  if (s.cycle) d += " (cycle " + std::to_string(*s.cycle) + ")";
  d += ", " + s.status;
  if (s.rc) d += ", TPM said " + Hex(*s.rc);
  if (!s.error.empty()) d += "; error: " + s.error.substr(0, s.error.find('\n'));
  for (const auto& a : s.alarms) d += "; alarm " + a.code;
  if (s.detail.is_object()) {
    for (const auto& [key, value] : s.detail.items()) {
      if (key == "faults_injected") continue;  // on the packets they hit
      d += "; " + key + ": " + (value.is_string() ? value.get<std::string>() : value.dump());
    }
  }
  return d;
}

// sequence number -> "fault injected: drop (TPM2_Quote)"
std::map<uint64_t, std::string> FaultsBySequence(const StepResult& s) {
  std::map<uint64_t, std::string> out;
  if (!s.detail.is_object() || !s.detail.contains("faults_injected")) return out;
  for (const auto& f : s.detail["faults_injected"]) {
    if (!f.is_object() || !f.contains("sequence") || !f["sequence"].is_number_unsigned()) continue;
    auto& text = out[f["sequence"].get<uint64_t>()];
    text = Join(text, "fault injected: " + f.value("fault", std::string("?")) + " (" +
                          f.value("command", std::string("?")) + ")");
  }
  return out;
}

std::string ThisOs() {
  struct utsname u {};
  if (::uname(&u) != 0) return {};
  return std::string(u.sysname) + " " + u.release + " " + u.machine + " (where the trace was exported)";
}

Bytes Be32(uint32_t v) { return {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)}; }

class TraceWriter {
 public:
  explicit TraceWriter(std::ostream& out) : writer_(out) {}

  void Begin(const Store& store, const StoredRun& run, const TraceExportOptions& options) {
    std::string comment = "tpmlab run " + std::to_string(run.id) + " of " + store.name() + "\nscenario " +
                          run.info.scenario + " (seed " + std::to_string(run.info.seed) + "), " + run.status +
                          "\nDUT " + run.info.dut + "\nhost " + run.info.host + ", started " + run.info.started_at +
                          "\nsteps: " + (options.step ? std::to_string(*options.step) : std::string("all")) +
                          "\nharness 192.0.2.1 -> DUT 192.0.2.2 port 2321, TPM simulator framing; one TCP "
                          "connection per boot; packet times are when each command was sent";
    writer_.SectionHeader("DUT " + run.info.dut, ThisOs(), "tpmlab " + run.info.tpmlab_version + " (tpmlab trace)",
                          comment);
    writer_.EthernetInterface("tpmlab", "the TPM commands of a tpmlab run between the harness and its DUT");
  }

  void Step(const StepResult& s) {
    ++summary_.steps;
    const int64_t step_ns = ParseUtc(s.started_at).value_or(writer_.last_ns());
    std::string pending = DescribeStep(s);
    step_text_ = pending;
    bool estimated = false;
    for (const auto& t : s.trace) estimated = estimated || !t.since_step_start;
    if (estimated && !s.trace.empty()) {
      ++summary_.steps_estimated;
      pending = Join(pending, "times estimated: stored before tpmlab kept when each command was sent; commands "
                              "placed back to back from the step's start");
    }
    const auto faults = FaultsBySequence(s);
    int64_t cursor = step_ns;
    for (const auto& t : s.trace) {
      const int64_t sent = t.since_step_start ? step_ns + t.since_step_start->count() : cursor;
      cursor = sent + t.duration.count();
      // A TPM2_Startup after one that succeeded is the DUT's next boot (a
      // TPM that did not restart refuses it): a connection of its own.
      if (t.command_code == kStartupCode && connection_ && started_up_) {
        CloseConnection(sent, "the DUT goes down");
      }
      if (!connection_) Open(sent);
      std::string comment = pending;
      pending.clear();
      if (auto f = faults.find(t.sequence); f != faults.end()) comment = Join(comment, f->second);
      if (t.failed) comment = Join(comment, "no response: the transport gave none for this command");
      SendCommand(t, sent, comment);
      if (t.command_code == kStartupCode && !t.failed && t.response_code == 0) started_up_ = true;
      ++summary_.commands;
    }
    // A step without commands (expect, wait, a fault armed) says what it did on the next packet.
    carried_ = Join(carried_, pending);
  }

  TraceExportSummary Finish() {
    CloseConnection(writer_.last_ns(), "end of the trace");
    summary_.packets = writer_.packets();
    return summary_;
  }

 private:
  void Open(int64_t ns) {
    const uint16_t port = static_cast<uint16_t>(kFirstClientPort + summary_.connections % 16384);
    const uint32_t isn = static_cast<uint32_t>(0x10000000u + summary_.connections * 0x10000u);
    connection_.emplace(writer_, port, kTpmPort, isn, isn ^ 0x5a5a0000u);
    connection_->Open(ns, "boot " + std::to_string(summary_.connections + 1) + " of the DUT, in " + step_text_);
    ++summary_.connections;
    started_up_ = false;
  }

  void CloseConnection(int64_t ns, const std::string& comment) {
    if (!connection_) return;
    connection_->Close(ns, comment);
    connection_.reset();
  }

  void SendCommand(const TraceRecord& t, int64_t sent, const std::string& comment) {
    // TPM_SEND_COMMAND, locality 0, the command's size: the header tss2's mssim TCTI sends alone.
    Bytes header = Be32(kTpmSendCommand);
    header.push_back(0);
    const Bytes size = Be32(static_cast<uint32_t>(t.command.size()));
    header.insert(header.end(), size.begin(), size.end());
    connection_->Send(true, sent, header, Join(carried_, comment));
    carried_.clear();
    connection_->Send(true, sent, t.command);
    if (t.failed) {
      ++summary_.unanswered;
      return;
    }
    const int64_t answered = sent + t.duration.count();
    connection_->Send(false, answered, Be32(static_cast<uint32_t>(t.response.size())));
    connection_->Send(false, answered, t.response);
    connection_->Send(false, answered, Be32(0));  // the simulator's trailing ack
  }

  pcapng::Writer writer_;
  std::optional<pcapng::TcpConnection> connection_;
  bool started_up_ = false;  // the connection carried a TPM2_Startup that succeeded
  std::string step_text_;
  std::string carried_;
  TraceExportSummary summary_;
};

}  // namespace

Result<TraceExportSummary> WriteTracePcapng(Store& store, const StoredRun& run, const TraceExportOptions& options,
                                            std::ostream& out) {
  TraceWriter writer(out);
  writer.Begin(store, run, options);
  bool found = false;
  Status walked = store.ForEachStep(run.id, [&](StepResult&& s) -> Status {
    if (options.step && s.index != *options.step) return Status::Ok();
    found = true;
    writer.Step(s);
    return out ? Status::Ok() : Status::Error(Layer::kHarness, "cannot write the trace");
  });
  if (!walked.ok()) return walked;
  if (options.step && !found) {
    return Status::Error(Layer::kHarness, "run " + std::to_string(run.id) + " has no step " + std::to_string(*options.step));
  }
  TraceExportSummary summary = writer.Finish();
  if (!out) return Status::Error(Layer::kHarness, "cannot write the trace");
  return summary;
}

}  // namespace tpmlab
