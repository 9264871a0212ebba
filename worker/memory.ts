// The isolate's memory ledger: one isolate has ISOLATE_MEMORY_MB for everything it holds at once, the JS
// heap of every request in flight and the wasm memory of every loaded model (docs/MEMORY.md, "Concurrent
// requests"). The ledger counts
//   - the isolate's own JS heap when idle (FIXED_HEAP_BYTES, measured),
//   - the wasm memory of the loaded models, capture buffers included (the model cache registers them; an
//     evicted model still counts while a request holds it), and while a model loads, the whole model budget
//     (MODEL_MEMORY_BUDGET_MB): a load never waits for room that requests took,
//   - what each request reserved: its worst case, computed by reservationBytes() from what is known before
//     it commits memory,
//   - the JS heap of the requests present beyond those holding a reservation (CROWD_HEAP_BYTES each: waiting in
//     the queue, or come and gone since the isolate was last idle), asked of admissions while another request
//     holds memory and kept out of the pool's room;
//   - what the isolate's caches keep between requests (setCache: worker/text.ts's label embeddings, at most
//     4 MiB), as they fill and evict;
//   - the free buffers the isolate's pool keeps for the next request (core/buffers.ts): they are room
//     reservations may take, so a reservation that needs it first shrinks the pool; a buffer handed back
//     while its request's reservation still counts it is kept once that reservation has shrunk, if there is
//     room then, else freed at once (core/buffers.ts's freeNow): the pool holds nothing the ledger does not
//     count, and what it lets go is not left for V8's collector, which frees it late.
// A reservation that does not fit waits in one FIFO queue (ADMISSION_QUEUE_LENGTH long, ADMISSION_WAIT_SECONDS
// at most), then is refused with 503 `busy` and Retry-After. The queue is strict FIFO by arrival: a request
// admitted earlier that grows goes before any later arrival, and nobody overtakes the head, so nobody
// starves; what one request reserved is never counted as room for another.

import {
  type BundleHeader,
  imageTokens,
  type ModelConfig,
  tokens as tokensOf,
  towerOf,
  type EmbeddingsConfig,
} from "../core/bundle/format.ts";
import { type BufferPool, buffers } from "../core/buffers.ts";
import { EdgevitError } from "../core/errors.ts";
import { BYOB_READ_BYTES, DEFAULT_MAX_WINDOW_BYTES } from "../core/image/bytes.ts";
import { decodeKernelBytes } from "../core/image/kernels.ts";
import type { ImageHeader } from "../core/image/source.ts";
import { longestEdgeStep } from "../core/pipeline.ts";
import { StreamingPreprocessor } from "../core/preprocess/stream.ts";
import { Tiles } from "../core/preprocess/tiles.ts";
import { MiB, sizeText } from "../core/sizes.ts";
import { FORM_BUFFER_BYTES } from "./multipart.ts";
import { nearestBytes } from "./nearest.ts";
import type { IsolateMemory } from "./types.ts";

// Defaults of wrangler.toml's [vars] (tests and a deployment without them read these).
export const DEFAULT_ISOLATE_MB = 120;
export const DEFAULT_BUDGET_MB = 100;
export const DEFAULT_QUEUE_LENGTH = 32;
export const DEFAULT_WAIT_SECONDS = 10;

// The isolate's JS heap with nothing in flight, a model loaded: V8's committed heap after a ViT-B/16 load and
// three classifications was 6.6 MiB (docs/MEMORY.md, "Large uploads"); rounded up for the runtime's own
// objects.
export const FIXED_HEAP_BYTES = 7 * MiB;
// The JS heap V8 commits beyond the idle heap for each request in flight, beside the buffers its reservation
// counts (its objects, and the young generation V8 grows while requests allocate): bench:load measures 0.35 MiB
// per request decoding at once for baseline JPEGs and 1-1.2 MiB for progressive JPEGs and PNGs (docs/MEMORY.md,
// "Concurrent requests").
export const REQUEST_HEAP_BYTES = MiB;
// The JS heap V8 commits for each request the isolate has had at once beyond those holding a reservation:
// requests waiting in the admission queue (their Request, headers, body stream, promises), and those that came
// and went since the isolate was last idle, as V8 keeps the heap it grew for them (old space and the young
// generation) committed until then. bench:load's committed heap grows by 0.11-0.34 MiB per request from N = 4
// to N = 32 (docs/MEMORY.md, "Concurrent requests"), while about as many hold reservations. While another
// request holds memory, admission leaves this much room for each (never to a request nobody else's memory
// is beside: it fits as it would alone).
export const CROWD_HEAP_BYTES = 256 * 1024;

