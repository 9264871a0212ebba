// PNG metadata chunks as Pillow 9.4's PngStream reads them: the text chunks (tEXt, zTXt, iTXt) whose keys
// hold an orientation for exif_transpose ("exif", "Raw profile type exif", "XML:com.adobe.xmp"), the eXIf
// chunk, and the APNG chunks' checks. Every compressed text chunk is inflated as Pillow inflates it, because
// Pillow refuses a file whose text inflates past 1 MB a chunk or 64 MB in all, or a zTXt of an unknown
// compression method; these are the refusals, with a sentence, Pillow raises while reading chunks.

import { EdgevitError } from "../../errors.ts";
import { type ImageMetadata, metadataOrientation } from "../exif.ts";
import { inflateZlib } from "./inflate.ts";

// PngImagePlugin's MAX_TEXT_CHUNK and MAX_TEXT_MEMORY.
const MAX_TEXT_CHUNK = 1024 * 1024;
const MAX_TEXT_MEMORY = 64 * MAX_TEXT_CHUNK;

const KEYS: Record<string, keyof ImageMetadata> = {
  exif: "exif",
  "Raw profile type exif": "rawExif",
  "XML:com.adobe.xmp": "xmp",
};

function refuse(what: string): EdgevitError {
  return new EdgevitError("invalid_image", `The PNG is corrupt: ${what}.`);
}

const latin1 = (b: Uint8Array) => {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
};
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

// What the chunks read so far hold: the metadata (later chunks win, as in Pillow's info dict) and the APNG
// state its checks need.
export class PngMetadata {
  meta: ImageMetadata = {};
  private textBytes = 0;
  frames: number | null = null; // acTL's frame count, null without a valid one
  sequence: number | null = null; // the last fcTL or fdAT sequence number
  frameBeforeImage = false; // an fcTL came before the image data
  animated = false; // Pillow takes the image as animated (known at the image data), which stops its
  // reading of the chunks after the image data at the next frame
  private before: ImageMetadata | null = null; // the metadata before the image data

  private readonly width: number;
  private readonly height: number;

  constructor(width: number, height: number) {
    this.width = width;
    this.height = height;
  }

  // At the first image data chunk.
  imageStarts(): void {
    this.animated = this.frames !== null && this.frames + (this.frameBeforeImage ? 0 : 1) > 1;
    this.before = { ...this.meta };
  }

  // The orientation exif_transpose applies: getexif() reads the chunks before the image data when they
  // give an EXIF block, else it loads the image, and the chunks after the image data count too.
  orientation(): number {
    const before = this.before ?? this.meta;
    return metadataOrientation(before.exif !== undefined ? before : this.meta, "PNG");
  }

  // One chunk's data; `afterImage` for the chunks after the image data. Returns false for an fcTL that ends
  // Pillow's reading (an animated file's next frame).
  read(name: string, data: Uint8Array, afterImage: boolean): boolean {
    switch (name) {
      case "eXIf": {
        const block = new Uint8Array(6 + data.length);
        block.set([0x45, 0x78, 0x69, 0x66, 0, 0]);
        block.set(data, 6);
        this.meta.exif = block;
        return true;
      }
      case "tEXt": {
        const zero = data.indexOf(0);
        const key = latin1(zero < 0 ? data : data.subarray(0, zero));
        const value = zero < 0 ? new Uint8Array(0) : data.subarray(zero + 1);
        if (key) this.store(key, key === "exif" ? value.slice() : latin1(value), value.length);
        return true;
      }
      case "zTXt": {
        const zero = data.indexOf(0);
        const key = latin1(zero < 0 ? data : data.subarray(0, zero));
        const rest = zero < 0 ? new Uint8Array(0) : data.subarray(zero + 1);
        const method = rest.length ? rest[0] : 0;
        if (method !== 0) throw refuse(`its zTXt chunk uses an unknown compression method ${method}`);
        const text = this.inflate(rest.subarray(1));
        if (key)
          this.store(key, latin1(text === "error" ? new Uint8Array(0) : text), text === "error" ? 0 : text.length);
        return true;
      }
      case "iTXt": {
        this.readInternational(data);
        return true;
      }
      case "acTL":
        if (data.length < 8) throw refuse("its acTL chunk is truncated");
        if (this.frames !== null) this.frames = null;
        else {
          const n = u32(data, 0);
          if (n !== 0 && n <= 0x80000000) this.frames = n;
        }
        return true;
      case "fcTL": {
        if (afterImage && this.animated) return false;
        if (data.length < 26) throw refuse("its fcTL chunk is truncated");
        this.nextSequence(u32(data, 0), this.sequence === null);
        const [w, h, x, y] = [u32(data, 4), u32(data, 8), u32(data, 12), u32(data, 16)];
        if (x + w > this.width || y + h > this.height) throw refuse("an animation frame reaches past the image");
        if (!afterImage) this.frameBeforeImage = true;
        return true;
      }
      case "fdAT":
        if (data.length < 4) throw refuse("its fdAT chunk is truncated");
        this.nextSequence(u32(data, 0), false);
        return true;
      default:
        return true;
    }
  }

  private nextSequence(seq: number, first: boolean): void {
    const expected = this.sequence === null ? (first ? 0 : -1) : this.sequence + 1;
    if (seq !== expected) throw refuse("its animation chunks are out of sequence");
    this.sequence = seq;
  }

  private readInternational(data: Uint8Array): void {
    const zero = data.indexOf(0);
    if (zero < 0 || data.length - zero - 1 < 2) return;
    const key = latin1(data.subarray(0, zero));
    const compressed = data[zero + 1];
    const method = data[zero + 2];
    const rest = data.subarray(zero + 3);
    const a = rest.indexOf(0);
    const b = a < 0 ? -1 : rest.indexOf(0, a + 1);
    if (b < 0) return; // Pillow ignores the chunk
    let value: Uint8Array = rest.subarray(b + 1);
    if (compressed) {
      if (method !== 0) return;
      const text = this.inflate(value);
      if (text === "error") return;
      value = text;
    }
    let text: string;
    try {
      utf8.decode(rest.subarray(0, a));
      utf8.decode(rest.subarray(a + 1, b));
      text = utf8.decode(value);
    } catch {
      return;
    }
    this.store(key, text, text.length);
  }

  private inflate(data: Uint8Array): Uint8Array | "error" {
    const text = inflateZlib(data, MAX_TEXT_CHUNK);
    if (text === "over") throw refuse("a compressed text chunk inflates to more than 1 MB");
    return text;
  }

  private store(key: string, value: Uint8Array | string, size: number): void {
    this.textBytes += size;
    if (this.textBytes > MAX_TEXT_MEMORY) throw refuse("its text chunks hold more than 64 MB");
    const field = KEYS[key];
    if (field === "exif") this.meta.exif = value;
    else if (field !== undefined) this.meta[field] = typeof value === "string" ? value : latin1(value);
  }
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}
