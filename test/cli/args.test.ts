// The command line's manners: --help on every subcommand, --version from package.json, one error shape
// for usage errors (exit 2) and failures (exit 1), the converter refusing other architectures by name, and
// wrangler.toml read by wrangler's own parser.

import { afterAll, describe, expect, test } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bucketOf, readWranglerConfig, stringVar } from "../../cli/wrangler-config.ts";

const repo = new URL("../..", import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), "edgevit-args-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function cli(...args: string[]) {
  const run = spawnSync(process.execPath, [join(repo, "bin/edgevit.mjs"), ...args], { cwd: repo, encoding: "utf8" });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

const SUBCOMMANDS = ["convert", "classify", "eval", "upload"];

describe("--help", () => {
  test.each(SUBCOMMANDS)("edgevit %s --help prints its usage and options, exit 0", (name) => {
    for (const flag of ["--help", "-h"]) {
      const run = cli(name, flag);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(new RegExp(`^usage: edgevit ${name} `));
      expect(run.stdout).toMatch(/options:\n/);
      expect(run.stdout).toMatch(/--help/);
      expect(run.stderr).toBe("");
    }
  });
});

test("--version is package.json's version, then the dot path this Node's engine takes", () => {
  const { version } = JSON.parse(readFileSync(join(repo, "package.json"), "utf8"));
  const run = cli("--version");
  expect(run.code).toBe(0);
  const [first, second, ...rest] = run.stdout.trim().split("\n");
  expect(first).toBe(`edgevit ${version}`);
  expect(rest).toEqual([]);
  // The probe computed here, in the same Node: lane 0 of relaxed_dot_i8x16_i7x16_add_s(127s, 0xFFs, 0) is
  // 65534 (pmaddubsw: split), 129540 (vpdpbusd) or -508 (vpdpbssd): fused. The baseline build reports 0.
  const relaxed = readFileSync(join(repo, "build/engine-relaxed.wasm"));
  const probe = WebAssembly.validate(relaxed)
    ? (new WebAssembly.Instance(new WebAssembly.Module(relaxed), {}).exports as { probeDot(): number }).probeDot()
    : 0;
  const path = probe === 129540 || probe === -508 ? "fused" : probe === 0 ? "i16" : "split";
  expect(second).toBe(`engine: dot path ${path} (probe ${probe}), Node ${process.version}`);
});

describe("one error shape", () => {
  test.each([
    ["classify", "--bogus", /Unknown option '--bogus'/],
    ["eval", "--limit", /argument missing/],
    ["upload", "--remote", /expected 1 argument, got 0/],
    ["convert", "a", /-o <model.evit> is required/],
    ["eval", "--quality=0", /--quality must be an integer from 1 to 100, got "0"/],
    ["classify", "-k", "x", "f.jpg", /--top must be an integer at least 1, got "x"/],
  ] as [string, ...(string | RegExp)[]][])("edgevit %s ...: usage error, exit 2", (name, ...rest) => {
    const pattern = rest.pop() as RegExp;
    const run = cli(name, ...(rest as string[]));
    expect(run.code).toBe(2);
    const [first, second] = run.stderr.split("\n");
    expect(first).toMatch(new RegExp(`^edgevit ${name}: `));
    expect(first).toMatch(pattern);
    expect(second).toMatch(new RegExp(`^usage: edgevit ${name} `));
  });

  test("a failure is `edgevit <command>: <reason>`, exit 1", () => {
    const run = cli("convert", join(root, "nowhere"), "-o", join(root, "x.evit"));
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^edgevit convert: cannot read .*nowhere\/config\.json/);
  });
});

describe("the converter names the architectures it supports", () => {
  // config.json as transformers writes it for microsoft/swin-tiny-patch4-window7-224 (the keys that matter).
  const cases: [string, object, RegExp][] = [
    ["swin", { model_type: "swin", architectures: ["SwinForImageClassification"] }, /model_type "swin"/],
    ["beit", { model_type: "beit", architectures: ["BeitForImageClassification"] }, /BeitForImageClassification/],
    ["mae", { model_type: "vit", architectures: ["ViTForMaskedImageModeling"] }, /ViTForMaskedImageModeling/],
    ["timm-convnext", { architecture: "convnext_tiny", num_classes: 1000 }, /timm "convnext_tiny"/],
  ];
  test.each(cases)("%s", (what, config, named) => {
    const dir = join(root, what);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "config.json"), JSON.stringify(config));
    // No safetensors at all: the refusal comes from config.json before any tensor is looked for.
    const run = cli("convert", dir, "-o", join(root, `${what}.evit`));
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(named);
    expect(run.stderr).toMatch(/edgevit converts Hugging Face ViT .*DeiT .*timm vit_\* \/ deit_\* checkpoints only/);
    expect(run.stderr).not.toMatch(/ENOENT|missing/);
  });
});

test("wrangler.toml is read by wrangler's parser: vars, buckets, strings with # and quotes", () => {
  const path = join(root, "wrangler.toml");
  writeFileSync(
    path,
    [
      'name = "x"',
      'main = "index.ts"',
      'compatibility_date = "2026-11-01"',
      "[[r2_buckets]]",
      'binding = "OTHER"',
      'bucket_name = "other-bucket"',
      "[[r2_buckets]]",
      "binding = 'MODELS' # a comment",
      'bucket_name = "my-models"',
      "[vars]",
      'DEFAULT_MODEL = "a#b \\"quoted\\""',
      "MAX = 3",
    ].join("\n"),
  );
  const config = readWranglerConfig(path);
  expect(bucketOf(config, "MODELS")).toBe("my-models");
  expect(stringVar(config, "DEFAULT_MODEL")).toBe('a#b "quoted"');
  expect(stringVar(config, "MAX")).toBeUndefined();
  expect(() => bucketOf(config, "NONE")).toThrow(/no R2 bucket bound as NONE/);
});
