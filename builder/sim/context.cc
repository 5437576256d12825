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

}  // namespace sim
