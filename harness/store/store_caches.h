// Private to harness/store: what a Store keeps in memory between calls.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>

#include "harness/store.h"

namespace tpmlab {

// A reference step's raw record, per run and action: the steps after it are
// compressed against it. One becomes pending while its step is written and
// is only used once that step's transaction committed.
struct Store::Caches {
  struct Reference {
    int64_t id = 0;
    Bytes raw;
  };
  using Key = std::pair<int64_t, std::string>;
  std::map<Key, Reference> references;
  std::optional<std::pair<Key, Reference>> pending;
  std::map<int64_t, Bytes> read;  // blobs read back (references, event logs), a few at a time
};

}  // namespace tpmlab
