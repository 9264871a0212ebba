// Idefics3ImageProcessor (SmolVLM) on a decoded image, as transformers' PIL-based processor computes it
// (smolvlm/image_processing_smolvlm.py 00964605; models/tools/preprocess_towers.py is the reference):
//   1. resize the longest edge to splitting.longestEdge, the other side int(long / aspect), made even
//      (bounded by 4096): done as the rows arrive (stream.ts), with pixelSize below as its target;
//   2. resize both sides up to multiples of the tile (maxImageSize) (do_image_splitting, which the
//      converter requires): made a row of tiles at a time, as the frames are written (Tiles);
//   3. cut that into rows x cols tiles, row by row, and append the whole image resized to one tile (the
//      global view, last, from step 2's rows as they are made); an image that is one tile is that tile
//      alone (rows = cols = 0);
//   4. rescale and normalize each frame as every processor does (preprocess.ts's valueTable).
// Every resize is PIL's Image.resize on uint8 with the processor's resample (Lanczos for SmolVLM).
import type { ImageSplitting, Preprocessing } from "../bundle/format.ts";
import type { RgbImage } from "../image/source.ts";
import { type Size, valueTable } from "./preprocess.ts";
import { RowResize, rowResizePlan } from "./resize.ts";

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

// The frames of an image after step 1 (`resized`), written as pixel_values in order: the tiles row by row,
// then the global view. Step 2's image is never whole: its rows are made one row of tiles (a band) at a
// time from step 1's image (RowResize, PIL's resize as rows stream), each row also streamed into the
// global view's resize, so what is held beside step 1's image is a band (at most 3 MiB for SmolVLM's
// 2048 and 512), the rings of the two resizes and the global view (0.75 MiB). When step 1's image is whole
// tiles already (a 4:3 photo: 2048x1536), step 2 is step 1's image itself and the tiles are read from it:
// no band.
export class Tiles {
  readonly grid: TileGrid;
  private readonly tile: number;
  private readonly source: RgbImage; // step 1's image
  private readonly encoder: Size; // step 2's size
  private readonly toEncoder: RowResize; // step 1's rows -> step 2's rows
  private readonly toGlobal: RowResize; // step 2's rows -> the global view's
  // [bandRows][encoder.width][3]: step 2's row y in row y % bandRows; a band and the rows the push that
  // completes it makes beyond it
  private readonly band: Uint8Array | null;
  private readonly bandRows: number;
  private readonly same: boolean; // step 2's size is step 1's: tiles read straight from it
  private readonly global: Uint8Array; // [tile][tile][3]
  private readonly lut: Float32Array;
  private pushed = 0; // step 1's rows pushed into toEncoder
  private made = 0; // step 2's rows made
  private next = 0; // the frame write() expects

  // split: false makes the global view alone (the last frame of the split image).
  constructor(resized: RgbImage, pp: Preprocessing & { splitting: ImageSplitting }, split = true) {
    const t = pp.splitting.maxImageSize;
    this.tile = t;
    this.lut = valueTable(pp);
    this.source = resized;
    this.grid = tileGrid(resized, pp.splitting, split);
    const size = encoderSize(resized, t);
    this.encoder = size;
    const { toEncoder, toGlobal, bandRows, same } = Tiles.plan(resized, t, pp.resample);
    this.bandRows = bandRows;
    this.same = same;
    this.band = this.grid.rows > 0 && !same ? new Uint8Array(bandRows * size.width * 3) : null;
    this.global = new Uint8Array(t * t * 3);
    const stride = size.width * 3;
    this.toGlobal = new RowResize(toGlobal, (row, y) => this.global.set(row, y * t * 3));
    this.toEncoder = new RowResize(toEncoder, (row, y) => {
      this.band?.set(row, (y % bandRows) * stride);
      this.toGlobal.push(row, y);
      this.made = y + 1;
    });
  }

  // The two resizes, and the band's rows: a band and the rows the push that completes it makes beyond it.
  private static plan(resized: Size, t: number, resample: number) {
    const size = encoderSize(resized, t);
    const toEncoder = rowResizePlan(resized.width, resized.height, size.width, size.height, resample);
    const toGlobal = rowResizePlan(size.width, size.height, t, t, resample);
    const same = size.width === resized.width && size.height === resized.height;
    return { size, toEncoder, toGlobal, bandRows: t + toEncoder.burst - 1, same };
  }

  // The most bytes the frames hold beside step 1's image: the band (none when step 1's image is whole tiles
  // or only the global view is made), the global view, the two resizes, the value table.
  static memoryBytes(resized: Size, s: ImageSplitting, resample: number, split = true): number {
    const t = s.maxImageSize;
    const { size, toEncoder, toGlobal, bandRows, same } = Tiles.plan(resized, t, resample);
    const band = tileGrid(resized, s, split).rows > 0 && !same ? bandRows * size.width * 3 : 0;
    return band + t * t * 3 + toEncoder.bytes + toGlobal.bytes + 3 * 256 * 4;
  }

  // Step 2's rows up to `rows` (all of them: the global view complete).
  private makeRows(rows: number): void {
    const { width, height, data } = this.source;
    while (this.made < rows && this.pushed < height) {
      this.toEncoder.push(data, this.pushed, this.pushed * width * 3);
      this.pushed++;
    }
  }

  // Frame i's pixel_values into out ([3][tile][tile]). Frames are made in order, each once (0, 1, ...,
  // frames - 1): a band of step 2's image is kept only until its tiles are written.
  write(i: number, out: Float32Array): void {
    const { cols, frames } = this.grid;
    if (i !== this.next)
      throw new RangeError(`frame ${i} asked for; the frames are written in order, ${this.next} next`);
    const t = this.tile;
    if (out.length !== 3 * t * t) throw new RangeError(`pixel_values needs 3x${t}x${t} floats, got ${out.length}`);
    this.next++;
    const last = i === frames - 1;
    const top = last ? 0 : Math.floor(i / cols) * t;
    const left = last ? 0 : (i % cols) * t;
    this.makeRows(last ? this.encoder.height : top + t);
    const plane = t * t;
    const lut = this.lut;
    const src = last ? this.global : this.same ? this.source.data : this.band!;
    const width = last ? t : this.encoder.width;
    for (let y = 0; y < t; y++) {
      const row = last ? y : this.same ? top + y : (top + y) % this.bandRows;
      let s = (row * width + left) * 3;
      for (let x = 0; x < t; x++, s += 3) {
        const o = y * t + x;
        out[o] = lut[src[s]];
        out[plane + o] = lut[256 + src[s + 1]];
        out[2 * plane + o] = lut[512 + src[s + 2]];
      }
    }
  }
}
