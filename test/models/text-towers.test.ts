// The text towers end to end against float32 PyTorch (test/goldens/text-towers/, made by
// test/tools/text_goldens.ts with models/tools/reference_towers.py): each tiny two-tower checkpoint is made
// again here (its bytes checked against the golden's hashes), converted by core/convert/ into one
// bundle with a text section, the section loaded alone into its own engine instance on every dot path, and
// its int8 text embeddings follow float32 at cosine >= 0.999, pooled where transformers pools (the legacy
// eos_token_id 2 case and the first end-of-text token); the tokenizer read from the bundle makes
// core/text's ids; zero-shot scores from the int8 image and text towers pick the reference's top label.
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { afterAll, describe, expect, test } from "vitest";
import { poolEmbedding, poolsOf } from "../../core/answers/pool.ts";
import { zeroShotScores } from "../../core/answers/zeroshot.ts";
import { BundleError, type TextSection } from "../../core/bundle/format.ts";
import { readBundle } from "../../core/bundle/reader.ts";
import { Engine } from "../../core/engine/index.ts";
import { tokenizerHeapBytes } from "../../core/engine/text.ts";
import { convertDirectory } from "../../models/convert-folder.ts";
import { loadClipTokenizer, loadSiglipTokenizer } from "../../core/text/index.ts";
import { cosine } from "../assembly/reference.ts";
import { clipFiles } from "../tools/clip_files.ts";
import { LABEL_TEXTS, TEXT_GOLDENS, goldenInputIds, textGoldenCheckpoint } from "../tools/text_goldens.ts";
import { DOT_VARIANTS, engineModules } from "./dot-variants.ts";

interface Golden {
  name: string;
  sha256: Record<string, string>;
  family: string;
  images: { imageEmbeds?: number[]; pooler: number[] }[];
  texts: { pooledAt?: number; pooler: number[]; textEmbeds?: number[] }[];
  probs: number[][]; // per image, over the texts
}