// A refusal because the isolate is busy with other requests' memory: worth retrying after `retryAfter`
// seconds (the Retry-After header over HTTP, `retryAfter` over RPC, a delayed retry in the queue consumer).
export class Busy extends EdgevitError {
  readonly retryAfter: number;
  constructor(retryAfter: number) {
    super(
      "busy",
      `The server is busy with other images right now and has no room for this one; try again in ${retryAfter} s.`,
    );
    this.retryAfter = retryAfter;
  }
}

export interface LedgerSettings {
  capacityBytes: number; // ISOLATE_MEMORY_MB
  fixedBytes: number; // the idle isolate's JS heap
  modelBudgetBytes: number; // MODEL_MEMORY_BUDGET_MB: what a load may take
  queueLength: number; // waiting requests at most; one more is busy at once
  crowdBytes?: number; // the JS heap of each request present beyond those holding memory (CROWD_HEAP_BYTES; unset: 0)
  waitMs: number; // how long one waits before it is busy
}

// A loaded model's memory as the ledger reads it: live, so capture buffers count once they grow.
export interface Sized {
  readonly memoryBytes: number;
}

interface ModelEntry {
  cached: boolean;
  holders: number; // reservations whose request holds this model
}

interface Waiter {
  seq: number; // arrival order: the ticket's, so a growing request keeps its place
  bytes: number; // what the ticket's reservation becomes
  ticket: Ticket;
  claim?: string;
  deadline: number;
  resolve: () => void;
  reject: (error: Error) => void;
  timer?: number;
}

// A request's reservation. `resize` grows it (waiting its turn) or shrinks it (at once); `release` ends it
// and is safe to call more than once, so every path out of a request may call it.
export class Ticket {
  readonly seq: number;
  bytes = 0;
  claim?: string; // a model load this request needs: the model budget stays set aside while it is pending
  earmarked = 0; // bytes of the pool's free buffers counted inside this reservation
  crowd = 0; // the ledger's crowd when this request was admitted: what its growth leaves room for
  readonly held = new Set<Sized>();
  released = false;
  private readonly ledger: MemoryLedger;

  constructor(ledger: MemoryLedger, seq: number) {
    this.ledger = ledger;
    this.seq = seq;
  }

  // Grows to `bytes` (waits, FIFO) or shrinks to it. `tooLarge(room)` is the refusal when `bytes` could never
  // fit even with this request alone beside its models (`room` is what it could have).
  resize(bytes: number, tooLarge?: (room: number) => EdgevitError): Promise<void> {
    return this.ledger.resize(this, bytes, tooLarge);
  }

  // The model this request runs on counts until the request ends, even if the cache evicts it meanwhile.
  hold(model: Sized): void {
    if (this.released || this.held.has(model)) return;
    this.held.add(model);
    this.ledger.holdModel(model);
  }

  // What this request could have with no other request in flight, beside the models it needs.
  get roomAlone(): number {
    return this.ledger.roomAlone(this);
  }

  release(): void {
    this.ledger.release(this);
  }
}

export class MemoryLedger {
  private settings: LedgerSettings;
  private seq = 0;
  private readonly tickets = new Set<Ticket>();
  private readonly models = new Map<Sized, ModelEntry>();
  // Pending model loads by name, and who needs each: requests admitted for a model not loaded, the load itself.
  private readonly claims = new Map<string, Set<object>>();
  private readonly queue: Waiter[] = [];
  private peak = 0;
  // The most requests present at once (admitted or waiting) since the ledger last had none, as of the last
  // admission or arrival in the queue (one refused at once does not stay).
  private crowd = 0;
  // Bytes kept by the isolate's caches, by name: neither a model nor a request's.
  private readonly caches = new Map<string, number>();
  private readonly pool: BufferPool;

  constructor(settings: LedgerSettings, pool: BufferPool = buffers) {
    this.settings = settings;
    this.pool = pool;
    pool.hosted = true;
    pool.room = () => this.settings.capacityBytes - this.committedBytes() - this.crowdHeap();
  }

  configure(settings: LedgerSettings): void {
    this.settings = settings;
    this.pump();
  }

  get capacityBytes(): number {
    return this.settings.capacityBytes;
  }

