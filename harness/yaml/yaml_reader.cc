#include "harness/yaml_reader.h"

#include <fstream>
#include <sstream>

namespace tpmlab {

std::string SourceLocation::ToString() const {
  if (line == 0) return file.empty() ? "<code>" : file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

Location SourceLocation::AsLocation() const {
  Location where(file);
  if (line > 0) {
    where.line = static_cast<uint32_t>(line);
    where.column = static_cast<uint32_t>(column);
  }
  return where;
}

Status SourceLocation::Error(Layer layer, const std::string& message) const {
  if (line == 0) return Status::Error(layer, ToString() + ": " + message);
  return Status::ErrorAt(layer, AsLocation(), message);
}

Result<YAML::Node> YamlReader::Parse(const std::string& text) const {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Thrown(e);
  }
}

Status YamlReader::Thrown(const YAML::Exception& e) const {
  if (e.mark.is_null()) return Error(e.msg);
  const SourceLocation where{file_, e.mark.line + 1, e.mark.column + 1};
  // A syntax error says what yaml-cpp says; anything else is a node read as
  // what it is not (yaml-cpp's "bad conversion" alone would not say that).
  if (dynamic_cast<const YAML::ParserException*>(&e) != nullptr) return where.Error(layer_, e.msg);
  return where.Error(layer_, "a value of the wrong shape here (yaml-cpp: " + e.msg + ")");
}

Result<std::string> YamlReader::ReadText(const std::filesystem::path& file, Layer layer) {
  std::ifstream in(file);
  if (!in) return Status::ErrorAt(layer, Location(file.string()), "cannot read the file");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

SourceLocation YamlReader::Where(const YAML::Node& n) const {
  const YAML::Mark m = n.Mark();
  if (m.line < 0) return {file_, 0, 0};
  return {file_, m.line + 1, m.column + 1};
}

Status YamlReader::Error(const YAML::Node& n, const std::string& message) const {
  return Where(n).Error(layer_, message);
}

Status YamlReader::Error(const std::string& message) const {
  return Status::Error(layer_, file_ + ": " + message).At(Location(file_));
}

Status YamlReader::Keys(const YAML::Node& map, const std::string& what,
                        const std::set<std::string>& allowed) const {
  if (!map.IsMap()) return Error(map, what + " must be a mapping");
  std::set<std::string> seen;
  for (const auto& kv : map) {
    const std::string key = kv.first.as<std::string>();
    // yaml-cpp keeps the first of two equal keys and drops the second.
    if (!seen.insert(key).second) return Error(kv.first, "duplicate key '" + key + "' in " + what);
    if (!allowed.count(key)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return Error(kv.first, "unknown key '" + key + "' in " + what + " (expected one of: " + list + ")");
    }
  }
  return Status::Ok();
}

Result<std::vector<std::string>> YamlReader::StringList(const YAML::Node& n, const std::string& what) const {
  if (!n.IsSequence()) return Error(n, what + " must be a list");
  std::vector<std::string> out;
  for (const auto& item : n) {
    TRY_ASSIGN(std::string s, String(item, "an entry of " + what));
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace tpmlab
