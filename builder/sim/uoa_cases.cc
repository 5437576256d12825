// Stub until the UOA module's author writes the UOA cases (they own this file;
// see sim.h "Adding cases"). No cases here means no UOA result lines.
#include "sim/sim.h"

namespace sim {

std::vector<Case> UoaCases() { return {}; }
std::vector<Benchmark> UoaBenchmarks() { return {}; }

}  // namespace sim
