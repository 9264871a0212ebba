#!/usr/bin/env bash
# Regenerates test/goldens/towers/: the tiny checkpoint of every image-tower preset (into
# .cache/towers/<preset>, not committed), the full-size presets' preprocessor_config.json, then
# tower_goldens.py (float32 references on the photos in test/fixtures/images). Run from the repository root.
set -euo pipefail

PYTHON=/usr/bin/python3 # Debian's python3-torch lives here, not in the python3 first on PATH
CACHE=.cache/towers
OUT=test/goldens/towers
PRESETS=(clip-vit-base-patch32 clip-vit-base-patch16 clip-vision-with-projection siglip-base-patch16-224
  siglip-base-patch16-256 siglip2-base-patch16-224 dinov2-small dinov2-with-registers-small)
FULL=(clip-vit-base-patch32 clip-vision-with-projection siglip-base-patch16-224 siglip-base-patch16-384
  siglip2-base-patch16-224 dinov2-base)
PHOTOS=(astronaut-444.jpg coffee-progressive.jpg cat-baseline-420.jpg camera-grayscale.jpg
  rocket-exif-orient6.jpg retina-restart-markers.jpg hubble-cmyk.jpg cat.png)

for preset in "${PRESETS[@]}"; do
  npx node models/tools/make-random-tower.ts --preset "$preset" --tiny --seed 1 --inputs 1 -o "$CACHE/$preset"
done
full=()
for preset in "${FULL[@]}"; do
  npx node models/tools/make-random-tower.ts --preset "$preset" --preprocessor-only -o "$CACHE/full/$preset"
  full+=("$preset=$CACHE/full/$preset/preprocessor_config.json")
done
$PYTHON models/tools/tower_goldens.py --cache "$CACHE" --out "$OUT" --presets "${PRESETS[@]}" \
  --full-processors "${full[@]}" --photos "${PHOTOS[@]/#/test/fixtures/images/}"
