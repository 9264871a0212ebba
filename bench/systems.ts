// The systems the end-to-end benchmark times, behind one interface: a child process per Node system
// (bench/child.ts), and the Worker under `wrangler dev`, timed from this process.
import { fork, type ChildProcess } from "node:child_process";
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import type { PoolStats } from "../core/buffers.ts";
import type { ChildReply, ChildRequest, SystemName } from "./protocol.ts";
import { cpuMs, statusBytes } from "./proc.ts";
import type { DevServer } from "./wrangler.ts";

export interface Timed {
  ms: number;
  logits: Float32Array; // [classes], or a tower's embedding (bench/output.ts)
  cpuMs?: number; // the CPU time workerd spent on it (all its threads), where the system runs in workerd
}

export interface System {
  readonly name: string;
  run(image: number): Promise<Timed>;
  peakRssBytes(): Promise<number>;
  details(): Promise<Record<string, number | string>>;
  stop(): Promise<void>;
}

export class NodeSystem implements System {
  readonly name: string;
  readonly loadMs: number;
  readonly info: Record<string, string | number>;
  private readonly child: ChildProcess;
  private readonly inputs: Float32Array[];
  private waiting: ((reply: ChildReply) => void) | null = null;

  private constructor(
    name: string,
    child: ChildProcess,
    inputs: Float32Array[],
    ready: Extract<ChildReply, { type: "ready" }>,
  ) {
    this.name = name;
    this.child = child;
    this.inputs = inputs;
    this.loadMs = ready.loadMs;
    this.info = ready.info;
    child.on("message", (reply: ChildReply) => {
      const w = this.waiting;
      this.waiting = null;
      w?.(reply);
    });
  }

  // `inputs`: one [channels][imageSize][imageSize] array per image, the same for every system. `node`: another
  // Node binary than this one (the newest Node), named in the system's name as `<system>@<label>`.
  static async start(
    system: SystemName,
    modelDir: string,
    ortModule: string,
    inputs: Float32Array[],
    node?: { execPath: string; label: string },
  ): Promise<NodeSystem> {
    const child = fork(new URL("./child.ts", import.meta.url).pathname, [system, modelDir, ortModule], {
      serialization: "advanced", // typed arrays cross as typed arrays
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      ...(node ? { execPath: node.execPath } : {}),
    });
    const ready = await new Promise<ChildReply>((resolve, reject) => {
      child.once("message", resolve);
      child.once("exit", (code) => reject(new Error(`${system} child exited with ${code} before it was ready`)));
    });
    if (ready.type !== "ready") throw new Error(`${system} child said ${ready.type} first`);
    child.removeAllListeners("exit");
    return new NodeSystem(node ? `${system}@${node.label}` : system, child, inputs, ready);
  }

  private ask(request: ChildRequest): Promise<ChildReply> {
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.child.once("exit", (code) => reject(new Error(`${this.name} child exited with ${code}`)));
      this.child.send(request);
    }).finally(() => this.child.removeAllListeners("exit")) as Promise<ChildReply>;
  }

  async run(image: number): Promise<Timed> {
    return this.runPixels(this.inputs[image]);
  }

  async runPixels(pixels: Float32Array): Promise<Timed> {
    const reply = await this.ask({ type: "run", pixels });
    if (reply.type !== "result") throw new Error(`${this.name}: expected a result, got ${reply.type}`);
    return { ms: reply.ms, logits: reply.logits };
  }

  async peakRssBytes(): Promise<number> {
    return statusBytes(this.child.pid!, "VmHWM");
  }

  async details(): Promise<Record<string, number | string>> {
    const reply = await this.ask({ type: "memory" });
    if (reply.type !== "memory") throw new Error(`${this.name}: expected memory, got ${reply.type}`);
    return { ...this.info, loadMs: this.loadMs, ...reply.memory };
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.send({ type: "exit" } satisfies ChildRequest);
    await exited;
  }
}

// POST /v1/classify of one JPEG, timed around the request: inside workerd the clocks stand still while
// code runs. The time includes HTTP on loopback, JPEG decoding and preprocessing.
export async function classify(url: string, model: string, jpeg: Uint8Array): Promise<Timed> {
  const start = performance.now();
  const response = await fetch(`${url}/v1/classify?model=${encodeURIComponent(model)}&include=logits&top_k=1`, {
    method: "POST",
    headers: { "content-type": "image/jpeg" },
    body: jpeg as Uint8Array<ArrayBuffer>,
  });
  const body = (await jsonBody(response, `classify ${model}`)) as { logits?: number[] };
  const ms = performance.now() - start;
  if (!body.logits) throw new Error(`classify ${model}: no logits in ${JSON.stringify(body).slice(0, 300)}`);
  return { ms, logits: Float32Array.from(body.logits) };
}

