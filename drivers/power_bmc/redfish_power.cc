// Redfish through libcurl: the ComputerSystem's Reset action with the reset
// types the service offers. TLS certificates are checked unless the bench
// turns it off; basic authentication with the password from a file or the
// environment.
#include <curl/curl.h>

#include <algorithm>
#include <mutex>

#include <nlohmann/json.hpp>

#include "drivers/bmc_power.h"

namespace tpmlab {
namespace {

using nlohmann::json;

size_t Collect(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

std::string Join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : ", ") + w;
  return out.empty() ? "none" : out;
}

struct CurlHandle {
  CURL* curl = curl_easy_init();
  curl_slist* headers = nullptr;
  ~CurlHandle() {
    curl_slist_free_all(headers);
    if (curl) curl_easy_cleanup(curl);
  }
};

std::string OdataId(const json& node) {
  if (node.is_object() && node.contains("@odata.id") && node["@odata.id"].is_string()) {
    return node["@odata.id"].get<std::string>();
  }
  return "";
}

}  // namespace

Result<std::unique_ptr<RedfishPower>> RedfishPower::Create(RedfishPowerConfig config) {
  if (config.url.rfind("https://", 0) != 0 && config.url.rfind("http://", 0) != 0) {
    return Status::Error(Layer::kScenario, "Redfish power: url must start with https:// (or http://), not '" +
                                               config.url + "'");
  }
  while (!config.url.empty() && config.url.back() == '/') config.url.pop_back();
  if (config.user.empty()) return Status::Error(Layer::kScenario, "Redfish power " + config.url + ": needs a user");
  if (!config.system.empty() && config.system.front() != '/') {
    return Status::Error(Layer::kScenario, "Redfish power: system must be a path (/redfish/v1/Systems/1), not '" +
                                               config.system + "'");
  }
  auto secret = ReadBmcSecret(config.password);
  if (!secret.ok()) return secret.status().Wrap("Redfish service " + config.url);
  static std::once_flag curl_started;
  std::call_once(curl_started, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  return std::unique_ptr<RedfishPower>(new RedfishPower(std::move(config), std::move(*secret)));
}

RedfishPower::~RedfishPower() = default;

Result<RedfishPower::Response> RedfishPower::Request(const std::string& method, const std::string& path,
                                                     const std::string& body) {
  const std::string url = config_.url + path;
  CurlHandle h;
  if (!h.curl) return Status::Error(Layer::kHarness, "Redfish: curl_easy_init failed");
  char error[CURL_ERROR_SIZE] = {0};
  Response r;
  curl_easy_setopt(h.curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h.curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h.curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h.curl, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.timeout.count()));
  curl_easy_setopt(h.curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(config_.timeout.count()));
  curl_easy_setopt(h.curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
  curl_easy_setopt(h.curl, CURLOPT_USERNAME, config_.user.c_str());
  curl_easy_setopt(h.curl, CURLOPT_PASSWORD, secret_.c_str());
  curl_easy_setopt(h.curl, CURLOPT_SSL_VERIFYPEER, config_.verify_tls ? 1L : 0L);
  curl_easy_setopt(h.curl, CURLOPT_SSL_VERIFYHOST, config_.verify_tls ? 2L : 0L);
  if (!config_.ca_file.empty()) curl_easy_setopt(h.curl, CURLOPT_CAINFO, config_.ca_file.c_str());
  curl_easy_setopt(h.curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(h.curl, CURLOPT_WRITEDATA, &r.body);
  h.headers = curl_slist_append(h.headers, "Accept: application/json");
  h.headers = curl_slist_append(h.headers, "OData-Version: 4.0");
  if (method == "POST") {
    h.headers = curl_slist_append(h.headers, "Content-Type: application/json");
    curl_easy_setopt(h.curl, CURLOPT_POST, 1L);
    curl_easy_setopt(h.curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h.curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(h.curl, CURLOPT_HTTPHEADER, h.headers);
  const CURLcode code = curl_easy_perform(h.curl);
  if (code != CURLE_OK) {
    std::string why = error[0] ? error : curl_easy_strerror(code);
    if (!why.empty() && why.back() == '\n') why.pop_back();
    std::string hint;
    if (code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE) {
      hint = " (the service's certificate is not trusted: give the bench ca_file: with its CA, or verify_tls: false "
             "on a lab network you trust)";
    }
    if (code == CURLE_OPERATION_TIMEDOUT) {
      return Status::Timeout("Redfish " + method + " " + url + ": no answer within " +
                             std::to_string(config_.timeout.count()) + " ms");
    }
    return Status::Error(Layer::kTransport, "Redfish " + method + " " + url + ": " + why + hint);
  }
  curl_easy_getinfo(h.curl, CURLINFO_RESPONSE_CODE, &r.status);
  if (r.status == 401 || r.status == 403) {
    return Status::Error(Layer::kTransport, "Redfish " + method + " " + url + ": the service refused user " +
                                                config_.user + " with the password from " +
                                                config_.password.Describe() + " (HTTP " + std::to_string(r.status) +
                                                ")");
  }
  return r;
}

// A Redfish error body's first message, for the error text.
static std::string RedfishMessage(const std::string& body) {
  try {
    const json j = json::parse(body);
    if (j.contains("error") && j["error"].is_object()) {
      const json& e = j["error"];
      if (e.contains("@Message.ExtendedInfo") && e["@Message.ExtendedInfo"].is_array() &&
          !e["@Message.ExtendedInfo"].empty() && e["@Message.ExtendedInfo"][0].contains("Message")) {
        return e["@Message.ExtendedInfo"][0]["Message"].get<std::string>();
      }
      if (e.contains("message")) return e["message"].get<std::string>();
    }
  } catch (const std::exception&) {
  }
  return body.size() > 200 ? body.substr(0, 200) + "..." : body;
}

Result<std::string> RedfishPower::GetJson(const std::string& path) {
  TRY_ASSIGN(Response r, Request("GET", path, ""));
  if (r.status < 200 || r.status >= 300) {
    return Status::Error(Layer::kTransport, "Redfish GET " + config_.url + path + ": HTTP " +
                                                std::to_string(r.status) + ": " + RedfishMessage(r.body));
  }
  return r.body;
}

Status RedfishPower::Discover() {
  if (discovered_) return Status::Ok();
  const std::string service = "Redfish service " + config_.url;
  try {
    std::string system = config_.system;
    if (system.empty()) {
      TRY_ASSIGN(std::string root_text, GetJson("/redfish/v1/"));
      const json root = json::parse(root_text);
      const std::string systems = OdataId(root.value("Systems", json()));
      if (systems.empty()) return Status::Error(Layer::kTransport, service + ": the service root lists no Systems");
      TRY_ASSIGN(std::string list_text, GetJson(systems));
      const json list = json::parse(list_text);
      if (!list.contains("Members") || !list["Members"].is_array() || list["Members"].empty()) {
        return Status::Error(Layer::kTransport, service + ": " + systems + " has no members");
      }
      system = OdataId(list["Members"][0]);  // several machines behind one BMC: the bench names one with system:
    }
    TRY_ASSIGN(std::string system_text, GetJson(system));
    const json sys = json::parse(system_text);
    const json actions = sys.value("Actions", json::object());
    if (!actions.contains("#ComputerSystem.Reset")) {
      return Status::Error(Layer::kTransport, service + ": " + system + " has no #ComputerSystem.Reset action");
    }
    const json& reset = actions["#ComputerSystem.Reset"];
    reset_target_ = reset.value("target", std::string());
    if (reset_target_.empty()) {
      return Status::Error(Layer::kTransport, service + ": " + system + ": the Reset action has no target");
    }
    reset_types_.clear();
    if (reset.contains("ResetType@Redfish.AllowableValues")) {
      for (const auto& v : reset["ResetType@Redfish.AllowableValues"]) reset_types_.push_back(v.get<std::string>());
    } else if (reset.contains("@Redfish.ActionInfo")) {
      TRY_ASSIGN(std::string info_text, GetJson(reset["@Redfish.ActionInfo"].get<std::string>()));
      const json info = json::parse(info_text);
      for (const auto& p : info.value("Parameters", json::array())) {
        if (p.value("Name", std::string()) != "ResetType") continue;
        for (const auto& v : p.value("AllowableValues", json::array())) reset_types_.push_back(v.get<std::string>());
      }
    }
    if (reset_types_.empty()) {
      return Status::Error(Layer::kTransport, service + ": " + system + " does not say which reset types it offers");
    }
    system_ = system;
  } catch (const std::exception& e) {
    return Status::Error(Layer::kTransport, service + ": an answer is not the JSON Redfish defines: " + e.what());
  }
  discovered_ = true;
  return Status::Ok();
}

Result<bool> RedfishPower::IsOn() {
  TRY(Discover());
  TRY_ASSIGN(std::string text, GetJson(system_));
  try {
    const std::string state = json::parse(text).value("PowerState", std::string());
    if (state == "On" || state == "PoweringOff") return true;
    if (state == "Off" || state == "PoweringOn") return false;
    return Status::Error(Layer::kTransport, "Redfish service " + config_.url + ": " + system_ +
                                                " has PowerState '" + state + "'");
  } catch (const std::exception& e) {
    return Status::Error(Layer::kTransport, "Redfish service " + config_.url + ": " + system_ + ": " + e.what());
  }
}

Result<std::string> RedfishPower::Choose(const std::vector<std::string>& preferred, const std::string& what) {
  TRY(Discover());
  for (const auto& type : preferred) {
    if (std::find(reset_types_.begin(), reset_types_.end(), type) != reset_types_.end()) return type;
  }
  return Status::Error(Layer::kScenario, "Redfish service " + config_.url + ": " + system_ + " cannot " + what +
                                             ": it needs ResetType " + Join(preferred) + ", and the service offers " +
                                             Join(reset_types_));
}

Status RedfishPower::Reset(const std::string& type) {
  TRY(Discover());
  if (std::find(reset_types_.begin(), reset_types_.end(), type) == reset_types_.end()) {
    return Status::Error(Layer::kScenario, "Redfish service " + config_.url + ": " + system_ +
                                               " does not offer ResetType " + type + " (it offers " +
                                               Join(reset_types_) + ")");
  }
  const std::string body = json({{"ResetType", type}}).dump();
  TRY_ASSIGN(Response r, Request("POST", reset_target_, body));
  if (r.status < 200 || r.status >= 300) {
    return Status::Error(Layer::kTransport, "Redfish POST " + config_.url + reset_target_ + " ResetType " + type +
                                                ": HTTP " + std::to_string(r.status) + ": " + RedfishMessage(r.body));
  }
  return Status::Ok();
}

Status RedfishPower::WaitFor(bool on) {
  Clock& clock = config_.clock ? *config_.clock : DefaultClock();
  const auto deadline = clock.Now() + std::chrono::duration_cast<Clock::Duration>(config_.settle);
  while (true) {
    TRY_ASSIGN(bool is_on, IsOn());
    if (is_on == on) return Status::Ok();
    if (clock.Now() >= deadline) {
      return Status::Timeout("Redfish service " + config_.url + ": " + system_ + " still reports PowerState " +
                             (on ? "Off" : "On") + " " + std::to_string(config_.settle.count()) + " ms after the reset");
    }
    clock.Sleep(std::chrono::milliseconds(250));
  }
}

Status RedfishPower::DoOff(PowerCut) {
  TRY_ASSIGN(std::string type, Choose({"ForceOff"}, "power off"));
  TRY(Reset(type));
  return WaitFor(false);
}

Status RedfishPower::DoOn() {
  TRY_ASSIGN(std::string type, Choose({"On", "ForceOn"}, "power on"));
  TRY(Reset(type));
  return WaitFor(true);
}

Status RedfishPower::DoCycle(PowerCut cut) {
  if (cut == PowerCut::kSoft) {
    TRY_ASSIGN(std::string type, Choose({"ForceRestart", "PowerCycle"}, "reset"));
    TRY(Reset(type));
    return WaitFor(true);
  }
  TRY(DoOff(cut));
  Clock& clock = config_.clock ? *config_.clock : DefaultClock();
  clock.Sleep(std::chrono::duration_cast<Clock::Duration>(config_.off_time));
  return DoOn();
}

}  // namespace tpmlab
