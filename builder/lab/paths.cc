#include "lab/paths.h"

#include <cstdlib>

namespace lab {

std::string CacheRoot() {
  if (const char* v = std::getenv("TOA_BUILD_CACHE"); v && *v) return v;
  if (const char* v = std::getenv("XDG_CACHE_HOME"); v && *v) return std::string(v) + "/toa-build";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/root") + "/.cache/toa-build";
}

std::string SourceDir() {
  if (const char* v = std::getenv("TOA_BUILD_SOURCE_DIR"); v && *v) return v;
  return TOA_SOURCE_DIR;
}

std::string BinaryDir() {
  if (const char* v = std::getenv("TOA_BUILD_BINARY_DIR"); v && *v) return v;
  return TOA_BINARY_DIR;
}

}  // namespace lab
