// A comparison as JSON (scripts, `tpmlab compare --json`) and as one
// self-contained HTML page (a customer opens it offline).
#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness/compare.h"

namespace tpmlab {
namespace {

using nlohmann::json;

json OrNull(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }
template <typename T>
json OrNull(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

json TallyJson(const CounterTally& t) {
  return {{"first", t.first}, {"last", t.last}, {"increases", t.increases}, {"decreases", t.decreases},
          {"first_decrease_step", t.first_decrease_step < 0 ? json(nullptr) : json(t.first_decrease_step)},
          {"monotonic", t.monotonic()}};
}

json CountersJson(const CounterBehaviour& c) {
  json kinds = json::object();
  for (const auto& [kind, k] : c.by_kind) {
    kinds[kind] = {{"cycles", k.cycles},
                   {"reset_count_up", k.reset_count_up},
                   {"restart_count_up", k.restart_count_up},
                   {"safe_no", k.safe_no}};
  }
  return {{"snapshots", c.snapshots},
          {"reset_count", TallyJson(c.reset_count)},
          {"restart_count", TallyJson(c.restart_count)},
          {"clock_ms", TallyJson(c.clock)},
          {"safe_no", c.safe_no},
          {"first_safe_no_step", c.first_safe_no_step < 0 ? json(nullptr) : json(c.first_safe_no_step)},
          {"by_kind", kinds}};
}

json FiguresJson(const std::optional<LatencyFigures>& f) {
  if (!f) return nullptr;
  return {{"count", f->count}, {"p50_us", f->p50_us}, {"p90_us", f->p90_us}, {"p99_us", f->p99_us}, {"max_us", f->max_us}};
}

json ExpectationsJson(const ExpectationTally& t) {
  return {{"passed", t.passed}, {"failed", t.failed}, {"failed_names", t.failed_names}};
}

std::string Escape(const std::string& text) {
  std::string out;
  for (char ch : text) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += ch;
    }
  }
  return out;
}

// Text inside <script>: "</" would end the element early.
std::string ScriptSafe(std::string text) {
  for (size_t at = 0; (at = text.find("</", at)) != std::string::npos; at += 3) text.replace(at, 2, "<\\/");
  return text;
}

std::string Cell(const json& v) {
  if (v.is_null()) return "<td>–</td>";
  if (v.is_string()) return "<td>" + Escape(v.get<std::string>()) + "</td>";
  if (v.is_array()) {  // firmware booted, in order
    std::string items;
    for (const auto& item : v) items += (items.empty() ? "" : " → ") + (item.is_string() ? item.get<std::string>() : item.dump());
    return "<td>" + Escape(items) + "</td>";
  }
  return "<td>" + Escape(v.dump()) + "</td>";
}

std::string Us(const std::optional<LatencyFigures>& f, double LatencyFigures::*q) {
  if (!f) return "<td>–</td>";
  std::ostringstream s;
  s.precision(2);
  s << std::fixed << (*f).*q / 1000.0;
  return "<td>" + s.str() + "</td>";
}

std::string Ratio(const std::optional<double>& r, bool flagged) {
  if (!r) return "<td>–</td>";
  std::ostringstream s;
  s.precision(2);
  s << std::fixed << *r << "×";
  return std::string(flagged ? "<td class=bad>" : "<td>") + s.str() + "</td>";
}

}  // namespace

