// What the in-guest benchmarks of both modules share.
#include <algorithm>
#include <cmath>

#include "sim/sim.h"

namespace sim {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  if (n == 0) return 0;
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

nlohmann::json Rounded(const std::vector<double>& v, double scale) {
  nlohmann::json j = nlohmann::json::array();
  for (double x : v) j.push_back(std::round(x * scale) / scale);
  return j;
}

nlohmann::json LoadedVsNot::ToJson() const {
  return {{"rounds", ratios.size()},
          {"not_loaded", Rounded(not_loaded)},
          {"loaded", Rounded(loaded)},
          {"ratios", Rounded(ratios, 1e4)},
          {"median_not_loaded", std::round(Median(not_loaded))},
          {"median_loaded", std::round(Median(loaded))},
          {"median_ratio", std::round(Median(ratios) * 1e4) / 1e4}};
}

util::Result<LoadedVsNot> AlternateLoaded(Context& ctx, const std::string& module, int rounds,
                                          const std::function<util::Result<double>(bool loaded)>& measure) {
  LoadedVsNot r;
  for (int round = 0; round < rounds; round++) {
    for (int half = 0; half < 2; half++) {
      bool loaded = (round % 2 == 0) ? half == 1 : half == 0;
      util::Status st = loaded ? ctx.modules.Ensure(module, "") : ctx.modules.UnloadIfLoaded(module);
      if (!st) return st.error();
      auto v = measure(loaded);
      if (!v) return v.error();
      (loaded ? r.loaded : r.not_loaded).push_back(*v);
    }
    r.ratios.push_back(r.loaded.back() / r.not_loaded.back());
  }
  return r;
}

}  // namespace sim
