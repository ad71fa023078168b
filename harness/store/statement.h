// Private to harness/store: a prepared SQLite statement that finalises itself.
#pragma once

#include <sqlite3.h>

#include <optional>
#include <string>

#include "drivers/bytes.h"

namespace tpmlab {

// A prepared statement that finalises itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  bool ok() const { return stmt_ != nullptr; }

  Statement& Text(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& Int(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); return *this; }
  Statement& Real(int i, double v) { sqlite3_bind_double(stmt_, i, v); return *this; }
  Statement& Blob(int i, const Bytes& v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& Null(int i) { sqlite3_bind_null(stmt_, i); return *this; }
  bool Row() { return sqlite3_step(stmt_) == SQLITE_ROW; }
  std::string ColumnText(int i) {
    const unsigned char* t = sqlite3_column_text(stmt_, i);
    return t ? reinterpret_cast<const char*>(t) : "";
  }
  std::optional<Bytes> ColumnBlob(int i) {
    if (sqlite3_column_type(stmt_, i) == SQLITE_NULL) return std::nullopt;
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, i));
    return Bytes(p, p + sqlite3_column_bytes(stmt_, i));
  }
  // The first column of the first row (0 when there is none).
  int64_t ColumnInt() {
    const int64_t v = sqlite3_step(stmt_) == SQLITE_ROW ? sqlite3_column_int64(stmt_, 0) : 0;
    sqlite3_reset(stmt_);
    return v;
  }
  sqlite3_stmt* stmt() { return stmt_; }
  bool Run() {
    const int rc = sqlite3_step(stmt_);
    sqlite3_reset(stmt_);
    return rc == SQLITE_DONE || rc == SQLITE_ROW;
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};


}  // namespace tpmlab