json ComparisonToJson(const Comparison& c) {
  json differences = json::array();
  for (const auto& d : c.pcrs.differences) {
    json causes = json::array();
    for (const auto& cause : d.causes) causes.push_back({{"code", cause.code}, {"detail", cause.detail}});
    differences.push_back({{"bank", d.bank}, {"pcr", d.pcr}, {"a", OrNull(d.a)}, {"b", OrNull(d.b)},
                           {"a_golden", OrNull(d.a_golden)}, {"b_golden", OrNull(d.b_golden)},
                           {"events", d.events}, {"causes", causes}});
  }
  json pcrs = {{"compared", c.pcrs.compared},
               {"a_step", c.pcrs.a_step < 0 ? json(nullptr) : json(c.pcrs.a_step)},
               {"b_step", c.pcrs.b_step < 0 ? json(nullptr) : json(c.pcrs.b_step)},
               {"banks", c.pcrs.banks},
               {"differences", differences},
               {"drift", c.pcrs.compared ? DriftToJson(c.pcrs.drift) : json(nullptr)}};
  if (!c.pcrs.why_not.empty()) pcrs["why_not"] = c.pcrs.why_not;

  json only_a = json::array(), only_b = json::array(), both = json::array();
  auto tally = [](const AlarmTally& t) { return json{{"steps", t.steps}, {"first_step", t.first_step}}; };
  for (const auto& a : c.alarms) {
    if (a.a && a.b) {
      both.push_back({{"code", a.code}, {"a", tally(*a.a)}, {"b", tally(*a.b)}});
    } else if (a.a) {
      only_a.push_back({{"code", a.code}, {"a", tally(*a.a)}});
    } else {
      only_b.push_back({{"code", a.code}, {"b", tally(*a.b)}});
    }
  }

  json latency = json::array();
  for (const auto& l : c.latency) {
    latency.push_back({{"command", l.command}, {"a", FiguresJson(l.a)}, {"b", FiguresJson(l.b)},
                       {"ratio", {{"p50", OrNull(l.ratio_p50)}, {"p90", OrNull(l.ratio_p90)}, {"p99", OrNull(l.ratio_p99)}}},
                       {"regressed", l.regressed}});
  }
  json verdicts = json::array();
  for (const auto& v : c.verdicts) verdicts.push_back({{"area", v.area}, {"status", v.status}, {"line", v.line}});
  return {{"format", "tpmlab-compare"},
          {"version", 1},
          {"a", c.a},
          {"b", c.b},
          {"options", {{"threshold", c.options.threshold}, {"min_delta_us", c.options.min_delta_us}}},
          {"pcrs", pcrs},
          {"alarms", {{"only_in_a", only_a}, {"only_in_b", only_b}, {"in_both", both}}},
          {"counters", {{"a", CountersJson(c.counters_a)}, {"b", CountersJson(c.counters_b)},
                        {"differences", c.counter_differences}, {"regressed", c.counters_regressed}}},
          {"latency", latency},
          {"expectations", {{"a", ExpectationsJson(c.expectations_a)}, {"b", ExpectationsJson(c.expectations_b)},
                            {"failed_only_in_b", c.failed_only_in_b}}},
          {"verdicts", verdicts},
          {"differs", c.differs()}};
}

