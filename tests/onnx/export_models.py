# Exports two small PyTorch models to ONNX for tests/onnx_import.sh, with inputs and PyTorch's class probabilities
# for them (the softmax of its logits in eval mode):
#   OUT/net.onnx, in.npy, expected.npy: a CNN on 5 images (`view(size(0), -1)` exports as shape arithmetic, Shape ->
#     Gather -> Concat -> Reshape, which the import folds), opset 13;
#   OUT/tokens.onnx, tokens_in.npy, tokens_expected.npy: token ids through an embedding, LayerNorm and a linear head
#     at every position (a class per position), opset 17.
# Both have a dynamic batch. Usage: /usr/bin/python3 export_models.py OUT
import sys

import numpy as np
import torch
import torch.nn as nn


class Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 8)
        self.ln = nn.LayerNorm(8)
        self.head = nn.Linear(8, 11)

    def forward(self, x):
        return self.head(torch.relu(self.ln(self.emb(x))))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, bias=False)
        self.avg = nn.AvgPool2d(2)
        self.fc1 = nn.Linear(6 * 3 * 3, 32)
        self.bn1 = nn.BatchNorm1d(32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        h = self.pool(torch.relu(self.conv1(x)))
        h = self.avg(nn.functional.leaky_relu(self.conv2(h), 0.1))
        return self.fc2(torch.tanh(self.bn1(self.fc1(h.view(h.size(0), -1)))))


out = sys.argv[1]
torch.manual_seed(0)
net = Net().eval()
with torch.no_grad():  # statistics that are not the identity, so that the import of BatchNormalization shows
    net.bn1.running_mean.uniform_(-0.5, 0.5)
    net.bn1.running_var.uniform_(0.5, 2.0)
x = torch.randn(5, 1, 28, 28)
torch.onnx.export(net, torch.zeros(2, 1, 28, 28), f"{out}/net.onnx", input_names=["x"], output_names=["logits"],
                  dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13)
np.save(f"{out}/in.npy", x.numpy())
with torch.no_grad():
    np.save(f"{out}/expected.npy", torch.softmax(net(x), dim=1).numpy())

tokens = Tokens().eval()
ids = torch.randint(0, 11, (3, 6))
torch.onnx.export(tokens, ids, f"{out}/tokens.onnx", input_names=["x"], output_names=["logits"],
                  dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17)
np.save(f"{out}/tokens_in.npy", ids.numpy().astype(np.int32))
with torch.no_grad():
    np.save(f"{out}/tokens_expected.npy", torch.softmax(tokens(ids), dim=-1).numpy())
