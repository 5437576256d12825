#include "lab/matrix.h"

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <set>

#include "lab/paths.h"
#include "util/fs.h"

namespace lab {

namespace {

using util::MakeError;

std::string At(const std::string& file, const YAML::Node& node) {
  return file + ":" + std::to_string(node.Mark().line + 1) + ": ";
}

bool SafeName(const std::string& s) {
  if (s.empty() || s[0] == '.' || s[0] == '-') return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_'))
      return false;
  return true;
}

// One field of a row: how to read it into the row.
struct Field {
  const char* key;
  bool required;
  std::function<util::Status(KernelRow&, const YAML::Node&, const std::string& where)> read;
};

util::Status ReadScalar(const YAML::Node& n, const std::string& where, const std::string& key,
                        std::string& out) {
  if (!n.IsScalar())
    return MakeError(where + "`" + key + "` must be a string, e.g. `" + key + ": value`");
  out = n.Scalar();
  return util::Ok{};
}

Field StringField(const char* key, bool required, std::string KernelRow::*member) {
  return Field{key, required, [key, member](KernelRow& row, const YAML::Node& n,
                                            const std::string& where) {
                 return ReadScalar(n, where, key, row.*member);
               }};
}

const std::vector<Field>& Fields() {
  static const std::vector<Field> fields = {
      StringField("name", true, &KernelRow::name),
      StringField("suite", true, &KernelRow::suite),
      StringField("security_suite", false, &KernelRow::security_suite),
      StringField("root_release", true, &KernelRow::root_release),
      StringField("image_meta", true, &KernelRow::image_meta),
      StringField("headers_meta", true, &KernelRow::headers_meta),
      Field{"image_packages", true,
            [](KernelRow& row, const YAML::Node& n, const std::string& where) -> util::Status {
              if (!n.IsSequence() || n.size() == 0)
                return MakeError(where +
                                 "`image_packages` must be a non-empty list, e.g. "
                                 "`image_packages: [\"linux-image-{kver}\"]`");
              row.image_packages.clear();
              for (const auto& item : n) {
                if (!item.IsScalar())
                  return MakeError(At("", item).substr(1) + "`image_packages` entries must be "
                                   "package name templates");
                row.image_packages.push_back(item.Scalar());
              }
              return util::Ok{};
            }},
      StringField("headers_package", true, &KernelRow::headers_package),
      StringField("pin", false, &KernelRow::pin),
      Field{"optional", false,
            [](KernelRow& row, const YAML::Node& n, const std::string& where) -> util::Status {
              bool v = false;
              if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v))
                return MakeError(where + "`optional` must be true or false");
              row.optional = v;
              return util::Ok{};
            }},
      StringField("vmlinuz", true, &KernelRow::vmlinuz_glob),
      StringField("modules_dir", true, &KernelRow::modules_dir),
      StringField("mirror", true, &KernelRow::mirror),
      StringField("security_mirror", false, &KernelRow::security_mirror),
  };
  return fields;
}

const Field* FindField(const std::string& key) {
  for (const auto& f : Fields())
    if (key == f.key) return &f;
  return nullptr;
}

std::string KnownKeys() {
  std::string s;
  for (const auto& f : Fields()) s += (s.empty() ? "" : ", ") + std::string(f.key);
  return s;
}

// Applies the keys of a mapping (row or row_defaults) onto `row`.
util::Status ApplyMapping(KernelRow& row, const YAML::Node& map, const std::string& file,
                          std::set<std::string>& seen) {
  for (const auto& kv : map) {
    std::string where = At(file, kv.first);
    if (!kv.first.IsScalar()) return MakeError(where + "keys must be plain names");
    const std::string key = kv.first.Scalar();
    const Field* field = FindField(key);
    if (!field) return MakeError(where + "unknown key `" + key + "` (known: " + KnownKeys() + ")");
    auto st = field->read(row, kv.second, At(file, kv.second));
    if (!st) {
      // Sequence entries report their own line; add the file name.
      std::string msg = st.error().message;
      if (msg.rfind(file, 0) != 0) msg = file + ":" + msg;
      return MakeError(msg);
    }
    seen.insert(key);
  }
  return util::Ok{};
}

util::Status CheckTemplate(const std::string& where, const std::string& key,
                           const std::string& value) {
  if (value.find("{kver}") == std::string::npos)
    return MakeError(where + "`" + key + "` (" + value +
                     ") must contain {kver}, the kernel release it is for");
  return util::Ok{};
}

}  // namespace

std::string ExpandKver(const std::string& tmpl, const std::string& kver) {
  std::string out;
  const std::string token = "{kver}";
  size_t from = 0, pos;
  while ((pos = tmpl.find(token, from)) != std::string::npos) {
    out += tmpl.substr(from, pos - from) + kver;
    from = pos + token.size();
  }
  return out + tmpl.substr(from);
}