  // Seconds a refused request should wait before trying again: about one wait of the queue.
  get retryAfter(): number {
    return Math.max(1, Math.ceil(this.settings.waitMs / 1000));
  }

  // What the models take: the cached ones, or the whole model budget while a load is pending (a load evicts
  // within it), plus evicted models a request still holds. `claiming`: as if one more load were pending.
  private modelBytes(claiming = false): number {
    let cached = 0;
    let held = 0;
    for (const [model, entry] of this.models) {
      if (entry.cached) cached += model.memoryBytes;
      else held += model.memoryBytes;
    }
    const loading = claiming || this.claims.size > 0;
    return Math.max(cached, loading ? this.settings.modelBudgetBytes : 0) + held;
  }

  // Whether `ticket` waits on a model load it has not joined yet, or joined and still pending.
  private needsLoad(ticket: Ticket): boolean {
    if (ticket.claim === undefined) return false;
    return ticket.bytes === 0 || this.claims.get(ticket.claim)?.has(ticket) === true;
  }

  private cachedBytes(): number {
    let cached = 0;
    for (const [model, entry] of this.models) if (entry.cached) cached += model.memoryBytes;
    return cached;
  }

  private reservedBytes(): number {
    let reserved = 0;
    for (const ticket of this.tickets) reserved += ticket.bytes;
    return reserved;
  }

  // The idle isolate's heap and what its caches keep: memory no request can have.
  private standingBytes(): number {
    let kept = 0;
    for (const bytes of this.caches.values()) kept += bytes;
    return this.settings.fixedBytes + kept;
  }

  // A cache now keeps `bytes`. It grows only with what a request that reserved it hands over (so the memory
  // was counted already, and is counted twice until that request ends), and frees room when it evicts.
  setCache(name: string, bytes: number): void {
    if (bytes > 0) this.caches.set(name, bytes);
    else this.caches.delete(name);
    this.peak = Math.max(this.peak, this.usedBytes());
    this.pump();
  }

  // What is spoken for, the pool's free buffers aside.
  private committedBytes(): number {
    return this.standingBytes() + this.modelBytes() + this.reservedBytes();
  }

  usedBytes(): number {
    return this.committedBytes() + this.pool.countedBytes;
  }

  // The most usedBytes() has been since the isolate started (or since resetPeak): tests assert it stays
  // within capacity.
  get peakBytes(): number {
    return this.peak;
  }

  resetPeak(): void {
    this.peak = this.usedBytes();
  }

  state(): IsolateMemory {
    return {
      capacityBytes: this.settings.capacityBytes,
      fixedBytes: this.settings.fixedBytes,
      cacheBytes: this.standingBytes() - this.settings.fixedBytes,
      modelBytes: this.modelBytes(),
      reservedBytes: this.reservedBytes(),
      poolBytes: this.pool.countedBytes,
      usedBytes: this.usedBytes(),
      peakBytes: this.peak,
      inFlight: [...this.tickets].filter((t) => t.bytes > 0).length,
      queued: this.queue.length,
      loading: [...this.claims.keys()],
      pool: { ...this.pool.stats },
      kernelBytes: decodeKernelBytes(),
    };
  }

  // A new reservation of `bytes`, admitted in arrival order. `claim` names a model this request needs that
  // is not loaded: its load's room (the model budget) is set aside with it.
  async admit(bytes: number, claim?: string, tooLarge?: (room: number) => EdgevitError): Promise<Ticket> {
    const ticket = new Ticket(this, ++this.seq);
    this.tickets.add(ticket);
    try {
      if (claim !== undefined) ticket.claim = claim;
      await this.resize(ticket, bytes, tooLarge);
    } catch (error) {
      this.release(ticket);
      throw error;
    }
    return ticket;
  }

