// String helpers with no project dependencies.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

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

// Items joined by `sep` (an empty first item adds no separator after it).
inline std::string Join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : sep) + i;
  return out;
}

// `s` without leading and trailing spaces, tabs, CR and LF.
inline std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// Text as lines (no newline kept; a last line without one counts), and back
// with a newline after each.
inline std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  return out;
}

inline std::string JoinLines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace util
