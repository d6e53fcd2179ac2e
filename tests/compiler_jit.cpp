// Test support: JIT execution of lowered entry points; see compiler_jit.h.
#include "tests/compiler_jit.h"

#include <cstdlib>
#include <cstring>

namespace nnc::testing {

std::vector<int> concrete(const Shape& shape, int batch) {
  std::vector<int> out;
  for (const Dim& d : shape) out.push_back(d.isSymbolic() ? batch : static_cast<int>(d.extent));
  return out;
}

size_t elementCount(const Shape& shape, int batch) {
  size_t count = 1;
  for (int d : concrete(shape, batch)) count *= static_cast<size_t>(d);
  return count;
}

Executor defaultExecutor() {
  const char* name = std::getenv("NNC_TEST_EXECUTOR");
  if (name == nullptr || std::strcmp(name, "plan") == 0) return Executor::Plan;
  if (std::strcmp(name, "pipeline") == 0) return Executor::Pipeline;
  throw std::invalid_argument(std::string("NNC_TEST_EXECUTOR must be `plan` or `pipeline`, not `") + name + "`");
}

JitEntry::JitEntry(const Graph& graph, const EntryPoint& entry, int batch, const ScheduleOptions& schedule,
                   Halide::Type float_type, Executor executor)
    : graph_(graph), entry_(entry), batch_(batch), float_type_(float_type) {
  std::vector<PlanKernel> plan_kernels;
  if (executor == Executor::Plan) {
    plan_ = planEntry(graph, entry_, hostTarget(), schedule, plan_kernels);
  } else {  // one call: the entry's arguments, then its results
    plan_.entry = &entry_;
    PlanCall call{0, {}};
    for (size_t i = 0; i < entry_.arguments.size(); ++i) {
      plan_.values.push_back({PlanValue::Kind::Argument, i, entry_.arguments[i]});
      call.values.push_back(i);
    }
    for (size_t i = 0; i < entry_.outputs.size(); ++i) {
      plan_.values.push_back({PlanValue::Kind::Result, i, entry_.outputs[i]});
      call.values.push_back(entry_.arguments.size() + i);
    }
    plan_.calls.push_back(call);
    plan_kernels.push_back({entry_.name, "", entry_, schedule.batch_estimate});
  }
  for (const PlanKernel& kernel : plan_kernels) {
    LoweredEntry lowered = lowerEntry(graph, kernel.entry, float_type, hostTarget(), schedule);
    Halide::Pipeline pipeline = lowered.pipeline();
    pipeline.compile_jit(lowered.target);
    kernels_.push_back({kernel.entry.arguments, std::move(lowered), pipeline});
  }
}

namespace {

// Copies between row-major doubles and a float buffer of either precision.
template <typename T>
void copyIn(const std::vector<double>& values, Halide::Buffer<> buffer) {
  std::copy(values.begin(), values.end(), Halide::Buffer<T>(buffer).data());
}
template <typename T>
std::vector<double> copyOut(Halide::Buffer<> buffer) {
  Halide::Buffer<T> typed(buffer);
  return {typed.data(), typed.data() + typed.number_of_elements()};
}

}  // namespace

void JitEntry::set(NodeId leaf, const std::vector<double>& values) {
  Halide::Buffer<> buffer(float_type_, halideExtents(graph_.node(leaf).shape, batch_));
  if (values.size() != buffer.number_of_elements()) throw std::logic_error("test data has the wrong size");
  if (float_type_.bits() == 64) copyIn<double>(values, buffer);
  else copyIn<float>(values, buffer);
  buffers_[leaf] = buffer;
}

void JitEntry::setLabels(NodeId leaf, const std::vector<int32_t>& labels) {
  Halide::Buffer<int32_t> buffer(halideExtents(graph_.node(leaf).shape, batch_));
  if (labels.size() != buffer.number_of_elements()) throw std::logic_error("test labels have the wrong size");
  std::copy(labels.begin(), labels.end(), buffer.data());
  buffers_[leaf] = buffer;
}

void JitEntry::setScalar(NodeId leaf, double value) { scalars_[leaf] = value; }

void JitEntry::setIntScalar(NodeId leaf, int32_t value) { int_scalars_[leaf] = value; }

std::vector<std::vector<double>> JitEntry::run() {
  // Intermediates live in one arena at the plan's offsets, counted in elements of the float type (an i32
  // intermediate takes no more than its slot).
  size_t element = float_type_.bytes();
  std::vector<uint8_t> arena(static_cast<size_t>(plan_.arena.elements(batch_)) * element + 64);
  uint8_t* base = arena.data() + (64 - reinterpret_cast<uintptr_t>(arena.data()) % 64) % 64;
  int64_t batched_end = plan_.arena.batched * batch_;
  std::vector<Halide::Buffer<>> values;
  std::vector<std::vector<double>> out(entry_.outputs.size());
  for (const PlanValue& value : plan_.values) {
    const Node& node = graph_.node(value.node);
    Halide::Type type = node.dtype == DType::I32 ? Halide::Int(32) : float_type_;
    std::vector<int> extents = halideExtents(node.shape, batch_);
    switch (value.kind) {
      case PlanValue::Kind::Argument:
        values.push_back(node.op == Op::Scalar ? Halide::Buffer<>() : buffers_.at(value.node));
        break;
      case PlanValue::Kind::Result: values.emplace_back(type, extents); break;
      case PlanValue::Kind::Intermediate: {
        int64_t offset = value.batched ? value.offset * batch_ : batched_end + value.offset;
        values.emplace_back(type, base + offset * element, extents);
        break;
      }
    }
  }
  for (const PlanCall& call : plan_.calls) {
    Kernel& kernel = kernels_[call.kernel];
    size_t num_arguments = call.values.size() - kernel.lowered.outputs.size();
    std::vector<Halide::Buffer<>> results;
    for (size_t i = 0; i < call.values.size(); ++i) {
      if (i >= num_arguments) {
        results.push_back(values[call.values[i]]);
        continue;
      }
      NodeId node = kernel.arguments[i], value = plan_.values[call.values[i]].node;
      if (!kernel.lowered.scalars.count(node)) kernel.lowered.images.at(node).set(values[call.values[i]]);
      else if (int_scalars_.count(value)) kernel.lowered.scalars.at(node).set(int_scalars_.at(value));
      else if (scalars_.count(value)) kernel.lowered.scalars.at(node).set(scalars_.at(value));
    }
    Halide::Realization realization(results);
    kernel.pipeline.realize(realization);
  }
  for (size_t v = 0; v < plan_.values.size(); ++v) {
    const PlanValue& value = plan_.values[v];
    if (value.kind != PlanValue::Kind::Result) continue;
    Halide::Buffer<> buffer = values[v];
    out[value.index] = buffer.type() == Halide::Float(64)   ? copyOut<double>(buffer)
                       : buffer.type() == Halide::Float(32) ? copyOut<float>(buffer)
                                                            : copyOut<int32_t>(buffer);
  }
  return out;
}

}  // namespace nnc::testing