const root = new URL("../../", import.meta.url).pathname;
const scratch = mkdtempSync(join(tmpdir(), "edgevit-text-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

describe("text towers vs float32 PyTorch", () => {
  for (const c of TEXT_GOLDENS) {
    test(`${c.name}: text embeddings, pooled position, tokenizer ids, zero-shot top-1`, async () => {
      const golden: Golden = JSON.parse(readFileSync(join(root, "test/goldens/text-towers", `${c.name}.json`), "utf8"));
      const dir = textGoldenCheckpoint(c, scratch);
      for (const name of ["model.safetensors", "config.json"]) {
        expect(sha256(readFileSync(join(dir, name))), name).toBe(golden.sha256[name]);
      }
      const ids = goldenInputIds(c, dir);
      expect(sha256(new TextEncoder().encode(`${JSON.stringify(ids)}\n`)), "ids").toBe(golden.sha256.inputIds);

      const bundle = await convertDirectory(dir, { convertedAt: "2026-01-01T00:00:00Z" });
      const { header } = readBundle(bundle, crc32);
      const section = header.sections![0] as TextSection;
      expect(section.kind).toBe(c.preset.startsWith("clip") ? "clip-text" : "siglip-text");
      expect(section.config.pooling).toBe(
        c.name === "clip-vit-base-patch32" ? "argmax" : c.name === "clip-eos" ? "eos" : "last",
      );
      const bytes = bundle.subarray(section.offset, section.offset + section.length);
      const embeddings: Float32Array[][] = [];
      for (const [module, options] of DOT_VARIANTS) {
        let planned = 0;
        const text = await (await Engine.instantiate(module, options)).loadText(header, "text", bytes, {
          reserve: (plan) => {
            planned = plan.totalBytes;
          },
        });
        // the memory plan bounds the instance's wasm memory, within one 64 KiB page
        const wasm = text.memoryBytes - tokenizerHeapBytes(section);
        expect(planned).toBeGreaterThanOrEqual(wasm);
        expect(planned - wasm).toBeLessThanOrEqual(65536);
        // CLIP's goldens state the pooled position and text_embeds for every text, SigLIP's neither
        const clip = c.preset.startsWith("clip");
        for (const [i, t] of golden.texts.entries()) {
          expect(t.pooledAt !== undefined && t.textEmbeds !== undefined, `text ${i}`).toBe(clip);
        }
        const ours = ids.input_ids.map((row, i) => {
          const out = text.embedIds(row);
          const want = golden.texts[i];
          if (want.pooledAt !== undefined) expect(out.pooledAt, `text ${i}`).toBe(want.pooledAt);
          // CLIP: pooler_output, then text_embeds; SigLIP's pooler_output is after its head (our embedding)
          if (want.textEmbeds) {
            expect(cosine(out.pooler, want.pooler), `text ${i} pooler`).toBeGreaterThanOrEqual(0.999);
            expect(cosine(out.embedding, want.textEmbeds), `text ${i}`).toBeGreaterThanOrEqual(0.999);
          } else {
            expect(cosine(out.embedding, want.pooler), `text ${i}`).toBeGreaterThanOrEqual(0.999);
          }
          return out.embedding;
        });
        embeddings.push(ours);
        // the tokenizer from the bundle makes the ids of the checkpoint's own files
        const files = clipFiles();
        const reference = c.preset.startsWith("clip")
          ? loadClipTokenizer({ vocab: files.vocab, merges: files.merges, config: { pad_token: "<|endoftext|>" } })
          : loadSiglipTokenizer({ spiece: readFileSync(join(dir, "spiece.model")), config: { do_lower_case: true } });
        expect(text.tokenize(LABEL_TEXTS)).toEqual(reference.encode(LABEL_TEXTS));
      }
      // every dot path computes the same numbers
      for (const other of embeddings.slice(1)) expect(other).toEqual(embeddings[0]);

      // zero-shot: the int8 image tower's embedding against the int8 text embeddings
      const model = await (await Engine.instantiate(engineModules.baseline)).load(bundle);
      const config = model.header.config;
      const pixels = new Float32Array(new Uint8Array(readFileSync(join(dir, "inputs.f32"))).buffer);
      const size = config.channels * config.imageSize * config.imageSize;
      golden.probs.forEach((want, i) => {
        model.input().set(pixels.subarray(i * size, (i + 1) * size));
        const image = poolEmbedding(model.run(), config, poolsOf(config)[0]);
        const scores = zeroShotScores(section.kind, section.config, image, embeddings[0]);
        const top = (s: ArrayLike<number>) => Array.prototype.indexOf.call(s, Math.max(...Array.from(s)));
        expect(top(scores), `image ${i}`).toBe(top(want));
        if (section.kind === "siglip-text") {
          scores.forEach((s, j) => expect(Math.abs(s - want[j]), `image ${i} label ${j}`).toBeLessThan(0.02));
        }
      });
    });
  }

  test("a section streamed in bounded chunks loads the same instance as the whole section", async () => {
    const dir = textGoldenCheckpoint(TEXT_GOLDENS[0], scratch);
    const bundle = await convertDirectory(dir, { convertedAt: "2026-01-01T00:00:00Z" });
    const { header } = readBundle(bundle, crc32);
    const section = header.sections![0];
    const bytes = bundle.slice(section.offset, section.offset + section.length);
    // A byte stream (as an R2 body is) that hands out at most 1 MiB per pull, and a default stream of odd
    // 1,000-byte chunks.
    const byteStream = () => {
      let at = 0;
      return new ReadableStream({
        type: "bytes",
        pull(controller) {
          if (at >= bytes.length) {
            // a pending BYOB read is answered by respond(0) once closed
            controller.close();
            return controller.byobRequest?.respond(0);
          }
          controller.enqueue(bytes.slice(at, at + 2 ** 20));
          at += 2 ** 20;
        },
      }) as ReadableStream<Uint8Array>;
    };
    const chunked = () => {
      let at = 0;
      return new ReadableStream<Uint8Array>({
        pull(controller) {
          if (at >= bytes.length) return controller.close();
          controller.enqueue(bytes.slice(at, at + 1000));
          at += 1000;
        },
      });
    };
    const loads = [];
    for (const source of [bytes, byteStream(), chunked()]) {
      const text = await (await Engine.instantiate(engineModules.baseline)).loadText(header, "text", source);
      const embeddings = text.embed(LABEL_TEXTS).map((t) => t.embedding);
      // the instance's whole memory after the same texts: weights, tokenizer bytes, activations
      const memory = new Uint8Array((text as unknown as { e: { memory: WebAssembly.Memory } }).e.memory.buffer);
      expect(text.wasmBytes).toBe(memory.byteLength);
      loads.push({ embeddings, memory, largest: text.largestJsBuffer });
    }
    expect(loads.map((l) => l.largest)).toEqual([bytes.length, 64 * 1024, 1000]);
    expect(bytes.length).toBeGreaterThan(64 * 1024);
    for (const other of loads.slice(1)) {
      expect(other.embeddings).toEqual(loads[0].embeddings);
      expect(Buffer.compare(other.memory, loads[0].memory)).toBe(0);
    }
  });

  test("a damaged section is refused by its CRC-32, a cut one as truncated; the image loads alone", async () => {
    const dir = textGoldenCheckpoint(TEXT_GOLDENS[0], scratch);
    const bundle = await convertDirectory(dir, { convertedAt: "2026-01-01T00:00:00Z" });
    const { header } = readBundle(bundle, crc32);
    const section = header.sections![0] as TextSection;
    const engine = await Engine.instantiate(engineModules.baseline);
    const bytes = bundle.slice(section.offset, section.offset + section.length);
    bytes[100] ^= 1;
    await expect(engine.loadText(header, "text", bytes)).rejects.toThrow(/CRC-32/);
    await expect(engine.loadText(header, "text", bytes.subarray(0, 1000))).rejects.toThrow(BundleError);
    // the image tower from a stream that stops at its payload's end: the section bytes are never read
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled >= bundle.length) return controller.close();
        controller.enqueue(bundle.slice(pulled, pulled + 4096));
        pulled += 4096;
      },
    });
    const model = await engine.load(stream);
    expect(model.header.sections?.[0].name).toBe("text");
    expect(pulled).toBeLessThan(section.offset + 4096 * 2);
    // a whole file with a damaged section: readBundle checks every section
    const damaged = bundle.slice();
    damaged[section.offset + 100] ^= 1;
    expect(() => readBundle(damaged, crc32)).toThrow(/section text's CRC-32/);
  });
});
