#include "lab/matrix.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
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
  // Required only of rows made from Debian packages (not of `source:` rows).
  bool debian_only = false;
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
  return Field{key, required, false, [key, member](KernelRow& row, const YAML::Node& n,
                                                   const std::string& where) {
                 return ReadScalar(n, where, key, row.*member);
               }};
}

Field DebianField(Field f) {
  f.debian_only = true;
  return f;
}

// Letters, digits and "-._+~" only: a file or folder name, never a path.
bool PlainName(const std::string& s) {
  if (s.empty() || s[0] == '.' || s[0] == '-' || s.size() > 200) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '+' ||
          c == '~'))
      return false;
  return true;
}

const char* kSourceKeys =
    "tarball, top_dir, makefile, extraversion, base_config, config, patches, archive_url, "
    "archive_member, build_minutes";

// `source:` of a row built from a kernel tarball. Paths stay as written here;
// ParseMatrix makes them absolute against the matrix file's folder.
util::Status ReadSource(KernelRow& row, const YAML::Node& n, const std::string& where) {
  if (!n.IsMap())
    return MakeError(where + "`source` must be a mapping (tarball: ..., config: ...)");
  KernelSource src;
  std::set<std::string> seen;
  for (const auto& kv : n) {
    std::string at = At("", kv.second).substr(1);
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
    seen.insert(key);
    if (key == "makefile") {
      if (!kv.second.IsMap())
        return MakeError(at + "`source.makefile` must map Makefile variables to values, e.g. "
                              "`{VERSION: 3, PATCHLEVEL: 10, SUBLEVEL: 0}`");
      for (const auto& var : kv.second) {
        if (!var.first.IsScalar() || !var.second.IsScalar() || !SafeName(var.first.Scalar()))
          return MakeError(at + "`source.makefile` entries must be NAME: value");
        src.makefile.push_back({var.first.Scalar(), var.second.Scalar()});
      }
      continue;
    }
    if (!kv.second.IsScalar())
      return MakeError(at + "`source." + key + "` must be a single value");
    const std::string v = kv.second.Scalar();
    if (key == "tarball") src.tarball = v;
    else if (key == "top_dir") src.top_dir = v;
    else if (key == "extraversion") src.extraversion = v;
    else if (key == "base_config") src.base_config = v;
    else if (key == "config") src.config = v;
    else if (key == "patches") src.patches_dir = v;
    else if (key == "archive_url") src.archive_url = v;
    else if (key == "archive_member") src.archive_member = v;
    else if (key == "build_minutes") {
      int m = 0;
      if (!YAML::convert<int>::decode(kv.second, m) || m < 1 || m > 600)
        return MakeError(at + "`source.build_minutes` must be a whole number of minutes, 1 to 600");
      src.build_minutes = m;
    } else {
      return MakeError(at + "unknown key `source." + key + "` (known: " + kSourceKeys + ")");
    }
  }
  for (const char* k : {"tarball", "top_dir", "makefile", "extraversion", "base_config", "config"})
    if (!seen.count(k)) return MakeError(where + "`source` is missing `" + k + "`");
  for (const auto& [label, value] : {std::pair<std::string, std::string>{"tarball", src.tarball},
                                     {"top_dir", src.top_dir},
                                     {"base_config", src.base_config}}) {
    if (!PlainName(value))
      return MakeError(where + "`source." + label + "` `" + value +
                       "` must be a plain file name (letters, digits, '-', '.', '_', '+')");
  }
  if (!src.archive_member.empty() && !PlainName(src.archive_member))
    return MakeError(where + "`source.archive_member` must be a plain file name");
  if (src.archive_member.empty()) src.archive_member = src.tarball;
  if (!src.extraversion.empty() &&
      (src.extraversion[0] != '-' || !PlainName("x" + src.extraversion)))
    return MakeError(where + "`source.extraversion` `" + src.extraversion +
                     "` must start with '-' and hold only letters, digits, '-', '.', '_'");
  for (const char* var : {"VERSION", "PATCHLEVEL", "SUBLEVEL"}) {
    bool found = false;
    for (const auto& [k, value] : src.makefile) {
      if (k != var) continue;
      found = !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
    }
    if (!found)
      return MakeError(where + "`source.makefile` must give " + var +
                       " as a number (the kernel release is made from VERSION.PATCHLEVEL.SUBLEVEL)");
  }
  if (!src.archive_url.empty() && src.archive_url.rfind("https://", 0) != 0 &&
      src.archive_url.rfind("http://", 0) != 0 && src.archive_url.rfind("file://", 0) != 0)
    return MakeError(where + "`source.archive_url` must be an https://, http:// or file:// URL");
  row.from_source = true;
  row.source = std::move(src);
  return util::Ok{};
}

