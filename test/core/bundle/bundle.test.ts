// The .evit bundle written and read back (core/bundle/writer.ts, reader.ts), and every refusal FORMAT.md lists.
import { describe, expect, test } from "vitest";
import { crc32 } from "node:zlib";
import { BundleError, type BundleHeader, type BundleParts, type ModelConfig } from "../../../core/bundle/format.ts";
import { BundleWriter, encodeBundle, encodeHead } from "../../../core/bundle/writer.ts";
import { layout } from "../../../core/bundle/layout.ts";
import { parsePrefix, readBundle } from "../../../core/bundle/reader.ts";
import { validateHeader } from "../../../core/bundle/header.ts";
import { TINY_CONFIG, TINY_PREPROCESSING } from "./tiny.ts";

const config: ModelConfig = TINY_CONFIG;

function parts(c: ModelConfig = config): BundleParts {
  return {
    name: "tiny",
    config: c,
    preprocessing: TINY_PREPROCESSING,
    labels: Array.from({ length: c.classes }, (_, i) => `class ${i}`),
    source: {
      layout: "hf-vit",
      checkpoint: "test",
      files: {},
      dtype: "F32",
      converter: "test",
      convertedAt: "2026-01-01T00:00:00Z",
    },
  };
}

// Deterministic distinct bytes for every tensor.
function tensorsFor(c: ModelConfig): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  let seed = 1;
  for (const t of layout(c).tensors) {
    const b = new Uint8Array(t.bytes);
    for (let i = 0; i < b.length; i++) b[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    out.set(t.name, b);
  }
  return out;
}

function codeOf(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(BundleError);
    return { code: (e as BundleError).code, message: (e as BundleError).message };
  }
  throw new Error("expected a BundleError");
}

function rewriteHeader(bytes: Uint8Array, edit: (h: BundleHeader) => void): Uint8Array {
  const r = parsePrefix(bytes);
  if ("need" in r) throw new Error("short");
  const header = structuredClone(r.header);
  edit(header);
  const head = encodeHead(header);
  const out = new Uint8Array(head.length + bytes.length - r.payloadOffset);
  out.set(head);
  out.set(bytes.subarray(r.payloadOffset), head.length);
  return out;
}

describe("round trip", () => {
  test("encode -> parse -> read gives back header and every tensor at its offset", () => {
    const tensors = tensorsFor(config);
    const bytes = encodeBundle(parts(), tensors, crc32);
    expect(String.fromCharCode(...bytes.subarray(0, 4))).toBe("EVIT");
    const view = new DataView(bytes.buffer);
    expect(view.getUint32(4, true)).toBe(1);
    const p = view.getUint32(12, true);
    expect(p % 64).toBe(0);
    expect(p).toBe(Math.ceil((16 + view.getUint32(8, true)) / 64) * 64);
    const { header, payload } = readBundle(bytes, crc32);
    expect(header.config).toEqual(config);
    expect(header.labels).toEqual(["class 0", "class 1", "class 2"]);
    expect(header.quantization.scheme).toBe("w7a8");
    expect(header.payload.crc32).toBe(crc32(payload).toString(16).padStart(8, "0"));
    for (const t of header.tensors) expect(payload.subarray(t.offset, t.offset + t.bytes)).toEqual(tensors.get(t.name));
    // gaps between tensors are zero
    let gap = 0;
    for (let i = 1; i < header.tensors.length; i++) {
      const end = header.tensors[i - 1].offset + header.tensors[i - 1].bytes;
      for (let j = end; j < header.tensors[i].offset; j++) gap |= payload[j];
    }
    expect(gap).toBe(0);
  });

  test("parsePrefix asks for more bytes until the header is complete", () => {
    const bytes = encodeBundle(parts(), tensorsFor(config), crc32);
    expect(parsePrefix(bytes.subarray(0, 10))).toEqual({ need: 16 });
    const p = new DataView(bytes.buffer).getUint32(12, true);
    expect(parsePrefix(bytes.subarray(0, 16))).toEqual({ need: p });
    expect(parsePrefix(bytes.subarray(0, p - 1))).toEqual({ need: p });
    const r = parsePrefix(bytes.subarray(0, p));
    expect("header" in r && r.payloadOffset).toBe(p);
  });

  test("the streaming writer produces the same bytes as the in-memory encoder", () => {
    const tensors = tensorsFor(config);
    const whole = encodeBundle(parts(), tensors, crc32);
    const writer = new BundleWriter(parts(), crc32);
    const placeholder = writer.head();
    const chunks = [placeholder];
    for (const t of writer.plan.tensors) chunks.push(...writer.add(t.name, tensors.get(t.name)!));
    const { head } = writer.finish();
    chunks[0] = head;
    expect(Buffer.concat(chunks)).toEqual(Buffer.from(whole));
    // encodeBundle is built on the writer too; what is the writer's own: the placeholder head is the final
    // head with the payload CRC zeroed, so writing the final head over it changes nothing else
    const zeroCrc = (h: Uint8Array) =>
      new TextDecoder().decode(h).replace(/("crc32":")[0-9a-f]{8}("\},"tensors")/, (_, a, b) => `${a}00000000${b}`);
    expect(placeholder.length).toBe(writer.payloadOffset);
    expect(new TextDecoder().decode(placeholder)).toBe(zeroCrc(head));
    expect(head).not.toEqual(placeholder);
  });

  test("the writer refuses tensors out of order or of the wrong size", () => {
    const writer = new BundleWriter(parts(), crc32);
    expect(codeOf(() => writer.add("embeddings.cls_token", new Uint8Array(32))).message).toMatch(
      /embeddings.patch_embeddings.projection.weight belongs/,
    );
    expect(codeOf(() => writer.add("embeddings.patch_embeddings.projection.weight", new Uint8Array(10))).code).toBe(
      "size_mismatch",
    );
    expect(codeOf(() => writer.finish()).code).toBe("truncated");
    // nor does it start a bundle a reader would refuse
    expect(codeOf(() => new BundleWriter({ ...parts(), labels: ["a"] }, crc32)).message).toMatch(
      /1 labels for 3 classes/,
    );
    const p = parts();
    expect(
      codeOf(() => new BundleWriter({ ...p, preprocessing: { ...p.preprocessing, imageStd: [0.5, 0, 0.5] } }, crc32))
        .message,
    ).toMatch(/imageStd has a zero/);
  });
});

