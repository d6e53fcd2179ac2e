// Plans of kernels; see plan.h.
//
// For each entry point:
//   1. lower and schedule it whole (no Halide compilation: cheap) and read which nodes' Funcs are computed at root;
//   2. those nodes and the entry's results anchor groups; a group takes the nodes its anchors need that no other
//      anchor materializes (inlined nodes are recomputed in each group that reads them, as in the whole pipeline);
//      a bias gradient summed in its weight gradient's tiles joins that group (it reads the tiles' extra column);
//   3. a group's arguments are the leaves and other groups' anchors it reads, numbered in the order its nodes
//      (ascending ids) first read them; its canonical text (every node's op, attributes, type, shape and operands
//      by position) names its kernel;
//   4. calls run in the order of their anchors' ids; a result that is an argument or repeats another result is a
//      copy kernel.
#include "compiler/plan/plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <future>
#include <map>
#include <set>

#include "compiler/graph/graph_printer.h"
#include "compiler/lower/lower.h"
#include "compiler/lower/lower_conv.h"

namespace nnc {

int64_t EntryPlan::peakElements(int64_t batch) const {
  int64_t inside = 0;
  for (const PlanCall& call : calls) inside = std::max(inside, call.inside.elements(batch));
  return arena.elements(batch) + inside;
}

int batchEstimate(const Program& program, const EntryPoint& entry) {
  bool evaluates = &entry == &program.predict || &entry == &program.sample;
  return evaluates ? static_cast<int>(kEvalBatch) : static_cast<int>(program.train.batch);
}

namespace {

uint64_t fnv1a(const std::string& bytes) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) hash = (hash ^ c) * 0x100000001b3ULL;
  return hash;
}

bool isLeaf(const Node& node) { return opInfo(node.op).family == OpFamily::Leaf && node.op != Op::Fill; }

// Every attribute, so that two nodes with one text lower to the same Funcs.
std::string allAttrs(const Attrs& a) {
  return fmt::format("index={} value={} transpose={}{} shape={} axes=[{}] keepdims={} alpha={} beta={} approx={} "
                     "kernel={}x{} stride={}x{} padding={}x{} dilation={}x{}",
                     a.index, a.value, a.transpose_a, a.transpose_b, shapeToString(a.shape), fmt::join(a.axes, ","),
                     a.keepdims, a.alpha, a.beta, a.approximate, a.kernel[0], a.kernel[1], a.stride[0], a.stride[1],
                     a.padding[0], a.padding[1], a.dilation[0], a.dilation[1]);
}

std::string typeText(const Node& node) { return fmt::format("{}{}", dtypeName(node.dtype), shapeToString(node.shape)); }

// One fusion group: its anchors (the values it materializes), every node it computes (ascending), and the nodes
// it reads that it does not compute (leaves and other groups' anchors), in the order its members first read them.
struct Group {
  std::vector<NodeId> anchors, members, arguments;
  NodeId order = kNoNode;  // its last anchor: among the groups ready to run, the one with the lowest runs first
};

class EntryPlanner {
 public:
  EntryPlanner(const Graph& graph, const EntryPoint& entry, const Target& target, const ScheduleOptions& schedule,
               std::vector<PlanKernel>& kernels)
      : g_(graph), entry_(entry), target_(target), schedule_(schedule), kernels_(kernels) {}

