// `edgevit upload` refuses a bundle the Worker could not load, before anything reaches the bucket.

import { afterAll, expect, test } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkBundle, main } from "../../cli/upload.ts";
import { randomBundle, SMALL_CONFIG, twoTowerBundle } from "../worker/bundles.ts";

const dir = mkdtempSync(join(tmpdir(), "edgevit-upload-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const good = randomBundle("upload-vit", 3);
const payloadOffset = new DataView(good.buffer).getUint32(12, true);

function file(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

test("a good bundle's header comes back", () => {
  const header = checkBundle(file("good.evit", good));
  expect(header.name).toBe("upload-vit");
  expect(header.payload.length).toBe(good.length - payloadOffset);
});

test("a two-tower bundle (a text section after the payload) is checked to its end, its section's CRC too", () => {
  const clip = {
    ...SMALL_CONFIG,
    classes: 0,
    family: "clip" as const,
    preLayernorm: true,
    finalNorm: "pooled" as const,
    projection: 12,
  };
  const two = twoTowerBundle("upload-clip", 3, clip, 12);
  expect(checkBundle(file("two.evit", two)).sections?.[0].kind).toBe("clip-text");
  expect(() => checkBundle(file("two-long.evit", new Uint8Array([...two, 0])))).toThrow(/past the/);
  const damaged = two.slice();
  damaged[damaged.length - 10] ^= 1;
  expect(() => checkBundle(file("two-damaged.evit", damaged))).toThrow(/section text's CRC-32/);
});

test.each([
  ["truncated", good.slice(0, good.length - 1), /payload ended after/],
  ["one extra byte", new Uint8Array([...good, 0]), /past the/],
  [
    "a flipped payload bit",
    (() => {
      const b = good.slice();
      b[payloadOffset + 5] ^= 0x80;
      return b;
    })(),
    /CRC-32/,
  ],
  [
    "version 2",
    (() => {
      const b = good.slice();
      b[4] = 2;
      return b;
    })(),
    /version 2/,
  ],
])("refuses a bundle with %s", (_, bytes, message) => {
  expect(() => checkBundle(file("bad.evit", bytes))).toThrow(message);
});

test("exit codes: 2 for usage, 1 for a bad bundle or name (nothing is uploaded)", async () => {
  const errors: string[] = [];
  const original = console.error;
  console.error = (line: string) => void errors.push(line);
  try {
    expect(await main([])).toBe(2);
    expect(await main([file("good.evit", good), "--force"])).toBe(2);
    expect(await main([file("bad.evit", good.slice(0, 100))])).toBe(1);
    expect(await main([file("good.evit", good), "--name", "../escape"])).toBe(1);
  } finally {
    console.error = original;
  }
  expect(errors.join("\n")).toMatch(/usage: edgevit upload/);
  expect(errors.join("\n")).toMatch(/not a model name/);
});
