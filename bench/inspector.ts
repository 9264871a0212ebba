// The Worker isolate's V8 heap through wrangler's inspector proxy (`wrangler dev --inspector-port`). The
// proxy wants an Origin on localhost, sends its own messages between the replies, and can stop answering
// after several connections: one connection serves a whole run.

export interface HeapUsage {
  usedSize: number; // JS heap in use
  totalSize: number; // JS heap committed
  backingStorageSize: number; // ArrayBuffer backing stores, outside the JS heap
}

export class Inspector {
  private readonly socket: WebSocket;
  private nextId = 1;
  private closed: Error | null = null;
  private readonly pending = new Map<number, { resolve: (result: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, (params: unknown) => void>();

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(String(event.data)) as {
        id?: number;
        method?: string;
        params?: unknown;
        result?: unknown;
        error?: { message: string };
      };
      if (message.method) this.listeners.get(message.method)?.(message.params);
      const waiting = message.id === undefined ? undefined : this.pending.get(message.id);
      if (!waiting) return; // an event, or a reply that came after its timeout
      this.pending.delete(message.id!);
      if (message.error) waiting.reject(new Error(`inspector: ${message.error.message}`));
      else waiting.resolve(message.result);
    });
    socket.addEventListener("close", () => {
      this.closed = new Error("the inspector connection closed (did wrangler restart the Worker?)");
      for (const waiting of this.pending.values()) waiting.reject(this.closed);
      this.pending.clear();
    });
  }

  static async connect(port: number, timeoutMs = 10_000): Promise<Inspector> {
    // Node's WebSocket (undici) takes headers in its options; the DOM type does not declare them.
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { origin: "http://localhost" } } as never);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.close();
        reject(new Error(`the inspector on port ${port} did not accept a connection within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.addEventListener("open", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.addEventListener("error", () => {
        clearTimeout(timer);
        reject(new Error(`the inspector on port ${port} refused the connection`));
      });
    });
    return new Inspector(socket);
  }

  call<T>(method: string, params: object = {}, timeoutMs = 30_000): Promise<T> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`inspector: no answer to ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (result) => {
          clearTimeout(timer);
          resolve(result as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }

  heapUsage(): Promise<HeapUsage> {
    return this.call<HeapUsage>("Runtime.getHeapUsage");
  }

  // A full collection, so a round starts from what the isolate holds rather than from earlier garbage (V8
  // does not collect an idle isolate). workerd never answers HeapProfiler.collectGarbage; a heap snapshot
  // collects first (its chunks, a few MB, arrive as events and are dropped).
  async collectGarbage(): Promise<void> {
    await this.call("HeapProfiler.takeHeapSnapshot", { reportProgress: false }, 120_000);
  }

  // The isolate's heap snapshot, as the JSON text V8 writes (after a full collection: only what is live).
  async heapSnapshot(): Promise<string> {
    const chunks: string[] = [];
    this.listeners.set("HeapProfiler.addHeapSnapshotChunk", (params) =>
      chunks.push((params as { chunk: string }).chunk),
    );
    try {
      await this.call("HeapProfiler.takeHeapSnapshot", { reportProgress: false }, 120_000);
    } finally {
      this.listeners.delete("HeapProfiler.addHeapSnapshotChunk");
    }
    return chunks.join("");
  }

  close(): void {
    this.socket.close();
  }
}

export interface HeapPeaks {
  usedSize: number;
  totalSize: number;
  backingStorageSize: number;
  committedAndBacking: number; // the most of one sample's totalSize + backingStorageSize
  samples: number;
  maxGapMs: number; // the longest time between two samples
}

// Samples the heap every `intervalMs` (one request in flight at a time: a busy isolate answers late, and
// the gaps are reported) until stopped, keeping each field's peak.
export class HeapSampler {
  private running = true;
  private readonly peaks: HeapPeaks = {
    usedSize: 0,
    totalSize: 0,
    backingStorageSize: 0,
    committedAndBacking: 0,
    samples: 0,
    maxGapMs: 0,
  };
  private readonly loop: Promise<void>;
  private error: Error | null = null;

  constructor(inspector: Inspector, intervalMs: number) {
    // Kept for stop(): a failed sample must not be an unhandled rejection while the round is still running.
    this.loop = this.sample(inspector, intervalMs).catch((e: Error) => {
      this.error = e;
    });
  }

  private async sample(inspector: Inspector, intervalMs: number): Promise<void> {
    let last = performance.now();
    while (this.running) {
      const sent = performance.now();
      const usage = await inspector.heapUsage();
      const now = performance.now();
      const p = this.peaks;
      p.usedSize = Math.max(p.usedSize, usage.usedSize);
      p.totalSize = Math.max(p.totalSize, usage.totalSize);
      p.backingStorageSize = Math.max(p.backingStorageSize, usage.backingStorageSize);
      p.committedAndBacking = Math.max(p.committedAndBacking, usage.totalSize + usage.backingStorageSize);
      p.maxGapMs = Math.max(p.maxGapMs, now - last);
      p.samples++;
      last = now;
      const wait = sent + intervalMs - now;
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }

  // Waits for the sample in flight and returns the peaks, or the error that stopped the sampling.
  async stop(): Promise<HeapPeaks> {
    this.running = false;
    await this.loop;
    if (this.error) throw this.error;
    return { ...this.peaks };
  }
}
