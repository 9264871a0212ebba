// Idefics3ImageProcessor (SmolVLM) on a decoded image, as transformers' PIL-based processor computes it
// (smolvlm/image_processing_smolvlm.py 00964605; models/tools/preprocess_towers.py is the reference):
//   1. resize the longest edge to splitting.longestEdge, the other side int(long / aspect), made even
//      (bounded by 4096): done as the rows arrive (stream.ts), with pixelSize below as its target;
//   2. resize both sides up to multiples of the tile (maxImageSize) (do_image_splitting, which the
//      converter requires);
//   3. cut that into rows x cols tiles, row by row, and append the whole image resized to one tile (the
//      global view, last); an image that is one tile is that tile alone (rows = cols = 0);
//   4. rescale and normalize each frame as every processor does (preprocess.ts's valueTable).
// Every resize is PIL's Image.resize on uint8 with the processor's resample (Lanczos for SmolVLM).
import type { ImageSplitting, Preprocessing } from "../bundle/format.ts";
import type { RgbImage } from "../image/source.ts";
import { type Size, valueTable } from "./preprocess.ts";
import { resize } from "./resize.ts";

// Idefics3's MAX_IMAGE_SIZE in the SmolVLM processor (idefics3's own file bounds by 1820 instead).
const MAX_IMAGE_SIZE = 4096;

// Step 1: _resize_output_size_rescale_to_max_len, then _resize_output_size_scale_below_upper_bound.
export function longestEdgeSize(image: Size, longestEdge: number): Size {
  let { height, width } = image;
  let aspect = width / height;
  if (width >= height) {
    width = longestEdge;
    height = Math.trunc(width / aspect);
    if (height % 2 !== 0) height += 1;
  } else {
    height = longestEdge;
    width = Math.trunc(height * aspect);
    if (width % 2 !== 0) width += 1;
  }
  height = Math.max(height, 1);
  width = Math.max(width, 1);
  aspect = width / height;
  if (width >= height && width > MAX_IMAGE_SIZE) {
    width = MAX_IMAGE_SIZE;
    height = Math.trunc(width / aspect);
  } else if (height > width && height > MAX_IMAGE_SIZE) {
    height = MAX_IMAGE_SIZE;
    width = Math.trunc(height * aspect);
  }
  return { height: Math.max(height, 1), width: Math.max(width, 1) };
}

// Step 2: resize_for_vision_encoder: the long side up to a multiple of the tile, the other from the aspect
// ratio, then up to a multiple too.
export function encoderSize(image: Size, tile: number): Size {
  const aspect = image.width / image.height;
  if (image.width >= image.height) {
    const width = Math.ceil(image.width / tile) * tile;
    return { height: Math.ceil(Math.trunc(width / aspect) / tile) * tile, width };
  }
  const height = Math.ceil(image.height / tile) * tile;
  return { height, width: Math.ceil(Math.trunc(height * aspect) / tile) * tile };
}

// The frames of one image: the tiles row by row, then the global view.
export interface TileGrid {
  rows: number; // 0 when the image is one tile, or the global view alone
  cols: number;
  frames: number; // rows * cols + 1, or 1
}

export function tileGrid(resized: Size, s: ImageSplitting, split: boolean): TileGrid {
  if (!split) return { rows: 0, cols: 0, frames: 1 };
  const { height, width } = encoderSize(resized, s.maxImageSize);
  if (height === s.maxImageSize && width === s.maxImageSize) return { rows: 0, cols: 0, frames: 1 };
  const rows = height / s.maxImageSize;
  const cols = width / s.maxImageSize;
  return { rows, cols, frames: rows * cols + 1 };
}

// The frames of an image after step 1 (`resized`), each written as pixel_values on demand. Holds the
// step-2 image and the global view (at most 12 MiB and 0.75 MiB for SmolVLM's 2048 and 512).
export class Tiles {
  readonly grid: TileGrid;
  private readonly tile: number;
  private readonly encoder: RgbImage; // step 2's image (the global view itself when it is one tile)
  private readonly global: RgbImage;
  private readonly lut: Float32Array;

  // split: false keeps the global view alone (the last frame of the split image).
  constructor(resized: RgbImage, pp: Preprocessing & { splitting: ImageSplitting }, split = true) {
    const s = pp.splitting;
    this.tile = s.maxImageSize;
    this.lut = valueTable(pp);
    const size = encoderSize(resized, this.tile);
    this.encoder = resize(resized, size.width, size.height, pp.resample);
    const one = size.height === this.tile && size.width === this.tile;
    this.global = one ? this.encoder : resize(this.encoder, this.tile, this.tile, pp.resample);
    this.grid = tileGrid(resized, s, split);
  }

  // Bytes the frames hold: step 2's image and the global view.
  static memoryBytes(resized: Size, s: ImageSplitting): number {
    const size = encoderSize(resized, s.maxImageSize);
    return (size.height * size.width + s.maxImageSize * s.maxImageSize) * 3;
  }

  // Frame i's pixel_values into out ([3][tile][tile]): tiles row by row, the global view last.
  write(i: number, out: Float32Array): void {
    const { rows, cols, frames } = this.grid;
    if (!(i >= 0 && i < frames)) throw new RangeError(`frame ${i} of ${frames}`);
    const t = this.tile;
    if (out.length !== 3 * t * t) throw new RangeError(`pixel_values needs 3x${t}x${t} floats, got ${out.length}`);
    const last = i === frames - 1;
    const src = last ? this.global : this.encoder;
    const top = last ? 0 : Math.floor(i / cols) * t;
    const left = last ? 0 : (i % cols) * t;
    if (!last && (top + t > this.encoder.height || left + t > this.encoder.width || rows * cols <= i)) {
      throw new RangeError(`tile ${i} lies outside the ${this.encoder.width}x${this.encoder.height} image`);
    }
    const plane = t * t;
    const lut = this.lut;
    for (let y = 0; y < t; y++) {
      let s = ((top + y) * src.width + left) * 3;
      for (let x = 0; x < t; x++, s += 3) {
        const o = y * t + x;
        out[o] = lut[src.data[s]];
        out[plane + o] = lut[256 + src.data[s + 1]];
        out[2 * plane + o] = lut[512 + src.data[s + 2]];
      }
    }
  }
}
