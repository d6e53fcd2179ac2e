// ONNX conformance: ONNX's own node tests (Debian's libonnx-testdata) through `nnc import` and nnc's compiler.
//
//   onnx_conformance TEST_DIR... [--known-failures FILE] [--expect-passing FILE] [--no-skips] [-v]
//
// Each test in a TEST_DIR is a directory with model.onnx and test_data_set_0/{input,output}_N.pb (TensorProtos). For
// each:
//   1. The graph's first input stays the model's input; its other inputs (a second operand, a Reshape's shape)
//      become initializers holding the test's values, so the importer makes them params or numbers.
//   2. Import with the batch as axis 0; when the importer refuses for the batch axis, again with a new batch axis
//      (B = 1). Refusals are skips, counted by kind: unsupported op, a semantic difference, or the batch axis.
//   3. The .nn text goes through nnc's front end (diagnostics there are failures: the importer wrote a bad model),
//      then `predict` runs in float32 with Halide's JIT, as one pipeline (a trainer's plan gives the same values;
//      one JIT compile per test keeps the whole run near a minute), its params set from the imported checkpoint.
//   4. Outputs match when |got - expected| <= 1e-5 + 1e-4 |expected| everywhere. A test with several outputs is
//      checked on its first (an nnc model returns one).
// FILE lists failing tests, one per line with the reason after the name (`#` comments). The exit status is 0 when
// the failures are exactly those listed (none without a list), so a new failure, or a listed test that passes,
// fails the run. --expect-passing FILE lists, one per line, the tests that pass: the run fails when one of them does
// not (a regression can turn passes into skips, which the counts alone would let by) or when an unlisted test passes
// (add it). --no-skips fails it for any skipped test too (nnc's own tests, written for supported rules). -v prints
// every test's outcome, with the reason for each skip.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <iostream>
#include <map>
#include <set>

#include "compiler/compilation.h"
#include "compiler/onnx/onnx_import.h"
#include "tests/compiler_jit.h"

namespace {

namespace fs = std::filesystem;
using nnc::onnx_import::ImportError;

enum class Outcome { Passed, Failed, Unsupported, Semantics, BatchAxis };

struct Result {
  Result(Outcome outcome, std::string why, std::set<std::string> missing = {})
      : outcome(outcome), why(std::move(why)), missing(std::move(missing)) {}
  Outcome outcome;
  std::string why;
  std::set<std::string> missing;  // Unsupported: the operators nnc lacks
};

// A refusal of the importer is a skip of its kind; a model it cannot read is a failure.
Outcome outcomeOf(ImportError::Kind kind) {
  switch (kind) {
    case ImportError::Kind::Unsupported:
      return Outcome::Unsupported;
    case ImportError::Kind::Semantics:
      return Outcome::Semantics;
    case ImportError::Kind::BatchAxis:
      return Outcome::BatchAxis;
    case ImportError::Kind::BadInput:
      return Outcome::Failed;
  }
  return Outcome::Failed;  // not reached: the switch names every kind
}

// The operators of a model that nnc import has no rule for (shape arithmetic it folds may be among them).
std::set<std::string> missingOperators(const onnx::ModelProto& model) {
  static const std::vector<std::string> supported = nnc::onnx_import::supportedOperators();
  std::set<std::string> missing;
  for (const onnx::NodeProto& node : model.graph().node())
    if (!std::binary_search(supported.begin(), supported.end(), node.op_type())) missing.insert(node.op_type());
  return missing;
}

std::vector<onnx::TensorProto> readTensors(const fs::path& dir, const char* prefix) {
  std::vector<onnx::TensorProto> tensors;
  for (int i = 0; fs::exists(dir / fmt::format("{}_{}.pb", prefix, i)); ++i)
    tensors.push_back(nnc::onnx_import::readTensor(dir / fmt::format("{}_{}.pb", prefix, i)));
  return tensors;
}

// Compares row-major values; the first mismatch, or none.
std::string compare(const std::vector<double>& got, const std::vector<double>& expected) {
  if (got.size() != expected.size()) return fmt::format("{} values, expected {}", got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]) && std::isnan(expected[i])) continue;
    if (!(std::fabs(got[i] - expected[i]) <= 1e-5 + 1e-4 * std::fabs(expected[i])))
      return fmt::format("element {}: {} instead of {}", i, got[i], expected[i]);
  }
  return "";
}

