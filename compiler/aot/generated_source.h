// Pieces of the generated C++ sources (compiler/aot/link.cpp: a trainer's model.cpp; compiler/aot/library.cpp: an
// inference library's) and of the commands that compile them.
#pragma once

#include <cstdint>
#include <string>

#include "compiler/graph/program.h"
#include "compiler/plan/plan.h"
#include "compiler/target.h"

namespace nnc {

// `text` as a C string literal.
std::string cString(const std::string& text);

// "2, {256, 784}" for a row-major shape; symbolic dimensions become kBatchDim.
std::string rankAndShape(const Shape& shape);

std::string shellQuote(const std::string& text);

// The tables of one entry point's plan (runtime/plan_core.h): intermediate buffers, each call's values, and the
// PlanSpec named `k{id}Plan`.
std::string planSource(const Program& program, const ProgramPlan& plan, const EntryPlan& entry, const std::string& id,
                       bool profiled);

// `const char* const kCpuFeatures[] = {...};`: what a CPU needs to run kernels compiled for `target`.
std::string cpuFeaturesSource(const Target& target);

// Token-id features index embedding tables: the rows of the smallest table they reach (ids must be below it), or 0
// when the features are no ids.
int64_t tokenIdsBelow(const Graph& g);

// "CXX -std=c++20 -O2 FLAGS -ISOURCE_DIR": the compiler nnc was built with, as generated sources need it.
std::string compileCommand(const std::string& flags);

// Runs a shell command; throws std::runtime_error "WHAT failed: COMMAND" when it fails.
void runCommand(const std::string& command, const std::string& what);

}  // namespace nnc
