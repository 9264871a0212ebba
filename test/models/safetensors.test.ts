import { afterAll, describe, expect, test } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SafetensorsFile, decode, encodeSafetensors } from "../../models/safetensors.ts";

const dir = mkdtempSync(join(tmpdir(), "edgevit-st-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const u16le = (...v: number[]) => new Uint8Array(new Uint16Array(v).buffer);

describe("decode", () => {
  test("F16 bit patterns", () => {
    // 1, -2, nearest half to 1/3, smallest subnormal 2^-24, largest finite, +inf, -0
    const got = decode("F16", u16le(0x3c00, 0xc000, 0x3555, 0x0001, 0x7bff, 0x7c00, 0x8000));
    expect(Array.from(got)).toEqual([1, -2, 0.333251953125, 2 ** -24, 65504, Infinity, -0]);
    expect(Number.isNaN(decode("F16", u16le(0x7e00))[0])).toBe(true);
  });

  test("BF16 is the top half of an f32", () => {
    // 0x3f80 = 1, 0xc040 = -3, 0x3eab = 0x3eab0000 = 0.333984375, 0x4049 = 3.140625
    expect(Array.from(decode("BF16", u16le(0x3f80, 0xc040, 0x3eab, 0x4049)))).toEqual([1, -3, 0.333984375, 3.140625]);
  });

  test("F32 little-endian", () => {
    // 0x3fc00000 = 1.5, 0xbe800000 = -0.25
    const bytes = new Uint8Array([0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x80, 0xbe]);
    expect(Array.from(decode("F32", bytes))).toEqual([1.5, -0.25]);
    // an unaligned view decodes the same
    const shifted = new Uint8Array(9);
    shifted.set(bytes, 1);
    expect(Array.from(decode("F32", shifted.subarray(1)))).toEqual([1.5, -0.25]);
  });
});

describe("SafetensorsFile", () => {
  const file = join(dir, "model.safetensors");
  writeFileSync(
    file,
    encodeSafetensors(
      {
        a: { dtype: "F32", shape: [2, 1], data: new Uint8Array([0, 0, 0xc0, 0x3f, 0, 0, 0x80, 0xbe]) },
        b: { dtype: "F16", shape: [3], data: u16le(0x3c00, 0xc000, 0x3555) },
        c: { dtype: "BF16", shape: [1, 2], data: u16le(0x3f80, 0x4049) },
      },
      { format: "pt" },
    ),
  );

  test("reads the header, then each tensor by offset", async () => {
    const st = await SafetensorsFile.open(file);
    try {
      expect([...st.tensors.keys()]).toEqual(["a", "b", "c"]);
      expect(st.metadata).toEqual({ format: "pt" });
      expect(st.info("b")).toMatchObject({ dtype: "F16", shape: [3] });
      expect(Array.from(await st.read("c"))).toEqual([1, 3.140625]);
      expect(Array.from(await st.read("a"))).toEqual([1.5, -0.25]);
      expect(Array.from(await st.read("b"))).toEqual([1, -2, 0.333251953125]);
      await expect(st.read("d")).rejects.toThrow(/no tensor d/);
    } finally {
      await st.close();
    }
  });

  test("data starts on an 8-byte boundary, as the reference writer pads it", () => {
    const bytes = encodeSafetensors({ x: { dtype: "F32", shape: [1], data: new Uint8Array(4) } });
    expect(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8).toBe(0);
  });

  test("refuses a truncated file, an unknown dtype and a size that does not match the shape", async () => {
    const whole = encodeSafetensors({ x: { dtype: "F32", shape: [4], data: new Uint8Array(16) } });
    writeFileSync(join(dir, "short.safetensors"), whole.subarray(0, whole.length - 4));
    await expect(SafetensorsFile.open(join(dir, "short.safetensors"))).rejects.toThrow(
      /past the end of the \d+-byte file \(truncated\?\)/,
    );

    const f8 = new TextEncoder().encode(JSON.stringify({ x: { dtype: "F8_E4M3", shape: [1], data_offsets: [0, 1] } }));
    const bad = new Uint8Array(8 + f8.length + 1);
    new DataView(bad.buffer).setBigUint64(0, BigInt(f8.length), true);
    bad.set(f8, 8);
    writeFileSync(join(dir, "f8.safetensors"), bad);
    await expect(SafetensorsFile.open(join(dir, "f8.safetensors"))).rejects.toThrow(
      /dtype "F8_E4M3"; only F32, F16 and BF16/,
    );

    // integer buffers (openai's CLIP position_ids) are listed, never read as weights
    const ids = new TextEncoder().encode(
      JSON.stringify({ ids: { dtype: "I64", shape: [1, 2], data_offsets: [0, 16] } }),
    );
    const withIds = new Uint8Array(8 + ids.length + 16);
    new DataView(withIds.buffer).setBigUint64(0, BigInt(ids.length), true);
    withIds.set(ids, 8);
    writeFileSync(join(dir, "ids.safetensors"), withIds);
    const file = await SafetensorsFile.open(join(dir, "ids.safetensors"));
    expect(file.info("ids")).toMatchObject({ dtype: "I64", shape: [1, 2] });
    await expect(file.read("ids")).rejects.toThrow(/tensor ids is I64, not a float tensor/);
    await file.close();

    const wrong = new TextEncoder().encode(JSON.stringify({ x: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }));
    const w = new Uint8Array(8 + wrong.length + 4);
    new DataView(w.buffer).setBigUint64(0, BigInt(wrong.length), true);
    w.set(wrong, 8);
    writeFileSync(join(dir, "wrong.safetensors"), w);
    await expect(SafetensorsFile.open(join(dir, "wrong.safetensors"))).rejects.toThrow(
      /4 bytes for F32 shape \[2\] \(expected 8\)/,
    );

    writeFileSync(join(dir, "huge.safetensors"), new Uint8Array([255, 255, 255, 255, 0, 0, 0, 0, 0]));
    await expect(SafetensorsFile.open(join(dir, "huge.safetensors"))).rejects.toThrow(
      /header length 4294967295 does not fit/,
    );
  });
});
