// String helpers with no project dependencies.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

namespace util {

inline bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Text from users or files, made safe to put in a one-line message: control
// characters and bytes >= 0x7f as \n, \t, \xHH (backslash as \\), at most
// `max_chars` of the input kept, then "... (N bytes)" saying how long it was.
// `keep_utf8`: bytes >= 0x80 pass unchanged (a command's own output, where
// compilers quote with UTF-8); DEL is still escaped.
inline std::string Printable(const std::string& s, size_t max_chars = 120,
                             bool keep_utf8 = false) {
  std::string out;
  size_t n = s.size() < max_chars ? s.size() : max_chars;
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c < 0x20 || c == 0x7f || (c > 0x7f && !keep_utf8)) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > max_chars) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

// FNV-1a (64 bit) of `data` as 16 hex digits: a stable fingerprint for
// cache keys of small files (not a defence against a chosen collision).
inline std::string Fnv1a64Hex(const std::string& data) {
  unsigned long long h = 14695981039346656037ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", h);
  return buf;
}

}  // namespace util
