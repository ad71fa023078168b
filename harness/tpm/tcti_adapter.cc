#include "tcti_adapter.h"

#include <cstddef>
#include <cstring>

namespace tpmlab {
namespace {
constexpr uint64_t kMagic = 0x74706d6c61624154ULL;  // "tpmlabAT"
}

TctiAdapter::TctiAdapter(Transport& transport) : transport_(transport) {
  static_assert(offsetof(Context, table) == 0, "the TCTI table must come first");
  context_.self = this;
  auto& table_ = context_.table;
  table_.v1.magic = kMagic;
  table_.v1.version = 2;
  table_.v1.transmit = &TctiAdapter::Transmit;
  table_.v1.receive = &TctiAdapter::Receive;
  table_.v1.finalize = &TctiAdapter::Finalize;
  table_.v1.cancel = &TctiAdapter::Cancel;
  table_.v1.getPollHandles = &TctiAdapter::GetPollHandles;
  table_.v1.setLocality = &TctiAdapter::SetLocality;
  table_.makeSticky = &TctiAdapter::MakeSticky;
}

TctiAdapter* TctiAdapter::From(TSS2_TCTI_CONTEXT* ctx) {
  if (ctx == nullptr) return nullptr;
  auto* c = reinterpret_cast<Context*>(ctx);
  return c->table.v1.magic == kMagic ? c->self : nullptr;
}

TSS2_RC TctiAdapter::Fail(Status status, TSS2_RC rc) {
  last_error_ = std::move(status);
  return rc;
}

TSS2_RC TctiAdapter::Transmit(TSS2_TCTI_CONTEXT* ctx, size_t size, const uint8_t* command) {
  TctiAdapter* self = From(ctx);
  if (self == nullptr) return TSS2_TCTI_RC_BAD_CONTEXT;
  if (command == nullptr) return TSS2_TCTI_RC_BAD_REFERENCE;
  if (self->have_response_) {
    return self->Fail(Status::Error(Layer::kHarness, "transmit before the last response was read"),
                      TSS2_TCTI_RC_BAD_SEQUENCE);
  }
  Status s = self->transport_.Transmit(ByteView(command, size));
  if (!s.ok()) {
    // The base Transport refuses a command out of sequence or with a header
    // that disagrees with its length; anything else is I/O.
    const bool refused = s.layer() == Layer::kHarness;
    const bool sequence = refused && s.message().find("sequence") != std::string::npos;
    return self->Fail(s, !refused ? TSS2_TCTI_RC_IO_ERROR
                                  : sequence ? TSS2_TCTI_RC_BAD_SEQUENCE : TSS2_TCTI_RC_BAD_VALUE);
  }
  return TSS2_RC_SUCCESS;
}

TSS2_RC TctiAdapter::Receive(TSS2_TCTI_CONTEXT* ctx, size_t* size, uint8_t* response,
                             int32_t timeout) {
  TctiAdapter* self = From(ctx);
  if (self == nullptr) return TSS2_TCTI_RC_BAD_CONTEXT;
  if (size == nullptr) return TSS2_TCTI_RC_BAD_REFERENCE;
  if (!self->have_response_) {
    // Block means "the transport's per-command timeout": a hung TPM must
    // cost at most that, never forever.
    auto wait = timeout < 0 ? self->transport_.command_timeout()
                            : std::chrono::milliseconds(timeout);
    auto r = self->transport_.Receive(wait);
    if (!r.ok()) {
      // A caller-chosen short timeout may try again; the transport's own
      // timeout is final (ESAPI would otherwise retry for ever).
      const bool retry = r.status().timed_out() && timeout >= 0;
      if (!retry) self->transport_.AbandonResponse();
      return self->Fail(r.status(), retry ? TSS2_TCTI_RC_TRY_AGAIN : TSS2_TCTI_RC_IO_ERROR);
    }
    self->response_ = std::move(*r);
    self->have_response_ = true;
    self->last_response_code_ = TpmHeaderCode(self->response_);
  }
  // The size query form: report the length and keep the response.
  if (response == nullptr) {
    *size = self->response_.size();
    return TSS2_RC_SUCCESS;
  }
  if (*size < self->response_.size()) {
    *size = self->response_.size();
    return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;
  }
  std::memcpy(response, self->response_.data(), self->response_.size());
  *size = self->response_.size();
  self->have_response_ = false;
  self->response_.clear();
  return TSS2_RC_SUCCESS;
}

void TctiAdapter::Finalize(TSS2_TCTI_CONTEXT*) {
  // The adapter's owner (Tpm) controls its lifetime; nothing to free here.
}

TSS2_RC TctiAdapter::Cancel(TSS2_TCTI_CONTEXT* ctx) {
  TctiAdapter* self = From(ctx);
  if (self == nullptr) return TSS2_TCTI_RC_BAD_CONTEXT;
  Status s = self->transport_.Cancel();
  return s.ok() ? TSS2_RC_SUCCESS : self->Fail(s, TSS2_TCTI_RC_IO_ERROR);
}

TSS2_RC TctiAdapter::GetPollHandles(TSS2_TCTI_CONTEXT*, TSS2_TCTI_POLL_HANDLE*, size_t*) {
  return TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

TSS2_RC TctiAdapter::SetLocality(TSS2_TCTI_CONTEXT* ctx, uint8_t locality) {
  TctiAdapter* self = From(ctx);
  if (self == nullptr) return TSS2_TCTI_RC_BAD_CONTEXT;
  if (self->have_response_) return TSS2_TCTI_RC_BAD_SEQUENCE;
  Status s = self->transport_.SetLocality(locality);
  return s.ok() ? TSS2_RC_SUCCESS : self->Fail(s, TSS2_TCTI_RC_IO_ERROR);
}

TSS2_RC TctiAdapter::MakeSticky(TSS2_TCTI_CONTEXT*, TPM2_HANDLE*, uint8_t) {
  return TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

}  // namespace tpmlab