  resize(ticket: Ticket, bytes: number, tooLarge?: (room: number) => EdgevitError): Promise<void> {
    if (ticket.released) return Promise.reject(new Error("resizing a released memory reservation"));
    const joining = ticket.bytes === 0 && ticket.claim !== undefined && !this.claims.get(ticket.claim)?.has(ticket);
    if (bytes <= ticket.bytes && !joining) {
      ticket.bytes = bytes;
      this.unearmark(ticket);
      this.pump();
      return Promise.resolve();
    }
    const room = this.roomAlone(ticket);
    if (bytes > room) return Promise.reject(tooLarge ? tooLarge(room) : new Busy(this.retryAfter));
    const waiter = { seq: ticket.seq, bytes, ticket, claim: joining ? ticket.claim : undefined };
    // At once when nobody is waiting ahead and it fits.
    if (!this.queue.some((w) => w.seq < ticket.seq) && this.fits(waiter)) {
      this.grant(waiter);
      return Promise.resolve();
    }
    // A growing request holds memory already, and a load (seq 0) serves requests that do: neither is turned
    // away for the queue's length.
    const arriving = (t: Ticket) => t.bytes === 0 && t.seq > 0;
    if (arriving(ticket) && this.queue.filter((w) => arriving(w.ticket)).length >= this.settings.queueLength) {
      return Promise.reject(new Busy(this.retryAfter));
    }
    return new Promise<void>((resolve, reject) => {
      const entry: Waiter = { ...waiter, deadline: Date.now() + this.settings.waitMs, resolve, reject };
      entry.timer = setTimeout(() => this.expire(entry), this.settings.waitMs);
      // Sorted by arrival: a growing request goes before everyone who arrived after it.
      this.crowd = Math.max(this.crowd, this.tickets.size);
      const at = this.queue.findIndex((w) => w.seq > entry.seq);
      this.queue.splice(at < 0 ? this.queue.length : at, 0, entry);
      this.pump();
    });
  }

  // What `ticket` could have with no other request in flight: the capacity less the fixed heap and the
  // models it cannot do without (the loaded ones, or the model budget while its model must be loaded).
  roomAlone(ticket: Ticket): number {
    const cached = this.cachedBytes();
    const models = this.needsLoad(ticket) ? Math.max(cached, this.settings.modelBudgetBytes) : cached;
    return this.settings.capacityBytes - this.standingBytes() - models;
  }

  private fits(w: Pick<Waiter, "bytes" | "ticket" | "claim">): boolean {
    const models = this.modelBytes(w.claim !== undefined);
    const used = this.standingBytes() + models + this.reservedBytes() - w.ticket.bytes + w.bytes;
    return used + this.crowdBytes(w.ticket) <= this.settings.capacityBytes;
  }

  // The crowd's heap beside the requests holding memory now, as the pool's room sees it: free buffers do not
  // take the room admission leaves it.
  private crowdHeap(): number {
    const each = this.settings.crowdBytes ?? 0;
    if (each === 0) return 0;
    const holding = this.holding();
    return holding === 0 ? 0 : Math.max(0, this.crowd - holding) * each;
  }

  // How many requests other than `except` hold memory.
  private holding(except?: Ticket): number {
    let n = 0;
    for (const t of this.tickets) if (t !== except && t.bytes > 0) n++;
    return n;
  }

  // The JS heap of the requests the isolate has had at once (the most since it was last idle) beyond those that
  // would hold memory with `ticket` admitted (whose reservations count their heap): room `ticket` leaves them
  // while another request holds memory. With nobody else holding any it is 0, so the head of the queue is
  // admitted whenever it fits alone: the charge never blocks the only request that could run. It is asked of
  // a request holding memory that grows only for the crowd it was admitted with, so no later arrival makes
  // it wait: it waits on others that hold memory, as without the count (they end, or breakDeadlock refuses
  // one; each that ends frees its reservation, more than the one heap it adds to the count).
  private crowdBytes(ticket: Ticket): number {
    const each = this.settings.crowdBytes ?? 0;
    if (each === 0) return 0;
    const holding = 1 + this.holding(ticket); // with `ticket`
    if (holding === 1) return 0;
    // A request holding memory grows beside the crowd it was admitted with, not the requests that came after it.
    const crowd = ticket.bytes > 0 ? Math.min(this.crowd, ticket.crowd) : this.crowd;
    return Math.max(0, crowd - holding) * each;
  }

  private grant(w: Pick<Waiter, "bytes" | "ticket" | "claim">): void {
    if (w.claim !== undefined) this.join(w.claim, w.ticket);
    const growth = w.bytes - w.ticket.bytes;
    if (w.ticket.bytes === 0) w.ticket.crowd = this.crowd;
    w.ticket.bytes = w.bytes;
    this.crowd = Math.max(this.crowd, this.tickets.size);
    // The pool's free buffers are room the growth may take: they count inside the reservation (its request
    // may reuse them; the first buffer it makes anew lets them go) as far as the capacity needs.
    const over = this.usedBytes() + this.crowdHeap() - this.settings.capacityBytes;
    if (over > 0) w.ticket.earmarked += this.pool.earmark(Math.min(over, growth));
    this.shrinkPool();
    this.peak = Math.max(this.peak, this.usedBytes());
  }

