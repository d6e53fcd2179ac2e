// Test support: JIT execution of lowered entry points; see compiler_jit.h.
#include "tests/compiler_jit.h"

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

JitEntry::JitEntry(const Graph& graph, const EntryPoint& entry, int batch, const ScheduleOptions& schedule,
                   Halide::Type float_type)
    : graph_(graph), entry_(entry), batch_(batch), lowered_(lowerEntry(graph, entry, float_type, hostTarget(), schedule)),
      pipeline_(lowered_.pipeline()) {
  pipeline_.compile_jit(lowered_.target);
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
  Halide::Buffer<> buffer(lowered_.float_type, halideExtents(graph_.node(leaf).shape, batch_));
  if (values.size() != buffer.number_of_elements()) throw std::logic_error("test data has the wrong size");
  if (lowered_.float_type.bits() == 64) copyIn<double>(values, buffer);
  else copyIn<float>(values, buffer);
  floats_[leaf] = buffer;
  lowered_.images.at(leaf).set(buffer);
}

void JitEntry::setLabels(NodeId leaf, const std::vector<int32_t>& labels) {
  Halide::Buffer<int32_t> buffer(halideExtents(graph_.node(leaf).shape, batch_));
  std::copy(labels.begin(), labels.end(), buffer.data());
  labels_[leaf] = buffer;
  lowered_.images.at(leaf).set(buffer);
}

void JitEntry::setScalar(NodeId leaf, double value) { lowered_.scalars.at(leaf).set(value); }

void JitEntry::setIntScalar(NodeId leaf, int32_t value) { lowered_.scalars.at(leaf).set(value); }

std::vector<std::vector<double>> JitEntry::run() {
  std::vector<Halide::Buffer<>> buffers;
  for (NodeId id : entry_.outputs)
    buffers.emplace_back(lowered_.float_type, halideExtents(graph_.node(id).shape, batch_));
  Halide::Realization realization(buffers);
  pipeline_.realize(realization);
  std::vector<std::vector<double>> out;
  for (const Halide::Buffer<>& buffer : buffers)
    out.push_back(lowered_.float_type.bits() == 64 ? copyOut<double>(buffer) : copyOut<float>(buffer));
  return out;
}

}  // namespace nnc::testing