  EntryPlan run() {
    findAnchors();
    std::vector<Group> groups = formGroups();
    for (Group& group : groups) {
      std::set<NodeId> members(group.members.begin(), group.members.end());
      for (NodeId id : group.members)
        for (NodeId in : g_.node(id).inputs)
          if (!members.count(in) && std::find(group.arguments.begin(), group.arguments.end(), in) == group.arguments.end())
            group.arguments.push_back(in);
      // A group that computes over the batch but reads nothing batched (BatchNorm's count of values per channel)
      // takes a batched argument of the entry for its extent.
      auto reads_batch = [&](NodeId id) { return isBatched(g_.node(id).shape); };
      if (std::any_of(group.members.begin(), group.members.end(), reads_batch) &&
          std::none_of(group.arguments.begin(), group.arguments.end(), reads_batch)) {
        auto carrier = std::find_if(entry_.arguments.begin(), entry_.arguments.end(), reads_batch);
        if (carrier != entry_.arguments.end()) group.arguments.push_back(*carrier);
      }
      read_across_.insert(group.arguments.begin(), group.arguments.end());
    }
    EntryPlan out;
    out.entry = &entry_;
    for (size_t i = 0; i < entry_.arguments.size(); ++i)
      value(out, {PlanValue::Kind::Argument, i, entry_.arguments[i]});
    // Each call once its arguments exist; among those ready, the group of the lowest last anchor.
    std::vector<bool> done(groups.size(), false);
    for (size_t called = 0; called < groups.size(); ++called) {
      size_t next = groups.size();
      for (size_t i = 0; i < groups.size(); ++i) {
        bool ready = !done[i] && std::all_of(groups[i].arguments.begin(), groups[i].arguments.end(),
                                             [&](NodeId in) { return current_.count(in) > 0; });
        if (ready && (next == groups.size() || groups[i].order < groups[next].order)) next = i;
      }
      if (next == groups.size()) throw std::logic_error("internal error: the plan of " + entry_.name + " has a cycle");
      done[next] = true;
      addCall(out, groups[next]);
    }
    // Results no group produced: an argument passed through, or a node that is a result twice.
    for (size_t i = 0; i < entry_.outputs.size(); ++i)
      if (!result_written_.count(i)) addCopy(out, i);
    planArena(out);
    return out;
  }

  // 5. Offsets in the arena: each intermediate, largest first, at the lowest offset clear of every placed one
  // whose lifetime overlaps its own (lifetimes include both ends: a call never reads and writes one buffer).
  // Batched and fixed values are placed apart, so one plan holds for every batch size. Sizes are rounded up to
  // 16 elements, so every buffer starts 64-byte aligned.
  void planArena(EntryPlan& out) const {
    struct Slot {
      size_t value;
      int64_t size, first = -1, last = -1;
    };
    std::vector<Slot> slots[2];  // fixed, batched
    for (size_t v = 0; v < out.values.size(); ++v) {
      PlanValue& value = out.values[v];
      if (value.kind != PlanValue::Kind::Intermediate) continue;
      value.batched = isBatched(g_.node(value.node).shape);
      slots[value.batched].push_back({v, slotSize(value.node)});
    }
    for (auto& group : slots)
      for (Slot& slot : group)
        for (size_t c = 0; c < out.calls.size(); ++c)
          if (std::count(out.calls[c].values.begin(), out.calls[c].values.end(), slot.value)) {
            if (slot.first < 0) slot.first = static_cast<int64_t>(c);
            slot.last = static_cast<int64_t>(c);
          }
    for (int batched = 0; batched < 2; ++batched) {
      std::vector<Slot>& group = slots[batched];
      std::stable_sort(group.begin(), group.end(), [](const Slot& a, const Slot& b) { return a.size > b.size; });
      int64_t& end = batched ? out.arena.batched : out.arena.fixed;
      for (size_t i = 0; i < group.size(); ++i) {
        std::vector<std::pair<int64_t, int64_t>> taken;  // [offset, offset + size) of overlapping placed slots
        for (size_t j = 0; j < i; ++j)
          if (group[j].first <= group[i].last && group[i].first <= group[j].last)
            taken.emplace_back(out.values[group[j].value].offset, out.values[group[j].value].offset + group[j].size);
        std::sort(taken.begin(), taken.end());
        int64_t offset = 0;
        for (const auto& [begin, stop] : taken)
          if (offset + group[i].size <= begin) break;
          else offset = std::max(offset, stop);
        out.values[group[i].value].offset = offset;
        end = std::max(end, offset + group[i].size);
        (batched ? out.all_intermediates.batched : out.all_intermediates.fixed) += group[i].size;
      }
    }
  }

 private:
  // An intermediate's elements (per example when batched), rounded up to 16 so every buffer is 64-byte aligned.
  int64_t slotSize(NodeId id) const { return (elementCount(g_.node(id).shape, 1) + 15) / 16 * 16; }