  // The pool keeps only what the reservations and the models leave.
  private shrinkPool(): void {
    const room = Math.max(0, this.settings.capacityBytes - this.committedBytes() - this.crowdHeap());
    this.pool.trim(room + this.pool.freeBytes - this.pool.countedBytes);
  }

  // A reservation that shrinks or ends no longer counts the pool's buffers it had earmarked.
  private unearmark(ticket: Ticket): void {
    if (ticket.earmarked === 0) return;
    this.pool.unearmark(ticket.earmarked);
    ticket.earmarked = 0;
    this.shrinkPool();
  }

  private join(name: string, who: object): void {
    const needs = this.claims.get(name) ?? new Set<object>();
    this.claims.set(name, needs);
    needs.add(who);
  }

  private leave(name: string, who: object): void {
    const needs = this.claims.get(name);
    if (!needs?.delete(who)) return;
    if (needs.size === 0) this.claims.delete(name);
  }

  // Admits waiters from the head while they fit; drops those whose time ran out (a timer of a request the
  // runtime cancelled never fires: the deadline catches it).
  private pump(): void {
    // Room may have grown: buffers handed back are kept while it lasts (before anyone waiting takes it, as
    // the pool's free bytes are room a waiter may take).
    this.pool.settle();
    const now = Date.now();
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i].deadline <= now) this.expire(this.queue[i]);
    while (this.queue.length > 0 && this.fits(this.queue[0])) {
      const w = this.queue.shift()!;
      if (w.timer !== undefined) clearTimeout(w.timer);
      this.grant(w);
      w.resolve();
    }
    this.breakDeadlock();
  }

  // Every request holding memory is itself waiting to grow, and no load is pending that would end: nothing
  // will free room. The latest of them is refused (busy), which frees its memory for the earlier ones.
  private breakDeadlock(): void {
    while (this.queue.length > 0) {
      const holders = [...this.tickets].filter((t) => t.bytes > 0);
      const waiting = this.queue.filter((w) => w.ticket.bytes > 0);
      if (holders.length === 0 || waiting.length < holders.length || this.loads > 0) return;
      this.expire(waiting[waiting.length - 1]);
      while (this.queue.length > 0 && this.fits(this.queue[0])) {
        const w = this.queue.shift()!;
        if (w.timer !== undefined) clearTimeout(w.timer);
        this.grant(w);
        w.resolve();
      }
    }
  }

  private expire(w: Waiter): void {
    const at = this.queue.indexOf(w);
    if (at < 0) return;
    this.queue.splice(at, 1);
    if (w.timer !== undefined) clearTimeout(w.timer);
    w.reject(new Busy(this.retryAfter));
    // The head may have been what blocked the others.
    if (at === 0) queueMicrotask(() => this.pump());
  }

  release(ticket: Ticket): void {
    if (ticket.released) return;
    ticket.released = true;
    ticket.bytes = 0;
    this.unearmark(ticket);
    this.tickets.delete(ticket);
    if (this.tickets.size === 0) this.crowd = 0;
    this.shrinkPool(); // one less holding memory: the crowd's heap may take more of the pool's room
    for (const w of this.queue.filter((w) => w.ticket === ticket)) {
      this.queue.splice(this.queue.indexOf(w), 1);
      if (w.timer !== undefined) clearTimeout(w.timer);
      w.reject(new Error("the memory reservation was released while it waited"));
    }
    if (ticket.claim !== undefined) this.leave(ticket.claim, ticket);
    for (const model of ticket.held) this.unholdModel(model);
    ticket.held.clear();
    this.pump();
  }

  // Model loads. `loads` counts loads in progress (they end, so waiting for them is no deadlock).
  private loads = 0;

  // Before a load streams: the model budget set aside for it, at once when a request admitted for this model
  // already did, else waiting its turn ahead of new arrivals. The returned function ends the claim; a load
  // that succeeded ends it by registering its model (modelLoaded).
  async claimLoad(name: string): Promise<() => void> {
    const who = {};
    this.loads++;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      this.loads--;
      this.leave(name, who);
      this.pump();
    };
    if (this.claims.has(name)) {
      this.join(name, who);
      return end;
    }
    const ticket = new Ticket(this, 0); // ahead of every request
    ticket.claim = name;
    try {
      await this.resize(ticket, 0);
    } catch (error) {
      this.loads--;
      throw error;
    }
    this.join(name, who);
    this.leave(name, ticket);
    return end;
  }

  // The cache loaded `model` under `name`: it counts from now on, and that load's claim ends.
  modelLoaded(name: string, model: Sized): void {
    this.models.set(model, { cached: true, holders: this.models.get(model)?.holders ?? 0 });
    this.claims.delete(name);
    this.shrinkPool();
    this.peak = Math.max(this.peak, this.usedBytes());
    this.pump();
  }

  // The cache keeps `model` again (a failed swap puts the old version back).
  modelKept(model: Sized): void {
    this.models.set(model, { cached: true, holders: this.models.get(model)?.holders ?? 0 });
  }

  // The cache dropped `model`: it counts until the last request holding it ends.
  modelEvicted(model: Sized): void {
    const entry = this.models.get(model);
    if (!entry) return;
    if (entry.holders > 0) entry.cached = false;
    else this.models.delete(model);
    this.pump();
  }

  holdModel(model: Sized): void {
    const entry = this.models.get(model);
    if (entry) entry.holders++;
    else this.models.set(model, { cached: false, holders: 1 });
  }

  private unholdModel(model: Sized): void {
    const entry = this.models.get(model);
    if (!entry) return;
    entry.holders--;
    if (entry.holders <= 0 && !entry.cached) this.models.delete(model);
  }
}

