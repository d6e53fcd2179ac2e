"""Evaluates an ONNX model with PyTorch's operators, node by node, as ONNX's operator specs define each one: an
evaluation of `trainer export --onnx`'s models independent of nnc (Debian has no ONNX runtime).

Usage: run_with_torch.py MODEL.onnx INPUT.npy OUTPUT.npy
Covers the operators nnc's export writes (compiler/onnx/onnx_export.cpp); any other is an error.
"""
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper


def pair(values):
    return tuple(int(v) for v in values)


def run(model, x):
    graph = model.graph
    env = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in graph.initializer}
    env[graph.input[0].name] = torch.from_numpy(x)
    for node in graph.node:
        a = {attr.name: helper.get_attribute_value(attr) for attr in node.attribute}
        i = [env[name] for name in node.input]
        op = node.op_type
        unary = {"Neg": torch.neg, "Relu": torch.relu, "Exp": torch.exp, "Log": torch.log, "Sqrt": torch.sqrt,
                 "Abs": torch.abs, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "Identity": lambda t: t,
                 "Sign": torch.sign, "Erf": torch.erf, "Softplus": F.softplus}
        binary = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div, "Min": torch.minimum,
                  "Max": torch.maximum, "Pow": torch.pow}
        if op in unary:
            y = unary[op](i[0])
        elif op in binary:
            y = binary[op](i[0], i[1])
        elif op == "LeakyRelu":
            y = F.leaky_relu(i[0], a.get("alpha", 0.01))
        elif op == "Elu":
            y = F.elu(i[0], a.get("alpha", 1.0))
        elif op == "Clip":
            y = torch.clamp(i[0], i[1].item(), i[2].item())
        elif op == "Cast":
            assert a["to"] == onnx.TensorProto.FLOAT
            y = i[0].float()
        elif op == "Gemm":
            left = i[0].t() if a.get("transA", 0) else i[0]
            right = i[1].t() if a.get("transB", 0) else i[1]
            y = left @ right + (i[2] if len(i) > 2 else 0)
        elif op == "MatMul":
            y = torch.matmul(i[0], i[1])
        elif op == "Transpose":
            y = i[0].permute(*a["perm"])
        elif op == "ReduceSum":
            y = torch.sum(i[0], dim=tuple(i[1].tolist()), keepdim=bool(a.get("keepdims", 1)))
        elif op == "ReduceMean":
            y = torch.mean(i[0], dim=tuple(a["axes"]), keepdim=bool(a.get("keepdims", 1)))
        elif op == "ReduceMax":
            y = torch.amax(i[0], dim=tuple(a["axes"]), keepdim=bool(a.get("keepdims", 1)))
        elif op == "Softmax":
            y = torch.softmax(i[0], dim=a.get("axis", -1))
        elif op == "LogSoftmax":
            y = torch.log_softmax(i[0], dim=a.get("axis", -1))
        elif op == "Reshape":
            assert 0 not in i[1].tolist()  # ONNX's 0 copies an input extent: nnc writes none
            y = i[0].reshape(i[1].tolist())
        elif op == "Unsqueeze":
            y = i[0]
            for axis in sorted(i[1].tolist()):
                y = y.unsqueeze(axis)
        elif op == "Expand":
            y = i[0].expand(torch.broadcast_shapes(i[0].shape, tuple(i[1].tolist())))
        elif op == "Concat":
            y = torch.cat(i, dim=a["axis"])
        elif op == "Slice":
            y = i[0]
            for start, end, axis in zip(i[1].tolist(), i[2].tolist(), i[3].tolist()):
                y = y.narrow(axis, start, min(end, y.shape[axis]) - start)
        elif op == "Gather":
            assert a.get("axis", 0) == 0
            y = i[0][i[1].long()]
        elif op == "BatchNormalization":  # inference: running statistics
            y = F.batch_norm(i[0], i[3], i[4], i[1], i[2], training=False, eps=a.get("epsilon", 1e-5))
        elif op == "LayerNormalization":  # over the axes from `axis` on
            y = F.layer_norm(i[0], i[0].shape[a.get("axis", -1):], i[1], i[2], eps=a.get("epsilon", 1e-5))
        elif op == "Conv":
            pads = a.get("pads", [0, 0, 0, 0])
            assert pads[:2] == pads[2:], "asymmetric padding"
            y = F.conv2d(i[0], i[1], i[2] if len(i) > 2 else None, stride=pair(a.get("strides", [1, 1])),
                         padding=pair(pads[:2]), dilation=pair(a.get("dilations", [1, 1])), groups=a.get("group", 1))
        elif op in ("MaxPool", "AveragePool"):
            pads = a.get("pads", [0, 0, 0, 0])
            assert pads[:2] == pads[2:] and not a.get("ceil_mode", 0)
            kernel, stride = pair(a["kernel_shape"]), pair(a.get("strides", [1, 1]))
            if op == "MaxPool":
                y = F.max_pool2d(i[0], kernel, stride, pair(pads[:2]), pair(a.get("dilations", [1, 1])))
            else:
                y = F.avg_pool2d(i[0], kernel, stride, pair(pads[:2]), count_include_pad=bool(a["count_include_pad"]))
        else:
            sys.exit(f"run_with_torch.py: operator {op} (node {node.name}) is not covered")
        env[node.output[0]] = y
    return env[graph.output[0].name]


def main():
    model = onnx.load(sys.argv[1])
    x = np.load(sys.argv[2])
    if model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT32:
        x = x.astype(np.int32)
    with torch.no_grad():
        np.save(sys.argv[3], run(model, x).numpy())


if __name__ == "__main__":
    main()