std::string ComparisonToHtml(const Comparison& c, const std::string& chart_js) {
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>\n"
    // Opens offline and stays offline: nothing may be fetched, inline code only.
    << "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline'; "
       "style-src 'unsafe-inline'; img-src data:; connect-src 'none'\">\n"
    << "<title>tpmlab compare: " << Escape(c.a.value("scenario", "")) << " vs " << Escape(c.b.value("scenario", ""))
    << "</title>\n<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin:.5em 0 1.5em}"
       "td,th{border:1px solid #bbb;padding:.2em .5em;text-align:left;vertical-align:top}th{background:#eee}"
       ".bad{background:#fdd}.good{background:#dfd}code{font-size:85%;word-break:break-all}"
       "li.regression,li.differs{color:#a00}#chart{max-width:900px}</style></head><body>\n"
    << "<h1>tpmlab qualification comparison</h1>\n";

  h << "<h2>Runs</h2><table><tr><th></th><th>A</th><th>B</th></tr>\n";
  for (const char* key : {"source", "database", "run_id", "scenario", "seed", "dut", "firmware", "status", "steps",
                          "power_cycles", "tpmlab_version", "started_at"}) {
    h << "<tr><th>" << key << "</th>" << Cell(c.a.value(key, json())) << Cell(c.b.value(key, json())) << "</tr>\n";
  }
  h << "</table>\n<h2>Verdict</h2><ul id=verdicts>\n";
  for (const auto& v : c.verdicts) h << "<li class=\"" << Escape(v.status) << "\">" << Escape(v.line) << "</li>\n";
  h << "</ul>\n";

  h << "<h2>PCRs that differ</h2>\n";
  if (!c.pcrs.compared) {
    h << "<p>Not compared: " << Escape(c.pcrs.why_not) << "</p>\n";
  } else if (c.pcrs.differences.empty()) {
    h << "<p>None (steps " << c.pcrs.a_step << " and " << c.pcrs.b_step << ").</p>\n";
  } else {
    h << "<table id=pcrs><tr><th>bank</th><th>PCR</th><th>A (step " << c.pcrs.a_step << ")</th><th>B (step "
      << c.pcrs.b_step << ")</th><th>golden A</th><th>golden B</th><th>causes</th><th>events</th></tr>\n";
    for (const auto& d : c.pcrs.differences) {
      std::string causes, events;
      for (const auto& cause : d.causes) causes += Escape(cause.code + ": " + cause.detail) + "<br>";
      for (const auto& e : d.events) {
        events += Escape(e.value("change", "") + " " + e.value("type", "") + ": " + e.value("before_summary", "") +
                         " → " + e.value("after_summary", "")) + "<br>";
      }
      h << "<tr class=bad><td>" << Escape(d.bank) << "</td><td>" << d.pcr << "</td><td><code>" << Escape(d.a)
        << "</code></td><td><code>" << Escape(d.b) << "</code></td><td><code>" << Escape(d.a_golden)
        << "</code></td><td><code>" << Escape(d.b_golden) << "</code></td><td>" << causes << "</td><td>" << events
        << "</td></tr>\n";
    }
    h << "</table>\n";
  }
  std::string tpm_causes;
  for (const auto& cause : c.pcrs.drift.causes) {
    if (cause.pcr < 0) tpm_causes += "<li>" + Escape(cause.code + ": " + cause.detail) + "</li>";
  }
  if (!tpm_causes.empty()) h << "<p>What the TPMs' own state shows:</p><ul>" << tpm_causes << "</ul>\n";

  h << "<h2>Alarms</h2><table id=alarms><tr><th>code</th><th>A: steps (first)</th><th>B: steps (first)</th><th></th></tr>\n";
  for (const auto& a : c.alarms) {
    auto side = [](const std::optional<AlarmTally>& t) {
      return t ? "<td>" + std::to_string(t->steps) + " (step " + std::to_string(t->first_step) + ")</td>"
               : std::string("<td>–</td>");
    };
    const char* where = a.a && a.b ? "in both" : a.a ? "only in A" : "only in B";
    h << "<tr" << (!a.a ? " class=bad" : !a.b ? " class=good" : "") << "><td>" << Escape(a.code) << "</td>"
      << side(a.a) << side(a.b) << "<td>" << where << "</td></tr>\n";
  }
  h << "</table>\n";

  h << "<h2>Counters</h2><table id=counters><tr><th></th><th>A</th><th>B</th></tr>\n";
  auto counter_row = [&](const char* name, const CounterTally CounterBehaviour::*m) {
    auto text = [&](const CounterBehaviour& b) {
      const CounterTally& t = b.*m;
      return std::to_string(t.first) + " → " + std::to_string(t.last) + ", up " + std::to_string(t.increases) +
             "x, " + (t.monotonic() ? "monotonic" : "went back " + std::to_string(t.decreases) + "x");
    };
    h << "<tr><th>" << name << "</th><td>" << text(c.counters_a) << "</td><td>" << text(c.counters_b) << "</td></tr>\n";
  };
  counter_row("resetCount", &CounterBehaviour::reset_count);
  counter_row("restartCount", &CounterBehaviour::restart_count);
  counter_row("clock (ms)", &CounterBehaviour::clock);
  h << "<tr><th>safe=NO</th><td>" << c.counters_a.safe_no << " of " << c.counters_a.snapshots << "</td><td>"
    << c.counters_b.safe_no << " of " << c.counters_b.snapshots << "</td></tr>\n</table>\n";
  if (!c.counter_differences.empty()) {
    h << "<ul>";
    for (const auto& d : c.counter_differences) h << "<li>" << Escape(d) << "</li>";
    h << "</ul>\n";
  }

  h << "<h2>Latency (ms)</h2>\n";
  if (!chart_js.empty()) h << "<div id=chart><canvas id=latency-ratio></canvas></div>\n";
  h << "<table id=latency><tr><th>command</th><th>A n</th><th>A p50</th><th>A p90</th><th>A p99</th><th>B n</th>"
       "<th>B p50</th><th>B p90</th><th>B p99</th><th>p50 B/A</th><th>p90 B/A</th><th>p99 B/A</th></tr>\n";
  json labels = json::array(), p50 = json::array(), p90 = json::array();
  for (const auto& l : c.latency) {
    auto flagged = [&](const char* q) { return std::find(l.regressed.begin(), l.regressed.end(), q) != l.regressed.end(); };
    h << "<tr><td>" << Escape(l.command) << "</td><td>" << (l.a ? std::to_string(l.a->count) : "–") << "</td>"
      << Us(l.a, &LatencyFigures::p50_us) << Us(l.a, &LatencyFigures::p90_us) << Us(l.a, &LatencyFigures::p99_us)
      << "<td>" << (l.b ? std::to_string(l.b->count) : "–") << "</td>" << Us(l.b, &LatencyFigures::p50_us)
      << Us(l.b, &LatencyFigures::p90_us) << Us(l.b, &LatencyFigures::p99_us) << Ratio(l.ratio_p50, flagged("p50"))
      << Ratio(l.ratio_p90, flagged("p90")) << Ratio(l.ratio_p99, flagged("p99")) << "</tr>\n";
    if (l.ratio_p50 || l.ratio_p90) {
      labels.push_back(l.command);
      p50.push_back(OrNull(l.ratio_p50));
      p90.push_back(OrNull(l.ratio_p90));
    }
  }
  h << "</table>\n";

  h << "<h2>Expectations</h2><table id=expectations><tr><th></th><th>passed</th><th>failed</th><th>failed</th></tr>\n";
  using Side = std::pair<const char*, const ExpectationTally*>;
  for (const auto& [name, t] : {Side{"A", &c.expectations_a}, Side{"B", &c.expectations_b}}) {
    std::string failed;
    for (const auto& n : t->failed_names) failed += Escape(n) + "<br>";
    h << "<tr><th>" << name << "</th><td>" << t->passed << "</td><td>" << t->failed << "</td><td>" << failed
      << "</td></tr>\n";
  }
  h << "</table>\n";

  if (!chart_js.empty()) {
    const json chart = {{"labels", labels}, {"p50", p50}, {"p90", p90}, {"threshold", c.options.threshold}};
    h << "<script>" << ScriptSafe(chart_js) << "\n</script>\n<script>\nconst data = " << ScriptSafe(chart.dump())
      << ";\nnew Chart(document.getElementById('latency-ratio'), {type: 'bar',\n"
         "  data: {labels: data.labels, datasets: [\n"
         "    {label: 'p50 B/A', data: data.p50, backgroundColor: '#6c8ebf'},\n"
         "    {label: 'p90 B/A', data: data.p90, backgroundColor: '#d79b00'}]},\n"
         "  options: {animation: false, plugins: {title: {display: true, text: 'latency B/A (threshold ' + "
         "data.threshold + 'x)'}},\n"
         "    scales: {y: {beginAtZero: true}}}});\n</script>\n";
  }
  h << "</body></html>\n";
  return h.str();
}

}  // namespace tpmlab
