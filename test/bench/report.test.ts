// The end-to-end benchmark's arithmetic and its BENCHMARKS.md editing.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { alignTables, writeSection } from "../../bench/report.ts";
import { cosine, forwardMacs, maxAbsDiff, summarize } from "../../bench/stats.ts";

describe("forwardMacs", () => {
  test("ViT-B/16 at 224 with 1000 classes, counted by hand", () => {
    // patches 196, tokens 197
    const projection = 196 * (3 * 16 * 16) * 768; // 115,605,504
    const attention = 197 * 4 * 768 * 768 + 2 * 197 * 197 * 768; // Q, K, V, output; Q K^T and P V
    const mlp = 197 * 2 * 768 * 3072;
    const head = 768 * 1000;
    const expected = projection + 12 * (attention + mlp) + head;
    expect(expected).toBe(17_563_828_224);
    const shape = {
      channels: 3,
      imageSize: 224,
      patch: 16,
      dim: 768,
      hidden: 3072,
      layers: 12,
      classes: 1000,
      distilled: false,
    };
    expect(forwardMacs(shape)).toBe(expected);
  });

  test("a distilled model has one more token and a second head", () => {
    const s = { channels: 3, imageSize: 32, patch: 16, dim: 8, hidden: 16, layers: 1, classes: 5, distilled: true };
    // patches 4, tokens 6
    const expected = 4 * 3 * 256 * 8 + (6 * 4 * 64 + 2 * 36 * 8) + 6 * 2 * 8 * 16 + 2 * 8 * 5;
    expect(forwardMacs(s)).toBe(expected);
  });

  test("CLIP B/32: a class token, no classifier, the projection", () => {
    // patches 49, tokens 50
    const projection = 49 * (3 * 32 * 32) * 768;
    const attention = 50 * 4 * 768 * 768 + 2 * 50 * 50 * 768;
    const mlp = 50 * 2 * 768 * 3072;
    const expected = projection + 12 * (attention + mlp) + 768 * 512;
    expect(expected).toBe(4_408_811_520);
    const shape = { ...BASE, patch: 32, classes: 0, projection: 512 };
    expect(forwardMacs(shape)).toBe(expected);
  });

  test("SigLIP B/16: no class token, the attention pooling head", () => {
    // patches = tokens = 196; the head: the probe's query, K and V of every token, the probe's scores and
    // context, out_proj, the MLP
    const layers = 12 * (196 * 4 * 768 * 768 + 2 * 196 * 196 * 768 + 196 * 2 * 768 * 3072);
    const head = 768 * 768 + 2 * 196 * 768 * 768 + 2 * 196 * 768 + 768 * 768 + 2 * 768 * 3072;
    const shape = { ...BASE, classes: 0, classToken: false, pooling: "map" as const };
    expect(forwardMacs(shape)).toBe(196 * 768 * 768 + layers + head);
  });

  test("DINOv2-B at 224: patch 14, the class token and registers", () => {
    // patches 256, tokens 257 (+ 4 registers: 261)
    const macs = (tokens: number) =>
      256 * 3 * 14 * 14 * 768 + 12 * (tokens * 4 * 768 * 768 + 2 * tokens * tokens * 768 + tokens * 2 * 768 * 3072);
    expect(forwardMacs({ ...BASE, patch: 14, classes: 0 })).toBe(macs(257));
    expect(forwardMacs({ ...BASE, patch: 14, classes: 0, registerTokens: 4 })).toBe(macs(261));
  });
});

const BASE = {
  channels: 3,
  imageSize: 224,
  patch: 16,
  dim: 768,
  hidden: 3072,
  layers: 12,
  classes: 1000,
  distilled: false,
};

describe("summaries", () => {
  test("median of odd and even counts, min and max", () => {
    expect(summarize([5, 1, 3])).toEqual({ median: 3, min: 1, max: 5, count: 3 });
    expect(summarize([4, 1, 3, 10])).toEqual({ median: 3.5, min: 1, max: 10, count: 4 });
    expect(() => summarize([])).toThrow();
  });

  test("cosine and max |diff|", () => {
    expect(cosine([1, 0], [0, 1])).toBe(0);
    expect(cosine([1, 2, 3], [2, 4, 6])).toBeCloseTo(1, 12);
    expect(cosine([1, 1], [1, 0])).toBeCloseTo(Math.SQRT1_2, 12);
    expect(maxAbsDiff([1, -2, 3], [1.5, -2, 0])).toBe(3);
    expect(() => cosine([1], [1, 2])).toThrow();
  });
});

describe("writeSection", () => {
  const dir = mkdtempSync(join(tmpdir(), "bench-report-"));

  test("replaces only its own section", () => {
    const path = join(dir, "middle.md");
    writeFileSync(path, "# Benchmarks\n\n## Kernels\n\nk\n\n## End to end\n\nold\n\n## Accuracy\n\na\n");
    writeSection(path, "End to end", "new\n");
    expect(readFileSync(path, "utf8")).toBe(
      "# Benchmarks\n\n## Kernels\n\nk\n\n## End to end\n\nnew\n\n## Accuracy\n\na\n",
    );
  });

  test("appends the section to a file without it, and creates a missing file", () => {
    const path = join(dir, "append.md");
    writeFileSync(path, "# Benchmarks\n\n## Kernels\n\nk\n");
    writeSection(path, "End to end", "body\n");
    expect(readFileSync(path, "utf8")).toBe("# Benchmarks\n\n## Kernels\n\nk\n\n## End to end\n\nbody\n");
    const fresh = join(dir, "fresh.md");
    writeSection(fresh, "End to end", "one\n");
    writeSection(fresh, "End to end", "two\n");
    expect(readFileSync(fresh, "utf8")).toBe("# Benchmarks\n\n## End to end\n\ntwo\n");
  });
});

describe("alignTables", () => {
  test("pads each column to its widest cell, right-aligned columns on the left", () => {
    const text = [
      "before | not a table",
      "",
      "| model | median ms |",
      "| --- | ---: |",
      "| vit-b16 | 242.2 |",
      "| deit-tiny | 25.4 |",
      "",
      "after",
    ].join("\n");
    expect(alignTables(text)).toBe(
      [
        "before | not a table",
        "",
        "| model     | median ms |",
        "| --------- | --------: |",
        "| vit-b16   |     242.2 |",
        "| deit-tiny |      25.4 |",
        "",
        "after",
      ].join("\n"),
    );
  });

  test("leaves aligned tables and lines that only look like rows as they are", () => {
    const aligned = "| a   |   b |\n| --- | --: |\n| xyz |   1 |";
    expect(alignTables(aligned)).toBe("| a   |   b |\n| --- | --: |\n| xyz |   1 |");
    expect(alignTables("| lone | row |\ntext")).toBe("| lone | row |\ntext");
  });

  test("keeps the delimiter's colons (left, centre, right) and a cell's escaped pipes", () => {
    expect(alignTables("| left | mid | n |\n| :--- | :---: | ---: |\n| a | b | 1 |")).toBe(
      "| left | mid |   n |\n| :--- | :-: | --: |\n| a    |  b  |   1 |",
    );
    expect(alignTables("| max\\|x\\| | n |\n| --- | --- |\n| 1 | 2 |")).toBe(
      "| max\\|x\\| | n   |\n| -------- | --- |\n| 1        | 2   |",
    );
  });
});