  // 1. The anchors: non-leaf nodes whose Func the whole entry's schedule computes at root, and the results.
  void findAnchors() {
    LoweredEntry whole = lowerEntry(g_, entry_, Halide::Float(32), target_, schedule_);
    for (const auto& [id, lowered] : whole.nodes) {
      Halide::LoopLevel level = lowered.func.function().schedule().compute_level();
      level.lock();  // read-only from here: this lowering is only inspected
      if (!isLeaf(g_.node(id)) && level.is_root()) anchors_.insert(id);
    }
    for (NodeId id : entry_.outputs)
      if (!isLeaf(g_.node(id))) anchors_.insert(id);
    bias_of_ = whole.bias_in_grad_weight;
    // A bias gradient read from its weight gradient's tiles is a copy of their extra column there; anywhere else
    // it would be summed again from dy, by every group that reads it.
    for (const auto& [sum, grad_weight] : bias_of_) anchors_.insert(sum);
  }

  // 2. One group per anchor, with the non-anchor nodes it needs; a bias gradient joins its weight gradient's.
  std::vector<Group> formGroups() {
    std::map<NodeId, NodeId> joined = joinedAnchors();  // anchor -> the anchor whose group it joins
    std::map<NodeId, Group> by_anchor;
    for (NodeId anchor : anchors_) {
      NodeId owner = anchor;
      while (joined.count(owner)) owner = joined.at(owner);
      Group& group = by_anchor[owner];
      group.anchors.push_back(anchor);
      group.order = std::max(group.order == kNoNode ? anchor : group.order, anchor);
      std::set<NodeId> members(group.members.begin(), group.members.end());
      for (NodeId id : computedFor(anchor)) members.insert(id);
      group.members.assign(members.begin(), members.end());
    }
    std::vector<Group> groups;
    for (auto& [owner, group] : by_anchor) groups.push_back(std::move(group));
    mergeIntoSoleReaders(groups);
    return groups;
  }

  // A group whose values one other group alone reads joins that group, so a layer's forward (GEMM, bias,
  // activation), a gradient with the activation's derivative, or a parameter's gradient with its update is one
  // call: each call costs 1-3 us (../shared/HALIDE_NOTES.md), LeNet-5's step had 60. A merged group holds at most
  // one GEMM or convolution, so kernels stay a layer's size and identical layers still share one. The group of
  // the lowest order that can join its reader does first (so a chain merges the same way in every layer); a
  // merge can only shrink the readers of the merged group's producers, so only they are looked at again.
  void mergeIntoSoleReaders(std::vector<Group>& groups) const {
    auto heavy = [&](const std::vector<NodeId>& members) {
      return std::count_if(members.begin(), members.end(), [&](NodeId id) {
        const Node& node = g_.node(id);
        return opInfo(node.op).family == OpFamily::MatMul || isWindowSums(node);
      });
    };
    std::sort(groups.begin(), groups.end(), [](const Group& a, const Group& b) { return a.order < b.order; });
    std::map<NodeId, size_t> owner;  // anchor -> its group
    for (size_t i = 0; i < groups.size(); ++i)
      for (NodeId anchor : groups[i].anchors) owner[anchor] = i;
    std::vector<std::set<size_t>> producers(groups.size()), readers(groups.size());
    for (size_t i = 0; i < groups.size(); ++i)
      for (NodeId id : groups[i].members)
        for (NodeId in : g_.node(id).inputs)
          if (owner.count(in) && owner.at(in) != i) {
            producers[i].insert(owner.at(in));
            readers[owner.at(in)].insert(i);
          }
    std::vector<bool> merged(groups.size(), false);
    std::set<size_t> pending;  // groups in order, so the lowest first
    for (size_t i = 0; i < groups.size(); ++i) pending.insert(i);
    while (!pending.empty()) {
      size_t from = *pending.begin();
      pending.erase(pending.begin());
      if (merged[from] || readers[from].size() != 1) continue;
      size_t into = *readers[from].begin();
      if (heavy(groups[from].members) + heavy(groups[into].members) > 1) continue;
      Group& reader = groups[into];
      std::set<NodeId> members(reader.members.begin(), reader.members.end());
      members.insert(groups[from].members.begin(), groups[from].members.end());
      reader.members.assign(members.begin(), members.end());
      reader.anchors.insert(reader.anchors.end(), groups[from].anchors.begin(), groups[from].anchors.end());
      std::sort(reader.anchors.begin(), reader.anchors.end());
      reader.order = std::max(reader.order, groups[from].order);
      producers[into].erase(from);
      for (size_t producer : producers[from]) {
        readers[producer].erase(from);
        if (producer == into) continue;
        readers[producer].insert(into);
        producers[into].insert(producer);
        pending.insert(producer);
      }
      merged[from] = true;
    }
    std::vector<Group> kept;
    for (size_t i = 0; i < groups.size(); ++i)
      if (!merged[i]) kept.push_back(std::move(groups[i]));
    groups = std::move(kept);
  }

