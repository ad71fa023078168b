#include "drivers/spi_bus.h"

#include <thread>

namespace tpmlab {

Clock::TimePoint SystemClock::Now() {
  return std::chrono::time_point_cast<Duration>(std::chrono::steady_clock::now());
}

void SystemClock::Sleep(Duration d) {
  if (d.count() > 0) std::this_thread::sleep_for(d);
}

Clock& DefaultClock() {
  static SystemClock clock;
  return clock;
}

}  // namespace tpmlab
