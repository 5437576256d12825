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
inline std::string Printable(const std::string& s, size_t max_chars = 120) {
  std::string out;
  size_t n = s.size() < max_chars ? s.size() : max_chars;
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c < 0x20 || c >= 0x7f) {
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

}  // namespace util