function positiveVar(env: Env, name: keyof Env, fallback: number, unit: string, integer = false): number {
  const raw: unknown = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = typeof raw === "number" ? raw : typeof raw === "string" && raw.trim() !== "" ? Number(raw) : NaN;
  if (!(Number.isFinite(value) && value > 0 && (!integer || Number.isInteger(value)))) {
    throw new EdgevitError(
      "model_unavailable",
      `the deployment's ${name} must be a positive ${integer ? "whole " : ""}number${unit}, got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

// MODEL_MEMORY_BUDGET_MB in bytes: the default when unset; a value that is not a positive number is a
// deployment error, refused with a sentence naming it rather than read as NaN (which disabled the budget).
export function budgetBytes(env: Env): number {
  return positiveVar(env, "MODEL_MEMORY_BUDGET_MB", DEFAULT_BUDGET_MB, " of MiB") * MiB;
}

export function ledgerSettings(env: Env): LedgerSettings {
  const capacityBytes = positiveVar(env, "ISOLATE_MEMORY_MB", DEFAULT_ISOLATE_MB, " of MiB") * MiB;
  const modelBudgetBytes = budgetBytes(env);
  if (capacityBytes <= FIXED_HEAP_BYTES + modelBudgetBytes) {
    throw new EdgevitError(
      "model_unavailable",
      `the deployment's ISOLATE_MEMORY_MB (${sizeText(capacityBytes)}) leaves no room for requests beside ` +
        `MODEL_MEMORY_BUDGET_MB (${sizeText(modelBudgetBytes)}) and the isolate's own ${sizeText(FIXED_HEAP_BYTES)}`,
    );
  }
  return {
    capacityBytes,
    fixedBytes: FIXED_HEAP_BYTES,
    modelBudgetBytes,
    queueLength: positiveVar(env, "ADMISSION_QUEUE_LENGTH", DEFAULT_QUEUE_LENGTH, "", true),
    crowdBytes: CROWD_HEAP_BYTES,
    waitMs: positiveVar(env, "ADMISSION_WAIT_SECONDS", DEFAULT_WAIT_SECONDS, " of seconds") * 1000,
  };
}

let isolate: MemoryLedger | undefined;

// This isolate's ledger, with the deployment's settings.
export function ledgerOf(env: Env): MemoryLedger {
  const settings = ledgerSettings(env);
  if (!isolate) isolate = new MemoryLedger(settings);
  else isolate.configure(settings);
  return isolate;
}

// --- What a request will hold ---------------------------------------------------------------------------

// A streamed upload is read through its source's window (core/image/bytes.ts, DEFAULT_MAX_WINDOW_BYTES).
// A byte stream (request, RPC and R2 bodies) is read straight into the window; another stream's chunk in
// hand beside it is reckoned at BYOB_READ_BYTES (its writer decides its size). A multipart form's reader
// (multipart.ts) adds its own buffer.
export const STREAM_CHUNK_BYTES = BYOB_READ_BYTES;
export const FORM_READER_BYTES = STREAM_CHUNK_BYTES + FORM_BUFFER_BYTES;