  // The nodes a group anchored at `anchor` alone would compute: the anchor and the non-anchors it needs.
  // A node the entry point takes as an argument (update takes the gradients, computed nodes elsewhere).
  bool isEntryArgument(NodeId id) const {
    return std::find(entry_.arguments.begin(), entry_.arguments.end(), id) != entry_.arguments.end();
  }

  std::vector<NodeId> computedFor(NodeId anchor) const {
    std::set<NodeId> members;
    std::vector<NodeId> stack = {anchor};
    while (!stack.empty()) {
      NodeId id = stack.back();
      stack.pop_back();
      if (!members.insert(id).second) continue;
      for (NodeId in : g_.node(id).inputs)
        if (!isLeaf(g_.node(in)) && !anchors_.count(in) && !isEntryArgument(in)) stack.push_back(in);
    }
    return {members.begin(), members.end()};
  }

  // Anchors that join another anchor's group: a bias gradient its weight gradient's (it reads the tiles' extra
  // column); window sums and pools that one other group alone reads join that group (as a result, their sums
  // would be copied out of Halide's tiled layout: LeNet-5's convolutions). Not in chains: a group that joins
  // another takes none in.
  std::map<NodeId, NodeId> joinedAnchors() const {
    std::map<NodeId, NodeId> joined;
    for (const auto& [sum, grad_weight] : bias_of_)
      if (anchors_.count(sum) && anchors_.count(grad_weight)) joined[sum] = grad_weight;
    std::map<NodeId, std::set<NodeId>> readers;  // anchor -> the anchors whose groups read it
    for (NodeId reader : anchors_)
      for (NodeId id : computedFor(reader))
        for (NodeId in : g_.node(id).inputs)
          if (anchors_.count(in) && in != reader) readers[in].insert(reader);
    std::set<NodeId> targets;
    for (const auto& [sum, grad_weight] : joined) targets.insert(grad_weight);
    // Window sums first (their copies cost most), then pools and weight gradients.
    for (bool window_sums : {true, false})
      for (NodeId anchor : anchors_) {
        const Node& node = g_.node(anchor);
        if (opInfo(node.op).family != OpFamily::Conv || isWindowSums(node) != window_sums || isResult(anchor) ||
            readers[anchor].size() != 1 || joined.count(anchor) || targets.count(anchor))
          continue;
        NodeId reader = *readers[anchor].begin();
        if (joined.count(reader)) continue;
        joined[anchor] = reader;
        targets.insert(reader);
      }
    return joined;
  }

  size_t value(EntryPlan& out, PlanValue value) {
    out.values.push_back(value);
    return current_[value.node] = out.values.size() - 1;
  }

