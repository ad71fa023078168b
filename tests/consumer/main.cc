// replay_log LOG: parses a TCG event log with an installed tpmlab and prints
// what its replay gives, one line per extended PCR and bank:
//   tpmlab 0.1.0
//   format crypto-agile, 3 events
//   sha256 pcr0 <hex>
// Exit 0, or 2 with the parse error on stderr.
#include <iostream>

#include "harness/eventlog.h"
#include "harness/replay.h"
#include "harness/version.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: replay_log LOG\n";
    return 2;
  }
  auto log = tpmlab::ReadEventLogFile(argv[1]);
  if (!log.ok()) {
    std::cerr << log.status().ToString() << "\n";
    return 2;
  }
  auto replay = tpmlab::ReplayEventLog(*log);
  if (!replay.ok()) {
    std::cerr << replay.status().ToString() << "\n";
    return 2;
  }
  std::cout << "tpmlab " << tpmlab::kTpmlabVersion << "\n";
  std::cout << "format " << tpmlab::LogFormatName(log->format()) << ", " << log->size() << " events\n";
  for (const auto& [bank, pcrs] : replay->pcrs) {
    for (size_t pcr = 0; pcr < pcrs.size(); ++pcr) {
      if ((replay->extended.at(bank) >> pcr & 1u) == 0) continue;
      std::cout << tpmlab::HashAlgName(bank) << " pcr" << pcr << " " << tpmlab::ToHex(pcrs[pcr]) << "\n";
    }
  }
  return 0;
}
