#!/usr/bin/env bash
# Installs what the benchmarks and the model tools need beyond `npm install`: Debian's PyTorch, ONNX, NumPy
# and Pillow under /usr/bin/python3 (npm run bench exports the ONNX models and the float32 reference with
# them; bench:decode and bench/png.ts time Pillow). onnxruntime-web and the newest Node come from the npm
# registry on the benchmark's first run, into .cache/bench/. Run as root: `npm run bench:setup`.
set -euo pipefail

need=()
/usr/bin/python3 -c "import torch" 2>/dev/null || need+=(python3-torch)
/usr/bin/python3 -c "import onnx" 2>/dev/null || need+=(python3-onnx)
/usr/bin/python3 -c "import numpy" 2>/dev/null || need+=(python3-numpy)
/usr/bin/python3 -c "import PIL" 2>/dev/null || need+=(python3-pil)
if [ ${#need[@]} -eq 0 ]; then
  echo "bench:setup: /usr/bin/python3 has torch, onnx, numpy and PIL"
  exit 0
fi
echo "bench:setup: installing ${need[*]}"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
