# The start the ONNX scripts share (sourced by onnx_import.sh and onnx_export.sh, whose arguments are NNC
# SOURCE_DIR WORK_DIR TENSOR_DIFF): an empty WORK_DIR as the current directory, `fail`, and Debian's python3 with
# torch and python3-onnx (the python3 on PATH may lack them), else a skip (exit 77).
set -euo pipefail
nnc=$1 src=$2 work=$3 tensor_diff=$4
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
python=/usr/bin/python3
if ! "$python" -c "import torch, onnx" 2> /dev/null; then
  echo "SKIP: $python has no torch or onnx"
  exit 77
fi
