// Where the lab keeps its cache.
#pragma once

#include <string>

namespace lab {

// ${XDG_CACHE_HOME:-~/.cache}/toa-build, or $TOA_BUILD_CACHE when set (tests).
std::string CacheRoot();

// The project's source tree (for module/ and distros/).
std::string SourceDir();

// The build tree (for lbsim).
std::string BinaryDir();

}  // namespace lab
