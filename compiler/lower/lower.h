// Lowering: an entry point of the graph -> a Halide Pipeline (the algorithm), scheduled by compiler/schedule/cpu.cpp.
//
// Layouts: a tensor of row-major shape [d0, ..., dn] is a Halide Func/buffer whose dimension 0 is dn (the
// innermost, contiguous one), so [B, 784] is f(feature, batch). Broadcasting aligns trailing dimensions, which
// are the leading Halide dimensions. This is the only file besides schedule.cpp and aot.cpp that sees Halide.h.
#pragma once

#include <Halide.h>

#include <map>
#include <vector>

#include "compiler/graph/graph.h"
#include "compiler/graph/program.h"
#include "compiler/schedule/policy.h"
#include "compiler/target.h"

namespace nnc {

// The Halide Funcs of one lowered node: `func` is its value; `helpers` are intermediate Funcs the schedule needs
// (a matmul's accumulator and packed operand, a loss's row maxima and sums).
struct LoweredNode {
  Halide::Func func;
  std::vector<Halide::Func> helpers;
  std::vector<Halide::RDom> reductions;
};

struct LoweredEntry {
  std::vector<Halide::Argument> arguments;          // in the entry point's ABI order
  std::map<NodeId, Halide::ImageParam> images;      // Input, Param, State leaves
  std::map<NodeId, Halide::Param<>> scalars;        // Scalar leaves
  std::map<NodeId, LoweredNode> nodes;              // every node the outputs need
  std::vector<Halide::Func> outputs;                // one wrapper Func per entry output
  std::vector<NodeId> output_nodes;                 // the node each output wraps
  std::map<std::string, Halide::Expr> symbols;      // each symbolic dimension's extent in this call (B)
  std::map<NodeId, NodeId> bias_in_grad_weight;     // sum_to -> the conv2d_grad_weight that computes it (lower_conv.h)
  Halide::Type float_type;
  Halide::Target target;                            // the CPU the schedule is for (no runtime flags)
  bool plan_kernel = false;                         // see EntryPoint::plan_kernel
  Halide::Pipeline pipeline() const { return Halide::Pipeline(outputs); }
};

// Whether node `id` is a pipeline argument of `lowered` (read, not computed).
inline bool isArgument(const LoweredEntry& lowered, NodeId id) {
  return lowered.images.count(id) > 0 || lowered.scalars.count(id) > 0;
}

// A matrix product with few output columns, fewer than 32 and not a multiple of 8 (the logits: 10). Its packed
// B reads the columns past the last as zeros, so the schedule can compute one whole vector of columns.
bool narrowProduct(const Node& node);

// A row-major shape's extents in Halide order (innermost first), symbolic dimensions replaced by `batch`.
std::vector<int> halideExtents(const Shape& shape, int batch);

// The Halide dimension variables: d0 is the innermost dimension.
const std::vector<Halide::Var>& dimVars();

// What the lowering of one op family sees of the lowering in progress, so a family's algorithm can live in a
// file of its own (lower_<family>.cpp) beside its shape and VJP rules.
class LoweringContext {
 public:
  virtual ~LoweringContext() = default;
  virtual const Graph& graph() const = 0;
  // The Func of an already lowered node (every input of the node being lowered is).
  virtual Halide::Func func(NodeId id) const = 0;
  // Node `id` read at `coords` (Halide order) of a result of shape `out_shape`, broadcasting as numpy does.
  virtual Halide::Expr read(NodeId id, const std::vector<Halide::Expr>& coords, const Shape& out_shape) const = 0;
  // A dimension's extent: a constant, or the symbolic batch size of this call.
  virtual Halide::Expr extent(const Dim& dim) const = 0;
  virtual Halide::Expr constant(double value) const = 0;  // in the float type
  virtual Halide::Type floatType() const = 0;
  // A new Func named uniquely after the node being lowered and its `role` in it.
  virtual Halide::Func helper(const std::string& role) const = 0;
};

// The value of an elementwise math or activation op (exp ... softplus and their backward helpers; see
// compiler/lower/lower_elementwise.cpp) at one point, from its operands' values there.
Halide::Expr lowerElementwise(const LoweringContext& ctx, const Node& node, const std::vector<Halide::Expr>& operands);
// Family lowerings in files of their own: reductions, layout ops and regression losses (lower_reduce.cpp).
void lowerReduceFamily(const LoweringContext& ctx, const Node& node, LoweredNode& lowered);

// Lowers the nodes that `entry`'s outputs need, computing floats in `float_type` (Float(32) for trainers,
// Float(64) for gradient checks), and schedules them for `target`'s CPU.
LoweredEntry lowerEntry(const Graph& graph, const EntryPoint& entry, Halide::Type float_type, const Target& target,
                        const ScheduleOptions& schedule = {});

// A target's vector unit as schedules see it (compiler/schedule/cpu.cpp): `lanes` values of the entry's float type
// per native vector (16 f32 with AVX-512, 8 with AVX2, 4 with SSE), narrower vectors down to 256 bits (or the
// native width, when narrower) for loops too short for a native one, and the vector registers a register tile
// may fill.
struct VectorUnit {
  int lanes, min_lanes, registers;
  // The widest vector, halving from `lanes` down to `min_lanes`, that a loop of `extent` iterations fills; 0 when
  // none does.
  int lanesFor(int64_t extent) const;
  // The registers a register tile's sums may fill; the rest hold its loads and broadcasts.
  int sumRegisters() const { return registers - 4; }
};
VectorUnit vectorUnitFor(const Halide::Target& target, Halide::Type float_type);
// The vector width for a pure loop over rows of `extent`: unit.lanesFor(extent), or one vector of the whole row
// when it is shorter than any but at least 4 (LLVM widens it).
int rowLanes(int64_t extent, const VectorUnit& unit);

// Applies nnc's CPU schedule to a lowered entry point (compiler/schedule/cpu.cpp).
void scheduleEntry(const Graph& graph, LoweredEntry& lowered);
// Applies nnc's GPU schedule (compiler/schedule/gpu.cpp) to an entry lowered for a cuda or opencl target.
void scheduleEntryForGpu(const Graph& graph, LoweredEntry& lowered);
// Applies the naive schedule or an autoscheduler's (compiler/schedule/autoschedule.cpp).
void scheduleEntryWith(const Graph& graph, LoweredEntry& lowered, const ScheduleOptions& schedule);

}  // namespace nnc