// What a streamed body holds before its image's header is read: the source's window, whatever the image,
// and `readerBytes` (STREAM_CHUNK_BYTES for a raw stream, FORM_READER_BYTES for a form). Once the header is read the decoder's own
// memoryBytes counts the source.
export function streamedBodyBytes(readerBytes: number): number {
  return DEFAULT_MAX_WINDOW_BYTES + readerBytes;
}

// The image's header and what its decoder will hold at one scale (the decoder's own memoryBytes(scale), its
// source's window or whole bytes included).
export interface ImagePlan {
  header: ImageHeader;
  scale: number;
  decoderBytes: number;
}

// The answer a route builds from the outputs, as far as it costs memory.
export type AnswerPlan =
  | { kind: "classify" | "embed" }
  | { kind: "hidden_states"; form: "npy" | "json" }
  | { kind: "attentions"; form: "npy" | "json" | "arrays" } // json is streamed; arrays: nested, over RPC
  | { kind: "picture"; size: number } // one PNG of size x size (/v1/pca, /v1/attention_map)
  | { kind: "frames"; size: number; base64: boolean } // one PNG per hidden state (/v1/pca?layer=all, /v1/see)
  // a connector's rows for each frame: npy and json streamed as the frames run (json a row at a time);
  // arrays collected, for the RPC answer's nested arrays or JSON with nearest=k (each row's nearest rows of
  // the LLM's table)
  | { kind: "image_tokens"; frames: number; form: "npy" | "json" | "arrays"; nearest?: NearestPlan };

export interface NearestPlan {
  k: number;
  table: EmbeddingsConfig;
}

// /v1/image_tokens in phases (worker/service.ts's runTokens resizes the reservation at each boundary): the
// decode, then the frames, then (a collected answer) the answer.
export type TokensPhase = "decode" | "frames" | "answer";

// Everything a request's reservation depends on, each part once it is known: before its header only the
// body is, after it the image at its decode scale, the model's plan, the capture buffers the run may grow
// and the answer it builds.
export interface RequestPlan {
  // Bytes the body holds beside the decoder's own figure: before the header, a streamed body's window and
  // reader (streamedBodyBytes) or whole bytes; once the decoder counts its source, only the reader's.
  body: number;
  image?: ImagePlan;
  model?: BundleHeader;
  captureGrowth?: number; // bytes the model's wasm memory grows by for this request's captures (whole pages)
  captureCopies?: number; // bytes of captures copied out of wasm memory (a hidden state, one layer's attention)
  answer?: AnswerPlan;
  phase?: TokensPhase; // /v1/image_tokens: one phase's bytes (unset: the most of its phases)
}

// The reservation a request needs, in bytes: its worst case from what `plan` knows.
export function reservationBytes(plan: RequestPlan): number {
  if (plan.model && plan.answer?.kind === "image_tokens") {
    const phases = imageTokensPhases(plan, plan.model, plan.answer);
    return plan.phase ? phases[plan.phase] : Math.max(phases.decode, phases.frames, phases.answer);
  }
  let bytes = REQUEST_HEAP_BYTES + plan.body;
  if (plan.image) bytes += plan.image.decoderBytes;
  if (plan.image && plan.model) {
    const { header, scale } = plan.image;
    const pp = plan.model.preprocessing;
    bytes += StreamingPreprocessor.memoryBytes(pp, decodedSize(header, scale), header.orientation);
  }
  if (plan.model) bytes += outputBytes(plan.model.config) + (plan.captureCopies ?? 0) + (plan.captureGrowth ?? 0);
  if (plan.model && plan.answer) bytes += answerBytes(plan.answer, plan.model.config);
  return bytes;
}

// The longest a float32 prints as a JSON number ("-1.1754943508222875e-38", 17 digits) with its comma.
export const JSON_NUMBER_BYTES = 24;
// A streamed answer's chunks alive at once: the one the runtime writes, the one queued for it (the router's
// untilSent) and the one being made.
export const CHUNKS_IN_FLIGHT = 3;

