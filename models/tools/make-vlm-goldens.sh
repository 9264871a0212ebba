#!/usr/bin/env bash
# Regenerates test/goldens/vlm/: the tiny SmolVLM and LLaVA checkpoints (into .cache/vlm/<preset>, not
# committed), the full-size SmolVLM preprocessor_config.json, then vlm_goldens.py (float32 references on
# two photos of different aspect ratios, one of them EXIF-rotated). Run from the repository root.
set -euo pipefail

PYTHON=/usr/bin/python3 # Debian's python3-torch lives here, not in the python3 first on PATH
CACHE=.cache/vlm
OUT=test/goldens/vlm
PRESETS=(smolvlm-256m-instruct llava-1.5-projector)
PHOTOS=(coffee-progressive.jpg rocket-exif-orient6.jpg)

for preset in "${PRESETS[@]}"; do
  npx node models/tools/make-random-tower.ts --preset "$preset" --tiny --seed 1 --inputs 1 -o "$CACHE/$preset"
done
npx node models/tools/make-random-tower.ts --preset smolvlm-256m-instruct --preprocessor-only -o "$CACHE/full/smolvlm-256m-instruct"
$PYTHON models/tools/vlm_goldens.py --cache "$CACHE" --out "$OUT" --presets "${PRESETS[@]}" \
  --full-processor "$CACHE/full/smolvlm-256m-instruct/preprocessor_config.json" \
  --photos "${PHOTOS[@]/#/test/fixtures/images/}" --token-photos 1