util::Result<Matrix> ParseMatrix(const std::string& text, const std::string& file) {
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return MakeError(file + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  if (!doc.IsMap())
    return MakeError(file + ":1: expected a mapping with `rows:` (a list of kernel rows)");

  Matrix matrix;
  matrix.file = file;
  KernelRow defaults;
  std::set<std::string> default_keys;
  YAML::Node rows_node;
  YAML::Node default_node;
  for (const auto& kv : doc) {
    std::string where = At(file, kv.first);
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
    if (key == "rows") {
      rows_node = kv.second;
    } else if (key == "default") {
      if (!kv.second.IsScalar()) return MakeError(where + "`default` must be a row name");
      default_node = kv.second;
    } else if (key == "row_defaults") {
      if (!kv.second.IsMap())
        return MakeError(where + "`row_defaults` must be a mapping of row keys");
      for (const auto& d : kv.second)
        if (d.first.IsScalar() && d.first.Scalar() == "name")
          return MakeError(At(file, d.first) + "`row_defaults` cannot set `name`");
      auto st = ApplyMapping(defaults, kv.second, file, default_keys);
      if (!st) return st.error();
    } else {
      return MakeError(where + "unknown top-level key `" + key +
                       "` (known: default, row_defaults, rows)");
    }
  }
  if (!rows_node) return MakeError(file + ":1: missing `rows:` (a list of kernel rows)");
  if (!rows_node.IsSequence() || rows_node.size() == 0)
    return MakeError(At(file, rows_node) + "`rows` must be a non-empty list of kernel rows");

  std::map<std::string, int> lines;
  for (const auto& item : rows_node) {
    std::string where = At(file, item);
    if (!item.IsMap()) return MakeError(where + "each row must be a mapping (name: ..., suite: ...)");
    KernelRow row = defaults;
    std::set<std::string> seen = default_keys;
    auto st = ApplyMapping(row, item, file, seen);
    if (!st) return st.error();
    for (const auto& f : Fields())
      if (f.required && !seen.count(f.key))
        return MakeError(where + "row " + (row.name.empty() ? "" : "`" + row.name + "` ") +
                         "is missing `" + f.key + "`");
    for (const auto& [label, value] :
         {std::pair<std::string, std::string>{"name", row.name}, {"root_release", row.root_release},
          {"suite", row.suite}}) {
      if (!SafeName(value))
        return MakeError(where + "`" + label + "` `" + value +
                         "` must be letters, digits, '-', '.', '_' only");
    }
    if (!row.security_suite.empty() && row.security_mirror.empty())
      return MakeError(where + "row `" + row.name +
                       "` has `security_suite` but no `security_mirror`");
    for (const auto& p : row.image_packages)
      if (auto s = CheckTemplate(where, "image_packages", p); !s) return s.error();
    if (auto s = CheckTemplate(where, "headers_package", row.headers_package); !s) return s.error();
    if (auto s = CheckTemplate(where, "vmlinuz", row.vmlinuz_glob); !s) return s.error();
    if (auto s = CheckTemplate(where, "modules_dir", row.modules_dir); !s) return s.error();
    if (auto it = lines.find(row.name); it != lines.end())
      return MakeError(where + "duplicate row `" + row.name + "` (first defined on line " +
                       std::to_string(it->second) + ")");
    lines[row.name] = item.Mark().line + 1;
    matrix.rows.push_back(std::move(row));
  }
  if (default_node) {
    matrix.default_row = default_node.Scalar();
    if (!lines.count(matrix.default_row))
      return MakeError(At(file, default_node) + "`default` names `" + matrix.default_row +
                       "`, which is not a row");
  } else {
    matrix.default_row = matrix.rows.front().name;
  }
  return matrix;
}

util::Result<Matrix> LoadMatrix(const std::string& path) {
  auto text = util::ReadFile(path);
  if (!text) return MakeError(text.error().message + " (the kernel matrix; pass --config FILE)");
  return ParseMatrix(*text, path);
}

std::string DefaultMatrixPath() { return SourceDir() + "/distros/kernels.yaml"; }

util::Result<KernelRow> FindRow(const Matrix& matrix, const std::string& name) {
  std::string names;
  for (const auto& row : matrix.rows) {
    if (row.name == name) return row;
    names += (names.empty() ? "" : ", ") + row.name;
  }
  return MakeError("no kernel row `" + name + "` in " + matrix.file + " (rows: " + names + ")");
}

util::Result<std::vector<KernelRow>> SelectRows(const Matrix& matrix, const std::string& list) {
  std::vector<KernelRow> out;
  if (list.empty()) {
    for (const auto& row : matrix.rows)
      if (!row.optional) out.push_back(row);
    return out;
  }
  if (list == "all") return matrix.rows;
  size_t from = 0;
  while (from <= list.size()) {
    size_t comma = list.find(',', from);
    std::string name = list.substr(from, comma == std::string::npos ? std::string::npos : comma - from);
    if (!name.empty()) {
      auto row = FindRow(matrix, name);
      if (!row) return row.error();
      bool dup = false;
      for (const auto& r : out) dup = dup || r.name == name;
      if (!dup) out.push_back(*row);
    }
    if (comma == std::string::npos) break;
    from = comma + 1;
  }
  if (out.empty()) return MakeError("no rows selected by `" + list + "`");
  return out;
}

}  // namespace lab
