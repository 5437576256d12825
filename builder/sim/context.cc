#include <thread>

#include "sim/sim.h"

namespace sim {

uint16_t Context::NextBalancerPort() {
  // Connections are closed with RST, so ports can be reused after a wrap.
  if (balancer_port >= 60000) balancer_port = 20000;
  return balancer_port++;
}

uint16_t Context::NextServerPort() {
  if (server_port >= 19000) server_port = 8000;
  return server_port++;
}

void Pacer::Wait() {
  auto now = std::chrono::steady_clock::now();
  next_ += step_;
  if (next_ < now) next_ = now;
  else std::this_thread::sleep_until(next_);
}

}  // namespace sim
