// Compiles assembly/index.ts twice: build/engine.wasm (SIMD) and build/engine-relaxed.wasm (SIMD + relaxed
// SIMD). One source; the relaxed code paths are chosen at compile time with ASC_FEATURE_RELAXED_SIMD.
// And assembly/decode.ts, the image decoders' kernels, into build/decode.wasm (SIMD).
// Skips a target whose output is newer than every source file.
import { mkdirSync, readdirSync, statSync, existsSync } from "node:fs";
import { join } from "node:path";

// The compiler's own typings declare AssemblyScript's globals (a `console` namespace among them) for the
// whole program, so it is imported untyped and described by the one call used here.
interface Asc {
  main(args: string[], options: object): Promise<{ error: Error | null; stderr: { toString(): string } }>;
}
const ascModule = "assemblyscript/asc";
const asc = ((await import(ascModule)) as { default: Asc }).default;

const root = new URL("..", import.meta.url).pathname;
const sourceDir = join(root, "assembly");
const buildDir = join(root, "build");

const targets = [
  { entry: "index.ts", out: "engine.wasm", features: ["simd"] },
  { entry: "index.ts", out: "engine-relaxed.wasm", features: ["simd", "relaxed-simd"] },
  { entry: "decode.ts", out: "decode.wasm", features: ["simd"] },
];

function newestSource(dir: string): number {
  let newest = statSync(new URL(import.meta.url).pathname).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

mkdirSync(buildDir, { recursive: true });
const sourcesTime = newestSource(sourceDir);
const force = process.argv.includes("--force");

for (const target of targets) {
  const outFile = join(buildDir, target.out);
  if (!force && existsSync(outFile) && statSync(outFile).mtimeMs > sourcesTime) {
    console.log(`build-wasm: ${target.out} is up to date`);
    continue;
  }
  const args = [
    join(sourceDir, target.entry),
    "--outFile",
    outFile,
    "-O3",
    "--runtime",
    "stub",
    "--noAssert",
    // No imports: a failed allocation traps (unreachable) instead of calling env.abort.
    "--use",
    "abort=",
    ...target.features.flatMap((f) => ["--enable", f]),
  ];
  const { error, stderr } = await asc.main(args, {});
  if (error) {
    console.error(stderr.toString());
    console.error(`build-wasm: ${target.out} failed: ${error.message}`);
    process.exit(1);
  }
  console.log(`build-wasm: wrote build/${target.out} (${statSync(outFile).size} bytes)`);
}
