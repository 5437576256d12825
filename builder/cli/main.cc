#include <iostream>

#include "cli/command.h"

int main(int argc, char** argv) {
  util::SystemProcessRunner runner;
  return cli::RunApplication(argc, argv, runner, std::cout, std::cerr);
}