  // 3. The group as a kernel (a new one, or the one an identical group made), and its call.
  void addCall(EntryPlan& out, const Group& group) {
    std::map<NodeId, std::string> local;  // node -> "a3" (argument) or "n5" (member)
    std::string key;
    for (size_t i = 0; i < group.arguments.size(); ++i) {
      const Node& argument = g_.node(group.arguments[i]);
      local[group.arguments[i]] = fmt::format("a{}", i);
      key += fmt::format("a{}: {} {}\n", i, argument.op == Op::Scalar ? "scalar" : "buffer", typeText(argument));
    }
    for (NodeId id : group.members) {
      std::vector<std::string> operands;
      for (NodeId in : g_.node(id).inputs) operands.push_back(local.at(in));
      local[id] = fmt::format("n{}", local.size() - group.arguments.size());
      key += fmt::format("{} = {}({}) {{{}}} : {}\n", local[id], opInfo(g_.node(id).op).name,
                         fmt::join(operands, ", "), allAttrs(g_.node(id).attrs), typeText(g_.node(id)));
    }
    std::vector<NodeId> results;
    for (NodeId anchor : group.anchors)
      if (read_across_.count(anchor) || isResult(anchor)) results.push_back(anchor);
    for (NodeId id : results) key += "result " + local.at(id) + "\n";
    std::vector<std::string> computes;
    ArenaSize inside;
    for (NodeId anchor : group.anchors) {
      computes.push_back(fmt::format("{} %{}", opInfo(g_.node(anchor).op).name, anchor));
      if (std::find(results.begin(), results.end(), anchor) == results.end())
        (isBatched(g_.node(anchor).shape) ? inside.batched : inside.fixed) += slotSize(anchor);
    }
    out.all_intermediates.batched += inside.batched;
    out.all_intermediates.fixed += inside.fixed;
    PlanCall call{kernelFor(key, group.arguments, results), {}, fmt::format("{}", fmt::join(computes, ", ")), inside};
    for (NodeId id : group.arguments) call.values.push_back(current_.at(id));
    for (NodeId id : results) call.values.push_back(resultValue(out, id));
    out.calls.push_back(std::move(call));
  }

  // A copy of a value into result `i` (an argument passed through, or a node that is a result twice).
  void addCopy(EntryPlan& out, size_t i) {
    NodeId id = entry_.outputs[i];
    std::string key = fmt::format("a0: buffer {}\nresult a0\n", typeText(g_.node(id)));
    PlanCall call{kernelFor(key, {id}, {id}), {current_.at(id)}, fmt::format("copy %{}", id), {}};
    result_written_.insert(i);
    call.values.push_back(value(out, {PlanValue::Kind::Result, i, id}));
    out.calls.push_back(std::move(call));
  }

  bool isResult(NodeId id) const {
    return std::find(entry_.outputs.begin(), entry_.outputs.end(), id) != entry_.outputs.end();
  }

  // The value a result of a call is written to: the entry's result (its first position), else an intermediate.
  size_t resultValue(EntryPlan& out, NodeId id) {
    for (size_t i = 0; i < entry_.outputs.size(); ++i)
      if (entry_.outputs[i] == id && !result_written_.count(i)) {
        result_written_.insert(i);
        return value(out, {PlanValue::Kind::Result, i, id});
      }
    return value(out, {PlanValue::Kind::Intermediate, 0, id});
  }

  size_t kernelFor(const std::string& group_key, const std::vector<NodeId>& arguments,
                   const std::vector<NodeId>& results) {
    bool autoscheduled = schedule_.policy != SchedulePolicy::Manual && schedule_.policy != SchedulePolicy::Naive;
    std::string key = group_key + "schedule=" + schedulePolicyName(schedule_.policy) +
                      (autoscheduled ? fmt::format(" batch={}", schedule_.batch_estimate) : "") + "\n";
    for (size_t k = 0; k < kernels_.size(); ++k)
      if (kernels_[k].key == key) return k;
    PlanKernel kernel{fmt::format("k{:016x}", fnv1a(key + target_.halide)), key, {}, schedule_.batch_estimate};
    kernel.entry = {kernel.name, arguments, results, {}, {}, true};
    for (size_t i = 0; i < arguments.size(); ++i) kernel.entry.argument_names.push_back(fmt::format("in{}", i));
    for (size_t i = 0; i < results.size(); ++i) kernel.entry.output_names.push_back(fmt::format("out{}", i));
    kernels_.push_back(std::move(kernel));
    return kernels_.size() - 1;
  }

  const Graph& g_;
  const EntryPoint& entry_;
  const Target& target_;
  ScheduleOptions schedule_;
  std::vector<PlanKernel>& kernels_;
  std::set<NodeId> anchors_;
  std::map<NodeId, NodeId> bias_of_;
  std::set<NodeId> read_across_;      // anchors some group reads as an argument
  std::map<NodeId, size_t> current_;  // node -> the value that holds it now
  std::set<size_t> result_written_;
};

}  // namespace