// Makes `path` absolute against `base` and checks it is what it should be.
util::Status ResolveDataPath(std::string& path, const std::filesystem::path& base, bool directory,
                             const std::string& where, const std::string& key) {
  namespace fs = std::filesystem;
  fs::path p(path);
  if (p.is_relative()) p = base / p;
  std::error_code ec;
  p = fs::absolute(p, ec).lexically_normal();
  bool ok = directory ? fs::is_directory(p, ec) : fs::is_regular_file(p, ec);
  if (!ok)
    return MakeError(where + "`source." + key + "` " + p.string() + " is not " +
                     (directory ? "a folder" : "a regular file") +
                     " (paths are relative to the matrix file's folder)");
  path = p.string();
  return util::Ok{};
}

const std::vector<Field>& Fields() {
  static const std::vector<Field> fields = {
      StringField("name", true, &KernelRow::name),
      DebianField(StringField("suite", true, &KernelRow::suite)),
      StringField("security_suite", false, &KernelRow::security_suite),
      StringField("root_release", true, &KernelRow::root_release),
      DebianField(StringField("image_meta", true, &KernelRow::image_meta)),
      DebianField(StringField("headers_meta", true, &KernelRow::headers_meta)),
      Field{"image_packages", true, true,
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
      DebianField(StringField("headers_package", true, &KernelRow::headers_package)),
      StringField("pin", false, &KernelRow::pin),
      Field{"optional", false, false,
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
      Field{"source", false, false, ReadSource},
      StringField("note", false, &KernelRow::note),
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

std::string KernelSource::Kver() const {
  std::string v[3];
  for (const auto& [k, value] : makefile) {
    if (k == "VERSION") v[0] = value;
    if (k == "PATCHLEVEL") v[1] = value;
    if (k == "SUBLEVEL") v[2] = value;
  }
  return v[0] + "." + v[1] + "." + v[2] + extraversion;
}

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
  bool has_default = false;  // a default-constructed Node tests true
  for (const auto& kv : doc) {
    std::string where = At(file, kv.first);
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
    if (key == "rows") {
      rows_node = kv.second;
    } else if (key == "default") {
      if (!kv.second.IsScalar()) return MakeError(where + "`default` must be a row name");
      default_node = kv.second;
      has_default = true;
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
      if (f.required && !seen.count(f.key) && !(f.debian_only && row.from_source))
        return MakeError(where + "row " + (row.name.empty() ? "" : "`" + row.name + "` ") +
                         "is missing `" + f.key + "`");
    for (const auto& [label, value] :
         {std::pair<std::string, std::string>{"name", row.name}, {"root_release", row.root_release},
          {"suite", row.suite}}) {
      if (label == "suite" && row.from_source && !seen.count("suite")) continue;
      if (!SafeName(value))
        return MakeError(where + "`" + label + "` `" + value +
                         "` must be letters, digits, '-', '.', '_' only");
    }
    if (!row.security_suite.empty() && row.security_mirror.empty())
      return MakeError(where + "row `" + row.name +
                       "` has `security_suite` but no `security_mirror`");
    if (row.from_source) {
      if (!row.pin.empty())
        return MakeError(where + "row `" + row.name +
                         "` is built from source: its release comes from `source`, drop `pin`");
      std::filesystem::path base = std::filesystem::path(file).parent_path();
      if (auto s = ResolveDataPath(row.source.config, base, false, where, "config"); !s)
        return s.error();
      if (!row.source.patches_dir.empty())
        if (auto s = ResolveDataPath(row.source.patches_dir, base, true, where, "patches"); !s)
          return s.error();
    }
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
  if (has_default) {
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
