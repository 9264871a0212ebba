// One system under test in its own process, so that its peak resident memory is its own.
//
//   fork("bench/child.ts", [system, modelDir, ortModule])   system: edgevit | ort-f32 | ort-int8
//
// Loads the model, answers "ready", then runs one image per request from the parent and answers with the
// latency measured here (input copied in, forward pass, outputs copied out) and the output compared: a
// classifier's logits, a tower's default embedding (bench/output.ts).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadModelFile, nodeEngine } from "../cli/node-engine.ts";
import { outputOf } from "./output.ts";
import type { ChildReply, ChildRequest, SystemName } from "./protocol.ts";

const root = new URL("..", import.meta.url).pathname;

// One forward pass on pixels [channels][imageSize][imageSize] -> logits [classes] or the embedding.
type Runner = (pixels: Float32Array) => Promise<Float32Array>;

interface Loaded {
  run: Runner;
  info: Record<string, string | number>;
  memory: () => Record<string, number>;
}

// The CLI's engine and loader: relaxed build when it validates, the bundle streamed from disk in 1 MiB
// chunks straight into wasm memory, as the Worker streams R2's body.
async function loadEdgevit(modelDir: string): Promise<Loaded> {
  const engine = await nodeEngine();
  const model = await loadModelFile(engine, join(modelDir, "model.evit"));
  const relaxed = readFileSync(join(root, "build/engine-relaxed.wasm"));
  return {
    run: async (pixels) => {
      model.input().set(pixels);
      return outputOf(model.run(), model.header.config);
    },
    info: { build: WebAssembly.validate(relaxed) ? "relaxed-simd" : "simd", dot: engine.dot.path },
    memory: () => ({ wasmBytes: model.memoryBytes, largestJsBuffer: model.largestJsBuffer }),
  };
}

async function loadOrt(modelDir: string, ortModule: string, precision: "f32" | "int8"): Promise<Loaded> {
  const ort = await import(ortModule);
  ort.env.wasm.numThreads = 1; // a Worker has no threads
  const bytes = readFileSync(join(modelDir, `model.${precision}.onnx`));
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
  const largestJsBuffer = bytes.byteLength;
  const [inputName] = session.inputNames;
  const [outputName] = session.outputNames;
  return {
    run: async (pixels) => {
      const size = Math.round(Math.sqrt(pixels.length / 3));
      const feeds = { [inputName]: new ort.Tensor("float32", pixels, [1, 3, size, size]) };
      const out = await session.run(feeds);
      return (out[outputName].data as Float32Array).slice();
    },
    info: { ort: ort.env.versions.web, numThreads: ort.env.wasm.numThreads },
    memory: () => ({ largestJsBuffer }),
  };
}

function send(reply: ChildReply): void {
  process.send!(reply);
}

// This runtime's lowering of relaxed_dot_i8x16_i7x16_add_s (assembly/kernels/dot.ts), whichever system runs
// here: 65534 pmaddubsw, 129540 vpdpbusd, -508 vpdpbssd; 0 without relaxed SIMD.
function probeDot(): number {
  const relaxed = readFileSync(join(root, "build/engine-relaxed.wasm"));
  if (!WebAssembly.validate(relaxed)) return 0;
  const e = new WebAssembly.Instance(new WebAssembly.Module(relaxed), {}).exports as { probeDot(): number };
  return e.probeDot();
}

const [system, modelDir, ortModule] = process.argv.slice(2) as [SystemName, string, string];
const runtimeRss = process.memoryUsage().rss; // Node after start-up, before the model is loaded
const t0 = performance.now();
const loaded =
  system === "edgevit"
    ? await loadEdgevit(modelDir)
    : await loadOrt(modelDir, ortModule, system === "ort-f32" ? "f32" : "int8");
send({
  type: "ready",
  loadMs: performance.now() - t0,
  info: { ...loaded.info, runtimeRss, node: process.version, v8: process.versions.v8, probe: probeDot() },
});

process.on("message", async (request: ChildRequest) => {
  if (request.type === "run") {
    const start = performance.now();
    const logits = await loaded.run(request.pixels);
    const ms = performance.now() - start;
    send({ type: "result", ms, logits });
  } else if (request.type === "memory") {
    send({ type: "memory", memory: loaded.memory() });
  } else {
    process.disconnect();
  }
});
