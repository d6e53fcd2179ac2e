// The optimizer update as graph nodes, so it is lowered and fused like the rest of the step. Formulas as
// torch.optim computes them; g is the gradient of parameter p, lr the learning rate (a runtime scalar):
//
// sgd (dampening 0), weight decay wd, momentum mu, Nesterov:
//   g' = g + wd p;  v' = mu v + g';  step = nesterov ? g' + mu v' : v';  p' = p - lr step
// rmsprop (not centered, no momentum):
//   g' = g + wd p;  s' = alpha s + (1 - alpha) g'^2;  p' = p - lr g' / (sqrt(s') + eps)
// adam:
//   g' = g + wd p;  m' = b1 m + (1 - b1) g';  v' = b2 v + (1 - b2) g'^2
//   p' = p - lr (m' / c1) / (sqrt(v' / c2) + eps),  c1 = 1 - b1^t, c2 = 1 - b2^t (runtime scalars, t from 1)
// adamw: as adam with g' = g, after the decoupled decay p <- p - lr wd p.
// With clip_grad_norm c, every g is first scaled by min(1, c / (||all gradients||_2 + 1e-6)), as
// torch.nn.utils.clip_grad_norm_ does before the optimizer step.
#include <stdexcept>

#include "compiler/graph/program.h"

namespace nnc {

namespace {

// Builds the update nodes of one optimizer for every parameter.
class UpdateBuilder {
 public:
  explicit UpdateBuilder(Program& program)
      : p_(program), g_(program.graph), opt_(program.train.optimizer) {}

  void run() {
    p_.learning_rate = scalar("lr");
    if (opt_.name == "adam" || opt_.name == "adamw") {
      bias1_ = scalar("bias_correction1");
      bias2_ = scalar("bias_correction2");
      p_.step_scalars = {bias1_, bias2_};
    }
    grads_ = p_.grads;  // the grads entry point keeps the raw gradients; clipping is part of the update
    if (p_.train.clip_grad_norm > 0) clipGradients(p_.train.clip_grad_norm);
    for (size_t i = 0; i < g_.params.size(); ++i) {
      NodeId first_new = static_cast<NodeId>(g_.nodes.size());
      p_.new_params.push_back(update(i));
      g_.markOrigin(first_new, g_.params[i].node);
    }
  }

  // Replaces each gradient by itself times min(1, c / (global norm + 1e-6)).
  void clipGradients(double c) {
    NodeId total = number(0);
    for (NodeId grad : grads_) {
      if (grad == kNoNode) continue;  // a buffer
      Attrs to_scalar;  // sum_to [] sums every element
      total = add(total, g_.add(Op::SumTo, {g_.add(Op::Square, {grad})}, to_scalar));
    }
    NodeId norm = g_.add(Op::Sqrt, {total});
    NodeId scale = g_.add(Op::Minimum, {div(number(c), add(norm, number(1e-6))), number(1)});
    for (NodeId& grad : grads_)
      if (grad != kNoNode) grad = mul(grad, scale);
  }

 private:
  NodeId scalar(const std::string& name) {
    Node node;
    node.op = Op::Scalar;
    node.name = name;
    node.attrs.index = scalars_++;
    g_.nodes.push_back(node);
    return static_cast<NodeId>(g_.nodes.size() - 1);
  }

  NodeId number(double value) { return g_.fill(value, {}); }
  NodeId add(NodeId a, NodeId b) { return g_.add(Op::Add, {a, b}); }
  NodeId mul(NodeId a, NodeId b) { return g_.add(Op::Mul, {a, b}); }
  NodeId div(NodeId a, NodeId b) { return g_.add(Op::Div, {a, b}); }

  // A zero-initialized optimizer state of parameter i's shape; `next` is its updated value.
  NodeId state(size_t i, const std::string& suffix) {
    Node node;
    node.op = Op::State;
    node.attrs.index = static_cast<int64_t>(p_.states.size());
    node.shape = g_.node(g_.params[i].node).shape;
    node.name = g_.params[i].name + "." + suffix;
    g_.nodes.push_back(node);
    NodeId id = static_cast<NodeId>(g_.nodes.size() - 1);
    p_.states.push_back({node.name, id, i});
    return id;
  }
  // beta * s + (1 - beta) x, recorded as the new value of state s.
  NodeId average(NodeId s, double beta, NodeId x) {
    NodeId next = add(mul(number(beta), s), mul(number(1 - beta), x));
    p_.new_states.push_back(next);
    return next;
  }

  NodeId update(size_t i) {
    NodeId param = g_.params[i].node;
    if (!g_.params[i].trainable) return g_.params[i].update != kNoNode ? g_.params[i].update : param;
    NodeId grad = grads_[i];
    NodeId lr = p_.learning_rate;
    bool decoupled = opt_.name == "adamw";
    if (opt_.weight_decay != 0 && !decoupled) grad = add(grad, mul(number(opt_.weight_decay), param));
    if (opt_.name == "sgd") {
      NodeId step = grad;
      if (opt_.momentum != 0) {
        NodeId v = state(i, "momentum_buffer");
        NodeId velocity = add(mul(number(opt_.momentum), v), grad);
        p_.new_states.push_back(velocity);
        step = opt_.nesterov ? add(grad, mul(number(opt_.momentum), velocity)) : velocity;
      }
      return g_.add(Op::Sub, {param, mul(lr, step)});
    }
    NodeId squared = g_.add(Op::Square, {grad});
    if (opt_.name == "rmsprop") {
      NodeId s = average(state(i, "square_avg"), opt_.alpha, squared);
      NodeId denominator = add(g_.add(Op::Sqrt, {s}), number(opt_.eps));
      return g_.add(Op::Sub, {param, mul(lr, div(grad, denominator))});
    }
    if (opt_.name == "adam" || decoupled) {
      NodeId m = average(state(i, "exp_avg"), opt_.beta1, grad);
      NodeId v = average(state(i, "exp_avg_sq"), opt_.beta2, squared);
      NodeId denominator = add(g_.add(Op::Sqrt, {div(v, bias2_)}), number(opt_.eps));
      NodeId start = decoupled ? g_.add(Op::Sub, {param, mul(lr, mul(number(opt_.weight_decay), param))}) : param;
      return g_.add(Op::Sub, {start, mul(lr, div(div(m, bias1_), denominator))});
    }
    throw std::logic_error("internal error: unknown optimizer " + opt_.name);
  }

  Program& p_;
  Graph& g_;
  const dsl::OptimizerConfig& opt_;
  NodeId bias1_ = kNoNode, bias2_ = kNoNode;
  int64_t scalars_ = 0;
  std::vector<NodeId> grads_;  // the gradients the update uses (clipped when asked)
};

}  // namespace

void appendOptimizerUpdate(Program& program) { UpdateBuilder(program).run(); }

}  // namespace nnc
