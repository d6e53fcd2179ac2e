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

JitEntry::JitEntry(const Graph& graph, const EntryPoint& entry, int batch, const ScheduleOptions& schedule)
    : graph_(graph), entry_(entry), batch_(batch), lowered_(lowerEntry(graph, entry, Halide::Float(64), schedule)),
      pipeline_(lowered_.pipeline()) {
  pipeline_.compile_jit();
}

void JitEntry::set(NodeId leaf, const std::vector<double>& values) {
  Halide::Buffer<double> buffer(halideExtents(graph_.node(leaf).shape, batch_));
  if (values.size() != buffer.number_of_elements()) throw std::logic_error("test data has the wrong size");
  std::copy(values.begin(), values.end(), buffer.data());
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
  for (NodeId id : entry_.outputs) buffers.push_back(Halide::Buffer<double>(halideExtents(graph_.node(id).shape, batch_)));
  Halide::Realization realization(buffers);
  pipeline_.realize(realization);
  std::vector<std::vector<double>> out;
  for (Halide::Buffer<> buffer : buffers) {
    Halide::Buffer<double> typed(buffer);
    out.emplace_back(typed.data(), typed.data() + typed.number_of_elements());
  }
  return out;
}

}  // namespace nnc::testing