// /v1/image_tokens' phases, each what the request holds then (the JS heap of REQUEST_HEAP_BYTES in each):
//   decode: the body's reader, the decoder (its source included) and the streamed resize, which makes step 1's
//     image (Idefics3) or the model's input picture;
//   frames: once the decoder and the source are let go, step 1's image, the tiles' band and global view
//     (tiles.ts; made at the first frame), one frame's rows copied out of wasm memory, and the answer so
//     far: streamed, the chunks in flight (.npy: a frame's rows each; JSON: a row's text, the number array
//     and string it is made from); collected, every frame's rows;
//   answer (collected only): the rows, the nested arrays or JSON text (~48 bytes a number) and with
//     nearest=k its comparisons and their part of the answer.
// Without splitting (LLaVA's one frame) the streamed resize is held until the frame is written.
function imageTokensPhases(
  plan: RequestPlan,
  model: BundleHeader,
  answer: Extract<AnswerPlan, { kind: "image_tokens" }>,
): Record<TokensPhase, number> {
  const c = model.config;
  const { lmDim } = towerOf(c);
  const rows = imageTokens(c) * lmDim * 4; // one frame's rows, f32
  const numbers = answer.frames * imageTokens(c) * lmDim;
  let decode = REQUEST_HEAP_BYTES + plan.body;
  let held = 0; // what the frames are made from
  if (plan.image) {
    const { header, scale } = plan.image;
    const pp = model.preprocessing;
    const decoded = decodedSize(header, scale);
    const s = pp.splitting;
    const step = s ? longestEdgeStep({ ...pp, splitting: s }, header) : pp;
    const streamed = StreamingPreprocessor.memoryBytes(step, decoded, header.orientation);
    decode += plan.image.decoderBytes + streamed;
    if (s) {
      const resized = step.size as { height: number; width: number };
      held = resized.width * resized.height * 3 + Tiles.memoryBytes(resized, s, pp.resample, answer.frames > 1);
    } else {
      held = streamed;
    }
  }
  const chunk = answer.form === "npy" ? rows : lmDim * JSON_NUMBER_BYTES + 4;
  const row = lmDim * (JSON_NUMBER_BYTES + 8); // its string and number array
  const inFlight = answer.form === "npy" ? CHUNKS_IN_FLIGHT * chunk : rows + CHUNKS_IN_FLIGHT * chunk + row;
  const frames = REQUEST_HEAP_BYTES + held + (answer.form === "arrays" ? numbers * 4 + rows : inFlight);
  if (answer.form !== "arrays") return { decode, frames, answer: 0 };
  const nearest = answer.nearest ? nearestBytes(answer.nearest.table, numbers / lmDim, answer.nearest.k) : 0;
  return { decode, frames, answer: REQUEST_HEAP_BYTES + numbers * 4 + numbers * 48 + nearest };
}

function decodedSize(header: ImageHeader, scale: number): { width: number; height: number } {
  return { width: Math.ceil(header.width / scale), height: Math.ceil(header.height / scale) };
}

// Tokens of a config: patches, the class token, the distillation token.
// Logits and the last hidden state copied out of wasm memory by every run.
function outputBytes(c: ModelConfig): number {
  return (c.classes + tokensOf(c) * c.dim) * 4;
}

// The streaming preprocessor (core/preprocess/stream.ts, StreamingPreprocessor.memoryBytes): the rows the
// vertical pass still reads (a ring of at most one output row's filter support, at the output width), the
// resized picture, a decoded row; for EXIF orientations 5-8 the float64 sums of the columns it accumulates (a
// few at once, each the oriented width) and one rounded column.

// What a route's answer holds beside the outputs: JSON text with its number arrays (~24 bytes a number,
// the text and the arrays it is built from), .npy bytes, PNG frames with their pixels (base64 for /v1/see).
function answerBytes(answer: AnswerPlan, c: ModelConfig): number {
  const tokens = tokensOf(c);
  switch (answer.kind) {
    case "classify":
      return c.classes * 48;
    case "embed":
      return c.dim * 48;
    case "hidden_states":
      return answer.form === "npy" ? tokens * c.dim * 4 : tokens * c.dim * 48;
    case "attentions": {
      // npy: the file beside the copied probabilities; JSON: one head's text at a time; arrays: every number.
      const numbers = c.heads * tokens * tokens;
      return answer.form === "npy" ? numbers * 4 : answer.form === "json" ? tokens * tokens * 48 : numbers * 48;
    }
    case "picture":
      return answer.size * answer.size * 3 * 2 + c.imageSize * c.imageSize * 3;
    case "image_tokens": // in phases: imageTokensPhases
      return 0;
    case "frames": {
      const frames = (c.layers + 1) * answer.size * answer.size * 3;
      return frames * (answer.base64 ? 4 : 2) + c.imageSize * c.imageSize * 3 + c.layers * c.heads * tokens * 48;
    }
  }
}
