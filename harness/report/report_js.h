// The report page's own script (report_js.cc): it reads the embedded model
// and draws the tables and the Chart.js charts.
#pragma once

#include <string>

namespace tpmlab::report_js {
const std::string& Source();
}  // namespace tpmlab::report_js
