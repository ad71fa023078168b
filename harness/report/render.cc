// The report's page: the model as one JSON block, Chart.js and the report's
// own script inlined, and a Content-Security-Policy that forbids every fetch
// (the file opens offline and cannot leak what it shows).
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "harness/report.h"
#include "report_js.h"

namespace tpmlab {

namespace fs = std::filesystem;

namespace {

// default-src 'none' forbids every fetch (scripts, styles, fonts, frames,
// XHR, WebSocket); inline scripts and styles are what the page is made of;
// images only as data: (Chart.js draws on canvas and needs none).
constexpr char kContentSecurityPolicy[] =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'";

constexpr char kStyle[] = R"css(
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 2em 4em; color: #1d2430; }
h1 { font-size: 1.5em; margin: 0.8em 0 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccd; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccd; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #eef1f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.chart { position: relative; height: 280px; max-width: 1200px; }
.status-passed { color: #17702a; font-weight: bold; } .status-failed, .status-error, .status-interrupted { color: #b0201a; font-weight: bold; }
.sev-error { color: #b0201a; } .sev-warning { color: #9a6400; }
table.grid td.cell { width: 2.2em; text-align: center; padding: 1px; }
table.grid td.cell a { display: block; text-decoration: none; color: #fff; font-weight: bold; }
td.prev { background: #d9822b; } td.golden { background: #2b6cd9; } td.both { background: #8a2bd9; }
.legend span { display: inline-block; padding: 0 6px; margin-right: 6px; color: #fff; }
.muted { color: #667; } .left-out { color: #9a6400; font-style: italic; }
#drift-detail { margin-top: 1em; padding: 0.5em; border: 1px solid #ccd; background: #fafbfd; }
details { margin: 0.3em 0; } pre { white-space: pre-wrap; margin: 0; font-size: 12px; }
)css";

constexpr char kBody[] = R"html(
<h1 id="title">tpmlab report</h1>
<div id="header"></div>
<nav><a href="#alarms">Alarms</a><a href="#pcr-grid">PCR grid</a><a href="#counters">Counters and clock</a>
<a href="#latency">Latency</a><a href="#expectations">Expectations</a><a href="#checks">Checks</a>
<a href="#faults">Faults and firmware</a><a href="#causes">Causes</a><a href="#files">Files</a></nav>
<section id="alarms"><h2>Alarms over the steps</h2><div id="alarm-chart"></div><div id="alarm-groups"></div></section>
<section id="pcr-grid"><h2>PCR changes per boot</h2>
<p class="legend"><span style="background:#d9822b">P</span>changed against the previous boot
<span style="background:#2b6cd9">G</span>against golden <span style="background:#8a2bd9">PG</span>both &mdash;
click a cell for its events</p><div id="grid-banks"></div><div id="drift-detail" hidden></div></section>
<section id="counters"><h2>resetCount, restartCount, clock and safe over the steps</h2><div id="counter-charts"></div></section>
<section id="latency"><h2>Command latency</h2><div id="latency-table"></div><div id="latency-chart"></div></section>
<section id="expectations"><h2>Expectations</h2><div id="expectation-list"></div></section>
<section id="checks"><h2>Checks</h2><div id="check-list"></div></section>
<section id="faults"><h2>Faults injected, firmware changes, errors</h2><div id="note-list"></div></section>
<section id="causes"><h2>Drift causes</h2><div id="cause-list"></div></section>
<section id="files"><h2>The run's files</h2><div id="file-list"></div></section>
)html";

// The model inside <script type="application/json">: no '<' may appear raw
// (a "</script>" in an alarm message would end the block), so every one is
// written as the JSON escape \u003c, which JSON.parse reads back.
std::string EmbeddedJson(const nlohmann::json& model) {
  const std::string text = model.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size() + 64);
  for (char c : text) {
    if (c == '<') {
      out += "\\u003c";
    } else {
      out += c;
    }
  }
  return out;
}

std::string HtmlEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// A script's text may not hold "</script" (it would end the element early).
std::string InlineScript(const std::string& source) {
  std::string out;
  size_t from = 0;
  for (size_t at; (at = source.find("</script", from)) != std::string::npos; from = at + 2) {
    out += source.substr(from, at - from) + "<\\/";
  }
  return out + source.substr(from);
}

}  // namespace

fs::path ChartJsPath() {
  if (const char* env = std::getenv("TPMLAB_CHART_JS"); env != nullptr && *env != '\0') return env;
  return "/usr/share/javascript/chart.js/chart.min.js";
}

Result<std::string> LoadChartJs() {
  const fs::path path = ChartJsPath();
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || text.str().find("Chart") == std::string::npos) {
    return Status::Error(Layer::kHarness, "Chart.js not found at " + path.string() +
                                              ": install Debian's libjs-chart.js (apt-get install libjs-chart.js) "
                                              "or name the file in TPMLAB_CHART_JS")
        .WithKind(ErrorKind::kMissingPackage);
  }
  return text.str();
}

std::string RenderReportHtml(const nlohmann::json& model, const std::string& chart_js) {
  const std::string scenario = model["run"].value("scenario", "");
  std::string html;
  html.reserve(chart_js.size() + 64 * 1024);
  html += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  html += "<meta http-equiv=\"Content-Security-Policy\" content=\"" + std::string(kContentSecurityPolicy) + "\">\n";
  html += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  html += "<title>tpmlab report: " + HtmlEscape(scenario) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>";
  html += kBody;
  html += "<script type=\"application/json\" id=\"report-data\">" + EmbeddedJson(model) + "</script>\n";
  html += "<script>/* Chart.js, from " + HtmlEscape(ChartJsPath().string()) + " */\n" + InlineScript(chart_js) + "\n</script>\n";
  html += "<script>\n" + InlineScript(report_js::Source()) + "\n</script>\n</body>\n</html>\n";
  return html;
}

}  // namespace tpmlab
