#!/usr/bin/env bash
# Regenerates every golden in test/goldens/: random checkpoints from make-random-vit.ts (into
# .cache/models/<name>, not committed), float32 outputs from reference.py, and the torchvision
# cross-check of each checkpoint. Run from the repository root:
#
#   models/tools/make-goldens.sh            # all goldens
#   models/tools/make-goldens.sh tiny-odd   # only the named ones
set -euo pipefail

PYTHON=/usr/bin/python3 # Debian's python3-torch lives here, not in the python3 first on PATH
CACHE=.cache/models
GOLDENS=test/goldens

# name preset layout dtype seed inputs reference-flags
GOLDEN_SPECS=(
  "tiny                 tiny      hf-vit            F32  1 4  --hidden-states --attentions"
  "tiny-odd             tiny-odd  hf-vit            F32  2 4  --hidden-states --attentions"
  "tiny-deit-distilled  tiny      hf-deit-distilled F32  3 4  --hidden-states --attentions"
  "tiny-timm            tiny      timm              F32  4 4  --hidden-states"
  "tiny-timm-distilled  tiny-odd  timm-distilled    F32  5 4  --hidden-states"
  "tiny-f16             tiny      hf-vit            F16  6 2  --hidden-states"
  "tiny-bf16            tiny      hf-vit            BF16 7 2  --hidden-states"
  "deit-tiny-distilled  deit-tiny hf-deit-distilled F32  8 4"
  "vit-b16              vit-b16   hf-vit            F32  9 12"
)

for spec in "${GOLDEN_SPECS[@]}"; do
  read -r name preset layout dtype seed inputs flags <<<"$spec"
  if [[ $# -gt 0 && " $* " != *" $name "* ]]; then continue; fi
  make="npx node models/tools/make-random-vit.ts --preset $preset --layout $layout --dtype $dtype --seed $seed --inputs $inputs --out $CACHE/$name"
  $make
  mkdir -p "$GOLDENS/$name"
  $PYTHON models/tools/reference.py "$CACHE/$name" "$CACHE/$name/inputs.f32" -o "$GOLDENS/$name/reference.json" \
    --name "$name" --command "$make" $flags
  $PYTHON models/tools/crosscheck_torchvision.py "$CACHE/$name" "$CACHE/$name/inputs.f32" --count 4
done