// Runs the imported model's `predict` on the test's first input, `batch` rows of it.
Result evaluate(const nnc::onnx_import::ImportedModel& imported, int batch,
                const std::vector<onnx::TensorProto>& inputs, const onnx::TensorProto& output) {
  auto c = nnc::compileFrontEnd(nnc::dsl::SourceFile("model.nn", imported.source));
  if (c->diags->hasErrors())
    return {Outcome::Failed, "the imported .nn does not compile:\n" + c->diags->render() + imported.source};
  nnc::Program program = nnc::buildProgram(std::move(*c->graph), c->checked->train);
  const nnc::Graph& graph = program.graph;
  nnc::testing::JitEntry entry(graph, program.predict, batch, {}, Halide::Float(32), nnc::testing::Executor::Pipeline);
  std::vector<double> features = nnc::onnx_import::tensorValues(inputs[0], "input_0");
  if (graph.node(graph.inputs[0].node).dtype == nnc::DType::I32)  // token ids
    entry.setLabels(graph.inputs[0].node, std::vector<int32_t>(features.begin(), features.end()));
  else
    entry.set(graph.inputs[0].node, features);
  std::map<std::string, const nnc::rt::NamedTensor*> weights;
  for (const nnc::rt::NamedTensor& weight : imported.weights) weights[weight.name] = &weight;
  for (const nnc::ParamInfo& param : graph.params) {
    auto it = weights.find(param.name);
    if (it == weights.end())
      return {Outcome::Failed, fmt::format("param `{}` has no value in the checkpoint", param.name)};
    entry.set(param.node, std::vector<double>(it->second->data.begin(), it->second->data.end()));
  }
  std::string mismatch = compare(entry.run()[0], nnc::onnx_import::tensorValues(output, "output_0"));
  return mismatch.empty() ? Result(Outcome::Passed, "") : Result(Outcome::Failed, mismatch);
}

Result runTest(const fs::path& dir) {
  std::vector<onnx::TensorProto> inputs = readTensors(dir / "test_data_set_0", "input");
  std::vector<onnx::TensorProto> outputs = readTensors(dir / "test_data_set_0", "output");
  onnx::ModelProto model = nnc::onnx_import::readModel(dir / "model.onnx");
  if (outputs.empty()) return {Outcome::Failed, "no expected output"};
  if (inputs.empty()) return {Outcome::Semantics, "no input; an nnc model computes from its features"};
  // An nnc model returns one output: a test with several (LayerNormalization's mean, a Split's parts) is checked on
  // its first, the graph's other outputs dropped (their nodes stay, and must translate).
  model.mutable_graph()->mutable_output()->DeleteSubrange(1, model.graph().output_size() - 1);
  // nnc computes in float32 (from float32 features or integer ids): other outputs cannot match, and other inputs are
  // refused (this says why first, before the 16-bit types' test data, stored under other types, confuses ONNX's own
  // checks).
  int32_t input_type = inputs[0].data_type();
  for (int32_t type :
       {input_type == onnx::TensorProto::INT64 ? onnx::TensorProto::FLOAT : input_type, outputs[0].data_type()})
    if (type != onnx::TensorProto::FLOAT)
      return {Outcome::Semantics,
              fmt::format("{} data; nnc computes in float32", onnx::TensorProto::DataType_Name(type))};
  for (size_t i = 1; i < inputs.size() && i < static_cast<size_t>(model.graph().input_size()); ++i) {
    onnx::TensorProto* initializer = model.mutable_graph()->add_initializer();
    *initializer = inputs[i];
    initializer->set_name(model.graph().input(static_cast<int>(i)).name());
  }
  nnc::onnx_import::ImportOptions options;
  options.loss = "mse";  // nnc models need a loss; `predict` does not use it
  try {
    std::optional<nnc::onnx_import::ImportedModel> imported;
    try {
      imported = nnc::onnx_import::importModel(model, dir.filename(), options);
    } catch (const ImportError& e) {
      if (e.kind != ImportError::Kind::BatchAxis) throw;
      options.new_batch_axis = true;
      imported = nnc::onnx_import::importModel(model, dir.filename(), options);
    }
    int batch = options.new_batch_axis || inputs[0].dims_size() == 0 ? 1 : static_cast<int>(inputs[0].dims(0));
    return evaluate(*imported, batch, inputs, outputs[0]);
  } catch (const ImportError& e) {
    return {outcomeOf(e.kind), e.what(),
            e.kind == ImportError::Kind::Unsupported ? missingOperators(model) : std::set<std::string>{}};
  } catch (const std::exception& e) {  // Halide's and nnc's internal errors
    return {Outcome::Failed, std::string("internal error: ") + e.what()};
  }
}

// Test name -> the rest of its line (a known failure's reason), from a list of tests.
std::map<std::string, std::string> readTestList(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::map<std::string, std::string> known;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.find(' ');
    known[line.substr(0, space)] = space == std::string::npos ? "" : line.substr(space + 1);
  }
  return known;
}

}  // namespace

