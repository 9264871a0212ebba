// The shell the whole-file decoders (BMP, GIF, WebP) share: they read the file's headers when opened,
// refuse more than maxPixels before any pixel memory is spent, keep the bytes until decode, and offer
// only scale 1.

import { checkPixels } from "../limits.ts";
import type { DecodedSize, ImageDecoder, ImageHeader, RowSink } from "./source.ts";

type WholeFileFormat = "bmp" | "gif" | "webp";

// The format as a sentence writes it.
const NAMES: Record<WholeFileFormat, string> = { bmp: "BMP", gif: "GIF", webp: "WebP" };

export abstract class WholeFileDecoder<Info extends { width: number; height: number }> implements ImageDecoder {
  readonly header: ImageHeader;
  readonly info: Info;
  protected readonly bytes: Uint8Array;

  // `orientation` reads the EXIF orientation from the info once its size is accepted.
  protected constructor(
    format: WholeFileFormat,
    bytes: Uint8Array,
    info: Info,
    maxPixels: number,
    orientation: (info: Info) => number = () => 1,
  ) {
    checkPixels(info.width, info.height, maxPixels);
    this.info = info;
    this.bytes = bytes;
    this.header = { format, width: info.width, height: info.height, orientation: orientation(info), scales: [1] };
  }

  protected checkScale(scale: number): void {
    if (scale !== 1)
      throw new RangeError(`${NAMES[this.header.format as WholeFileFormat]} offers no scale ${scale}, only 1`);
  }

  abstract memoryBytes(scale: number): number;
  abstract decode(scale: number, sink: RowSink): Promise<DecodedSize>;
}