describe("refusals", () => {
  const good = encodeBundle(parts(), tensorsFor(config), crc32);
  const p = new DataView(good.buffer).getUint32(12, true);

  test("wrong magic", () => {
    const bytes = good.slice();
    bytes.set([0x50, 0x4b, 0x03, 0x04]); // a zip file
    const e = codeOf(() => parsePrefix(bytes));
    expect(e.code).toBe("bad_magic");
    expect(e.message).toMatch(/not an edgevit bundle.*"PK\\u0003\\u0004".*"EVIT"/);
  });

  test("unknown version", () => {
    const bytes = good.slice();
    new DataView(bytes.buffer).setUint32(4, 4, true);
    const e = codeOf(() => parsePrefix(bytes));
    expect(e.code).toBe("unsupported_version");
    expect(e.message).toMatch(/version 4; this build reads versions 1, 2 and 3/);
  });

  test("a prefix version other than the header's", () => {
    const bytes = good.slice();
    new DataView(bytes.buffer).setUint32(4, 2, true);
    const e = codeOf(() => parsePrefix(bytes));
    expect(e.code).toBe("bad_header");
    expect(e.message).toMatch(/the prefix says version 2, the header 1/);
  });

  test("malformed header JSON", () => {
    const bytes = good.slice();
    bytes[16] = 0x5b; // '{' -> '[' breaks the JSON
    const e = codeOf(() => parsePrefix(bytes));
    expect(e.code).toBe("bad_header");
    expect(e.message).toMatch(/header is not UTF-8 JSON/);
  });

  test("payload offset that does not follow from the header length", () => {
    const bytes = good.slice();
    new DataView(bytes.buffer).setUint32(12, p + 64, true);
    const e = codeOf(() => parsePrefix(bytes));
    expect(e.code).toBe("bad_header");
    expect(e.message).toMatch(new RegExp(`payload offset ${p + 64} should be ${p}`));
  });

  test("payload length other than the config implies", () => {
    const bytes = rewriteHeader(good, (h) => {
      h.payload.length += 64;
    });
    const e = codeOf(() => parsePrefix(bytes));
    expect(e.code).toBe("size_mismatch");
    expect(e.message).toMatch(/payload.length is \d+ bytes but the config \(.*\) implies \d+/);
  });

  test("tensor table not matching the layout", () => {
    const bytes = rewriteHeader(good, (h) => {
      h.tensors[4].offset += 64;
    });
    const e = codeOf(() => parsePrefix(bytes));
    expect(e.code).toBe("bad_header");
    expect(e.message).toMatch(/tensor #4 is .*embeddings.cls_token.*the layout says/);
  });

  test("labels count and config sanity", () => {
    expect(codeOf(() => validateHeader({ ...readBundle(good, crc32).header, labels: ["a"] })).message).toMatch(
      /1 labels for 3 classes/,
    );
    const header = readBundle(good, crc32).header;
    expect(codeOf(() => validateHeader({ ...header, config: { ...header.config, heads: 3 } })).message).toMatch(
      /dim 8 is not divisible by heads 3/,
    );
    expect(codeOf(() => validateHeader({ ...header, format: "onnx" })).message).toMatch(/format is "onnx"/);
  });

  test("truncated payload", () => {
    const e = codeOf(() => readBundle(good.subarray(0, good.length - 1), crc32));
    expect(e.code).toBe("truncated");
    expect(e.message).toMatch(new RegExp(`payload ended after ${good.length - p - 1} of ${good.length - p} bytes`));
    expect(codeOf(() => readBundle(good.subarray(0, 40), crc32)).code).toBe("truncated");
  });

  test("trailing bytes", () => {
    const bytes = new Uint8Array(good.length + 1);
    bytes.set(good);
    expect(codeOf(() => readBundle(bytes, crc32)).code).toBe("size_mismatch");
  });

  test("checksum mismatch", () => {
    const bytes = good.slice();
    bytes[bytes.length - 1] ^= 1;
    const e = codeOf(() => readBundle(bytes, crc32));
    expect(e.code).toBe("checksum_mismatch");
    expect(e.message).toMatch(/CRC-32 is [0-9a-f]{8}, the header says [0-9a-f]{8}/);
  });
});