// wrangler reloads the Worker when a source file changes, in a new workerd process: a request that
// overlaps a restart is redone (the model is then loaded again, untimed), restarts are counted, and the
// peak resident memory is sampled after every request, across restarts.
export class WorkerSystem implements System {
  readonly name: string;
  restarts = 0;
  private readonly server: DevServer;
  private readonly model: string;
  private readonly jpeg: Uint8Array;
  private readonly loaded: { runtimeRss: number; wasmBytes: number };
  private pid = 0;
  private peak = 0;

  // `loaded`: workerd's resident bytes before the model was loaded, and the wasm memory once it was. Several
  // systems may post different JPEGs to one server, each under its own name.
  constructor(
    server: DevServer,
    model: string,
    jpeg: Uint8Array,
    loaded: { runtimeRss: number; wasmBytes: number },
    name = "edgevit-workerd",
  ) {
    this.name = name;
    this.server = server;
    this.model = model;
    this.jpeg = jpeg;
    this.loaded = loaded;
  }

  // The current workerd's pid, after noting its peak memory; counts a change of process as a restart.
  private async sample(): Promise<number> {
    const pid = await this.server.workerdPid();
    if (this.pid && pid !== this.pid) this.restarts++;
    this.pid = pid;
    this.peak = Math.max(this.peak, statusBytes(pid, "VmHWM"));
    return pid;
  }

  async run(): Promise<Timed> {
    for (let attempt = 1; ; attempt++) {
      const before = await this.sample();
      try {
        const cpu = cpuMs(before);
        const timed = await classify(this.server.url, this.model, this.jpeg);
        const used = cpuMs(before) - cpu;
        if ((await this.sample()) === before) return { ...timed, cpuMs: used };
      } catch (error) {
        if ((await this.sample()) === before || attempt === 5) throw error;
      }
      await classify(this.server.url, this.model, this.jpeg); // the restarted Worker loads the model
    }
  }

  async peakRssBytes(): Promise<number> {
    await this.sample();
    return this.peak;
  }

  async details(): Promise<Record<string, number | string>> {
    const body = (await jsonBody(await fetch(`${this.server.url}/v1/models`), "GET /v1/models")) as {
      engine: string;
      dot?: { path: string; probe: number };
    };
    return {
      build: body.engine,
      ...(body.dot ? { dot: body.dot.path, probe: body.dot.probe } : {}),
      wasmBytes: this.loaded.wasmBytes,
      runtimeRss: this.loaded.runtimeRss,
      restarts: this.restarts,
    };
  }

  stop(): Promise<void> {
    return this.server.stop();
  }
}