int run(int argc, char** argv) {
  std::map<std::string, std::string> known;
  std::optional<std::map<std::string, std::string>> expected_passing;
  std::string passing_file;
  std::vector<std::string> roots;
  bool verbose = false, no_skips = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--known-failures" && i + 1 < argc)
      known = readTestList(argv[++i]);
    else if (arg == "--expect-passing" && i + 1 < argc)
      expected_passing = readTestList(passing_file = argv[++i]);
    else if (arg == "-v")
      verbose = true;
    else if (arg == "--no-skips")
      no_skips = true;
    else if (arg.rfind("-", 0) != 0)
      roots.push_back(arg);
    else
      roots.clear(), i = argc;  // an unknown option: the usage below
  }
  if (roots.empty()) {
    std::cerr << "usage: onnx_conformance TEST_DIR... [--known-failures FILE] [--expect-passing FILE] [--no-skips] [-v]\n";
    return 2;
  }
  std::vector<fs::path> dirs;
  for (const std::string& root : roots)
    for (const fs::directory_entry& entry : fs::directory_iterator(root))
      if (fs::exists(entry.path() / "model.onnx")) dirs.push_back(entry.path());
  std::sort(dirs.begin(), dirs.end());
  auto start = std::chrono::steady_clock::now();
  int status = 0;
  std::map<Outcome, int> counts;
  std::map<std::string, int> missing;  // operator -> the skipped tests that use it
  std::set<std::string> failed, skipped_tests, passed;
  std::map<std::string, std::string> not_passed;  // test -> why
  for (const fs::path& dir : dirs) {
    Result result = runTest(dir);
    ++counts[result.outcome];
    for (const std::string& op : result.missing) ++missing[op];
    std::string name = dir.filename();
    if (result.outcome != Outcome::Passed && result.outcome != Outcome::Failed)
      skipped_tests.insert(name + ": " + result.why);
    if (result.outcome == Outcome::Passed) passed.insert(name);
    else not_passed[name] = result.why;
    if (result.outcome == Outcome::Failed) {
      failed.insert(name);
      std::cout << fmt::format("FAIL {}{}: {}\n", name, known.count(name) ? " (known)" : "", result.why);
    } else if (verbose) {
      std::cout << fmt::format("{} {}{}\n", result.outcome == Outcome::Passed ? "pass" : "skip", name,
                               result.why.empty() ? "" : ": " + result.why);
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int skipped = counts[Outcome::Unsupported] + counts[Outcome::Semantics] + counts[Outcome::BatchAxis];
  std::cout << fmt::format(
      "{} passed, {} failed, {} skipped ({} unsupported op, {} semantic difference, {} batch axis) "
      "of {} tests in {:.0f} s\n",
      counts[Outcome::Passed], counts[Outcome::Failed], skipped, counts[Outcome::Unsupported],
      counts[Outcome::Semantics], counts[Outcome::BatchAxis], dirs.size(), seconds);
  std::vector<std::pair<int, std::string>> by_count;
  for (const auto& [op, count] : missing) by_count.push_back({-count, op});
  std::sort(by_count.begin(), by_count.end());
  std::string list;
  for (size_t i = 0; i < by_count.size() && i < 20; ++i)
    list += fmt::format("{}{} {}", i ? ", " : "", by_count[i].second, -by_count[i].first);
  if (!list.empty())
    std::cout << fmt::format("unsupported operators, by the skipped tests that use them: {}{}\n", list,
                             by_count.size() > 20 ? fmt::format(" and {} more", by_count.size() - 20) : "");
  for (const std::string& name : failed)
    if (!known.count(name)) {
      std::cout << "new failure: " << name << "\n";
      status = 1;
    }
  if (no_skips)
    for (const std::string& skip : skipped_tests) {
      std::cout << "skipped under --no-skips: " << skip << "\n";
      status = 1;
    }
  if (expected_passing) {  // the passing tests are exactly those listed
    for (const std::string& name : passed)
      if (!expected_passing->count(name)) {
        std::cout << fmt::format("passes but is not listed in {}: {}; add it\n", passing_file, name);
        status = 1;
      }
    for (const auto& [name, unused] : *expected_passing)
      if (!passed.count(name)) {
        auto it = not_passed.find(name);
        std::cout << fmt::format("listed in {} but did not pass: {} ({})\n", passing_file, name,
                                 it != not_passed.end() ? it->second : "no such test");
        status = 1;
      }
  }
  for (const auto& [name, why] : known)
    if (!failed.count(name)) {
      std::cout << fmt::format("listed as failing but did not fail: {} ({}); remove it from the list\n", name, why);
      status = 1;
    }
  return status;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // an unreadable directory or known-failures file
    std::cerr << "onnx_conformance: " << e.what() << "\n";
    return 2;
  }
}