EntryPlan planEntry(const Graph& graph, const EntryPoint& entry, const Target& target,
                    const ScheduleOptions& schedule, std::vector<PlanKernel>& kernels) {
  return EntryPlanner(graph, entry, target, schedule, kernels).run();
}

// The entry points are planned in threads of their own (planning lowers and schedules each whole: 0.82 -> 0.56 s
// for a CNN of 100 residual blocks), then their kernels are made one list, an entry's identical groups sharing
// the first entry's kernel, as if planned in turn.
ProgramPlan planProgram(const Program& program, const Target& target, SchedulePolicy policy) {
  std::vector<std::future<std::pair<EntryPlan, std::vector<PlanKernel>>>> planned;
  for (const EntryPoint* entry : program.entryPoints())
    planned.push_back(std::async(std::launch::async, [&program, &target, policy, entry] {
      std::vector<PlanKernel> kernels;
      EntryPlan entry_plan =
          planEntry(program.graph, *entry, target, {policy, batchEstimate(program, *entry)}, kernels);
      return std::make_pair(std::move(entry_plan), std::move(kernels));
    }));
  ProgramPlan plan;
  for (auto& future : planned) {
    auto [entry_plan, kernels] = future.get();
    std::vector<size_t> index(kernels.size());
    for (size_t k = 0; k < kernels.size(); ++k) {
      auto same = std::find_if(plan.kernels.begin(), plan.kernels.end(),
                               [&](const PlanKernel& kernel) { return kernel.key == kernels[k].key; });
      index[k] = static_cast<size_t>(same - plan.kernels.begin());
      if (same == plan.kernels.end()) plan.kernels.push_back(std::move(kernels[k]));
    }
    for (PlanCall& call : entry_plan.calls) call.kernel = index[call.kernel];
    plan.entries.push_back(std::move(entry_plan));
  }
  return plan;
}

std::string printPlan(const Program& program, const ProgramPlan& plan) {
  const Graph& g = program.graph;
  std::vector<size_t> calls(plan.kernels.size(), 0);
  std::string out;
  for (const EntryPlan& entry : plan.entries) {
    out += fmt::format("entry {}: {} calls, arena {} * B + {} floats (without sharing {} * B + {})\n",
                       entry.entry->name, entry.calls.size(), entry.arena.batched, entry.arena.fixed,
                       entry.all_intermediates.batched, entry.all_intermediates.fixed);
    auto name = [&](size_t v) {
      const PlanValue& value = entry.values[v];
      const char* kind = value.kind == PlanValue::Kind::Argument ? "arg"
                         : value.kind == PlanValue::Kind::Result ? "result"
                                                                 : "tmp";
      std::string at = value.kind != PlanValue::Kind::Intermediate ? ""
                       : fmt::format(" @{}{}", value.offset, value.batched ? "*B" : "");
      return fmt::format("{}{}(%{} {}{})", kind, value.kind == PlanValue::Kind::Intermediate ? v : value.index,
                         value.node, typeText(g.node(value.node)), at);
    };
    for (const PlanCall& call : entry.calls) {
      ++calls[call.kernel];
      const PlanKernel& kernel = plan.kernels[call.kernel];
      std::vector<std::string> args, results;
      for (size_t i = 0; i < call.values.size(); ++i)
        (i < kernel.entry.arguments.size() ? args : results).push_back(name(call.values[i]));
      std::string inside = call.inside.elements(1) == 0 ? ""
                           : fmt::format("  (inside: {} * B + {})", call.inside.batched, call.inside.fixed);
      out += fmt::format("  {}({}) -> {}{}\n", kernel.name, fmt::join(args, ", "), fmt::join(results, ", "), inside);
    }
  }
  out += fmt::format("kernels: {}\n", plan.kernels.size());
  for (size_t k = 0; k < plan.kernels.size(); ++k)
    out += fmt::format("kernel {} ({} calls):\n{}", plan.kernels[k].name, calls[k], plan.kernels[k].key);
  return out;
}

}  // namespace nnc