// The JSON answer of a benchmark request, or an error naming the request, its status and the start of what
// came back instead (a wrangler error page, a crashed isolate's text). `allowed`: statuses that are
// answers too.
export async function jsonBody(response: Response, what: string, allowed: number[] = []): Promise<unknown> {
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${what}: HTTP ${response.status}, not JSON: ${text.slice(0, 300)}`);
  }
  if (!response.ok && !allowed.includes(response.status))
    throw new Error(`${what}: HTTP ${response.status} ${text.slice(0, 300)}`);
  return body;
}

// The wasm memory of the models loaded in the Worker's isolate, as GET /v1/models reports it.
// The isolate's memory ledger as GET /v1/models reports it (worker/memory.ts).
export interface WorkerLedger {
  usedBytes: number;
  peakBytes: number;
  capacityBytes: number;
  reservedBytes: number;
  poolBytes: number;
  inFlight: number;
  queued: number;
  kernelBytes: number; // the decode kernels' wasm memory
  pool: PoolStats; // core/buffers.ts
}

export async function workerLedger(url: string): Promise<WorkerLedger> {
  const body = (await jsonBody(await fetch(`${url}/v1/models`), "GET /v1/models")) as {
    memory: { isolate: WorkerLedger };
  };
  return body.memory.isolate;
}

export async function workerWasmBytes(url: string): Promise<number> {
  const body = (await jsonBody(await fetch(`${url}/v1/models`), "GET /v1/models")) as { memory: { usedBytes: number } };
  return body.memory.usedBytes;
}

// The forward pass alone inside workerd: the bundle in the benchmark Worker (bench/kernels-worker.ts, the
// engine host's own loader), pixel values posted, `repeat` forward passes per request, timed by the client
// less the same request with no forward pass (upload and answer: the least of several). A Worker that
// wrangler restarted (a watched file changed) has lost the bundle: it is uploaded and warmed again, the
// request repeated, and the restart counted.
export class WorkerForwardSystem implements System {
  readonly name = "edgevit-workerd-forward";
  private readonly server: DevServer;
  private readonly evit: string;
  private readonly inputs: Float32Array[];
  private repeat = 1;
  private overhead = 0;
  private peak = 0;
  restarts = 0;

  private constructor(server: DevServer, evit: string, inputs: Float32Array[]) {
    this.server = server;
    this.evit = evit;
    this.inputs = inputs;
  }

  static async start(server: DevServer, evit: string, inputs: Float32Array[]): Promise<WorkerForwardSystem> {
    const system = new WorkerForwardSystem(server, evit, inputs);
    const warm = await system.upload();
    system.repeat = Math.max(1, Math.round(100 / warm));
    system.overhead = Infinity;
    for (let k = 0; k < 10; k++) system.overhead = Math.min(system.overhead, (await system.post(0, 0)).ms);
    return system;
  }

  // PUT /bundle, then two forward passes that compile the engine's hot paths; the faster one's ms.
  private async upload(): Promise<number> {
    const stream = Readable.toWeb(
      createReadStream(this.evit, { highWaterMark: 1 << 20 }),
    ) as ReadableStream<Uint8Array>;
    const response = await fetch(`${this.server.url}/bundle`, {
      method: "PUT",
      body: stream,
      duplex: "half",
    } as RequestInit);
    await jsonBody(response, "PUT /bundle");
    let best = Infinity;
    for (let k = 0; k < 2; k++) best = Math.min(best, (await this.post(0, 1)).ms);
    return best;
  }

  // One request of n forward passes; null when the Worker has no bundle (409: it was restarted).
  private async request(image: number, n: number): Promise<{ ms: number; output: number[] } | null> {
    const start = performance.now();
    const response = await fetch(`${this.server.url}/bundle/run?n=${n}`, {
      method: "POST",
      body: this.inputs[image] as Float32Array<ArrayBuffer>,
    });
    const body = (await jsonBody(response, "POST /bundle/run", [409])) as { output?: number[] };
    const ms = performance.now() - start;
    if (response.status === 409) return null;
    if (!Array.isArray(body.output) || (n > 0 && body.output.length === 0))
      throw new Error(`POST /bundle/run?n=${n}: no output in ${JSON.stringify(body).slice(0, 200)}`);
    return { ms, output: body.output };
  }

  private async post(image: number, n: number): Promise<{ ms: number; output: number[] }> {
    for (let attempt = 1; ; attempt++) {
      const answer = await this.request(image, n);
      if (answer) return answer;
      if (attempt === 3) throw new Error("POST /bundle/run: the benchmark Worker lost the bundle three times running");
      this.restarts++;
      console.log("bench: edgevit-workerd-forward: the Worker restarted; uploading the bundle again");
      await this.upload();
    }
  }

  async run(image: number): Promise<Timed> {
    const pid = await this.server.workerdPid();
    const cpu = cpuMs(pid);
    const { ms, output } = await this.post(image, this.repeat);
    // The CPU time per pass, the request's own share included (none when workerd was restarted meanwhile).
    const now = await this.server.workerdPid();
    const used = now === pid ? (cpuMs(pid) - cpu) / this.repeat : undefined;
    this.peak = Math.max(this.peak, statusBytes(now, "VmHWM"));
    return { ms: Math.max(ms - this.overhead, 0) / this.repeat, logits: Float32Array.from(output), cpuMs: used };
  }

  async peakRssBytes(): Promise<number> {
    return this.peak;
  }

  async details(): Promise<Record<string, number | string>> {
    const body = (await jsonBody(await fetch(`${this.server.url}/probe`), "GET /probe")) as {
      probe: number;
      path: number;
    };
    const dot = ["i16", "split", "fused"][body.path] ?? "?";
    return {
      build: "relaxed-simd",
      dot,
      probe: body.probe,
      repeat: this.repeat,
      overheadMs: this.overhead,
      restarts: this.restarts,
    };
  }

  stop(): Promise<void> {
    return this.server.stop();
  }
}
