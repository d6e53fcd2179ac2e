# Writes nnc's own ONNX node tests, in the layout of ONNX's (NAME/model.onnx, NAME/test_data_set_0/input_N.pb and
# output_0.pb, expected values from NumPy), for what ONNX 1.12's tests cannot show: operators whose every ONNX test
# has double, 16-bit or string data (ReduceLogSumExp, Cast, CastLike), a Concat of two computed values (ONNX's join
# inputs, which nnc makes constants), a Pad of nothing before a pool, Gemm as `linear`, Gather as `embedding` of token
# ids, shape arithmetic on a symbolic batch, exact GELU as PyTorch exports it (with Erf), a Transpose that keeps
# the batch axis first, and a Reshape of a constant. tests/onnx_conformance.cpp runs them as it runs ONNX's.
# Usage: /usr/bin/python3 make_node_tests.py OUT_DIR   (tests/onnx/node holds its output, committed)
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out_dir = sys.argv[1]
rng = np.random.RandomState(0)


def write(name, nodes, x, y, initializers=(), batch=None):
    """Saves a test: one float input `x`, one output `y`; with `batch`, their axis 0 is that symbol."""
    shape = lambda v: [batch or v.shape[0]] + list(v.shape[1:])
    inputs = [helper.make_tensor_value_info("x", onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[x.dtype], shape(x))]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape(y))]
    graph = helper.make_graph(nodes, name, inputs, outputs, [numpy_helper.from_array(v, k) for k, v in initializers])
    model = helper.make_model(graph, producer_name="nnc-tests", opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    data = os.path.join(out_dir, name, "test_data_set_0")
    os.makedirs(data, exist_ok=True)
    onnx.save(model, os.path.join(out_dir, name, "model.onnx"))
    for file, value in (("input_0.pb", x), ("output_0.pb", y.astype(np.float32))):
        with open(os.path.join(data, file), "wb") as f:
            f.write(numpy_helper.from_array(value).SerializeToString())


x = rng.randn(3, 4, 5).astype(np.float32)
write("test_nnc_reduce_log_sum_exp", [helper.make_node("ReduceLogSumExp", ["x"], ["y"], axes=[1])], x,
      np.log(np.sum(np.exp(x), axis=1, keepdims=True)))
write("test_nnc_cast_float", [helper.make_node("Cast", ["x"], ["c"], to=TensorProto.FLOAT),
                              helper.make_node("Relu", ["c"], ["y"])], x, np.maximum(x, 0))
write("test_nnc_castlike_float", [helper.make_node("CastLike", ["x", "like"], ["y"])], x, x,
      [("like", np.zeros(1, np.float32))])
write("test_nnc_concat_computed", [helper.make_node("Relu", ["x"], ["r"]),
                                   helper.make_node("Concat", ["x", "r"], ["y"], axis=-1)],
      x, np.concatenate([x, np.maximum(x, 0)], axis=-1))
images = rng.randn(2, 3, 6, 6).astype(np.float32)
pooled = images.reshape(2, 3, 3, 2, 3, 2).mean(axis=(3, 5))
write("test_nnc_pad_nothing_pool", [helper.make_node("Pad", ["x", "pads"], ["p"], mode="constant"),
                                    helper.make_node("AveragePool", ["p"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
      images, pooled, [("pads", np.zeros(8, np.int64))])
features = rng.randn(4, 6).astype(np.float32)
weight, bias = rng.randn(3, 6).astype(np.float32), rng.randn(3).astype(np.float32)
write("test_nnc_gemm_linear", [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)], features,
      features @ weight.T + bias, [("w", weight), ("b", bias)])
# Token ids through an embedding (Gather of a table's rows), averaged over the positions, then a linear layer.
ids = rng.randint(0, 7, size=(2, 5)).astype(np.int64)
table = rng.randn(7, 4).astype(np.float32)
write("test_nnc_embedding", [helper.make_node("Gather", ["table", "x"], ["e"], axis=0),
                             helper.make_node("ReduceMean", ["e"], ["m"], axes=[1], keepdims=0),
                             helper.make_node("Gemm", ["m", "w", "b"], ["y"], transB=1)],
      ids, table[ids].mean(axis=1) @ weight[:, :4].T + bias, [("table", table), ("w", weight[:, :4].copy()), ("b", bias)])
# x.view(x.size(0), -1) on a batch of any size, as PyTorch exports it.
shape_nodes = [helper.make_node("Shape", ["x"], ["shape"]),
               helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
               helper.make_node("Unsqueeze", ["batch", "zero_axis"], ["batch1"]),
               helper.make_node("Concat", ["batch1", "minus_one"], ["target"], axis=0),
               helper.make_node("Reshape", ["x", "target"], ["y"])]
write("test_nnc_view_symbolic_batch", shape_nodes, x, x.reshape(3, 20),
      [("zero", np.array(0, np.int64)), ("zero_axis", np.array([0], np.int64)),
       ("minus_one", np.array([-1], np.int64))], batch="N")
# Exact GELU as PyTorch exports it (ONNX has no Gelu before opset 20): x * (1 + erf(x / sqrt 2)) * 0.5.
constant = lambda name, v: helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(v, np.float32)))
write("test_nnc_gelu_erf", [constant("root2", 1.4142135381698608), helper.make_node("Div", ["x", "root2"], ["d"]),
                            helper.make_node("Erf", ["d"], ["e"]), constant("one", 1.0),
                            helper.make_node("Add", ["e", "one"], ["a"]), helper.make_node("Mul", ["x", "a"], ["m"]),
                            constant("half", 0.5), helper.make_node("Mul", ["m", "half"], ["y"])],
      features, features * (1 + np.vectorize(math.erf)(features / np.sqrt(2))) * 0.5)
# A Transpose that keeps the batch axis first, as attention's heads do (perm 0, 2, 1, 3), on a symbolic batch (which a
# new batch axis cannot take: the batch axis must be axis 0).
write("test_nnc_transpose_keeps_batch", [helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 1])], x,
      x.transpose(0, 2, 1), batch="N")
# An open-ended Slice, as PyTorch exports x[:, 1:]: ends = INT64_MAX.
write("test_nnc_slice_open_end", [helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"])], features,
      features[:, 1:], [("starts", np.array([1], np.int64)), ("ends", np.array([2**63 - 1], np.int64)),
                        ("axes", np.array([1], np.int64))])
# A per-channel constant as a column [C, 1, 1] by Reshape, as nnc's own export writes a BatchNorm it cannot fuse:
# the import folds it into a param of that shape.
images = rng.randn(2, 3, 4, 5).astype(np.float32)
channel = rng.randn(3).astype(np.float32)
write("test_nnc_reshape_constant_column",
      [helper.make_node("Reshape", ["c", "column"], ["cc"]), helper.make_node("Add", ["x", "cc"], ["y"])],
      images, images + channel[:, None, None], [("c", channel), ("column", np.array([3, 1, 1], np.int64))])
