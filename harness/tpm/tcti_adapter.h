// TctiAdapter: presents a drivers::Transport to tpm2-tss as a TCTI, so ESAPI
// talks through any backend or decorator tpmlab has.
#pragma once

#include <tss2/tss2_tcti.h>

#include "drivers/transport.h"

namespace tpmlab {

class TctiAdapter {
 public:
  explicit TctiAdapter(Transport& transport);
  TctiAdapter(const TctiAdapter&) = delete;
  TctiAdapter& operator=(const TctiAdapter&) = delete;

  TSS2_TCTI_CONTEXT* context() { return reinterpret_cast<TSS2_TCTI_CONTEXT*>(&context_); }
  // Why the last transmit or receive failed, in the transport's words.
  const Status& last_error() const { return last_error_; }
  // The response code of the last response received (ESAPI hides some).
  uint32_t last_response_code() const { return last_response_code_; }
  // Drops a response still held, after the ESAPI context was rebuilt.
  void Reset() {
    response_.clear();
    have_response_ = false;
  }

 private:
  static TctiAdapter* From(TSS2_TCTI_CONTEXT* ctx);
  static TSS2_RC Transmit(TSS2_TCTI_CONTEXT* ctx, size_t size, const uint8_t* command);
  static TSS2_RC Receive(TSS2_TCTI_CONTEXT* ctx, size_t* size, uint8_t* response,
                         int32_t timeout);
  static void Finalize(TSS2_TCTI_CONTEXT* ctx);
  static TSS2_RC Cancel(TSS2_TCTI_CONTEXT* ctx);
  static TSS2_RC GetPollHandles(TSS2_TCTI_CONTEXT* ctx, TSS2_TCTI_POLL_HANDLE* handles,
                                size_t* num_handles);
  static TSS2_RC SetLocality(TSS2_TCTI_CONTEXT* ctx, uint8_t locality);
  static TSS2_RC MakeSticky(TSS2_TCTI_CONTEXT* ctx, TPM2_HANDLE* handle, uint8_t sticky);
  TSS2_RC Fail(Status status, TSS2_RC rc);

  // What tpm2-tss holds: the function table first (it casts the context to
  // it), then the way back to the adapter.
  struct Context {
    TSS2_TCTI_CONTEXT_COMMON_V2 table;
    TctiAdapter* self;
  };
  Context context_{};
  Transport& transport_;
  Bytes response_;
  bool have_response_ = false;
  Status last_error_;
  uint32_t last_response_code_ = 0;
};

}  // namespace tpmlab
