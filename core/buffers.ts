// The isolate's pool of large buffers (a progressive JPEG's coefficient planes, the PNG decoder's rows, its
// inflater's window, an interlaced PNG's picture). A request that is done hands its buffers back and the
// next one of the same size reuses them, instead of leaving them for the garbage collector, which frees
// ArrayBuffers only once enough have piled up: under concurrent requests that pile is what goes over the
// isolate's memory (docs/MEMORY.md, "Concurrent requests").
//
// Buffers come in size classes (eight per doubling, so a buffer is at most 1/8 larger than asked for) and
// are handed out zeroed. What the pool keeps free is bounded by its cap and by its host's room (a Worker's
// memory ledger counts the free buffers and shrinks the pool when a reservation needs the room): a buffer
// handed back while its request's reservation still counts it is parked until the host says the room is
// there (settle(), once that reservation has shrunk); what the room cannot take then is freed at once
// (freeNow: detached, not left for the collector), so the pool never holds memory nobody counts. A request
// that needs a class the pool has none of takes a larger free buffer its reservation counts (earmarked)
// rather than drop it and make one.
//
// A free buffer is kept while requests still ask for its size: one not handed out again within
// IDLE_ACQUIRES acquisitions goes, and when a buffer handed back does not fit under the cap, the free
// buffers idle longest make room for it. A mix of request kinds so keeps the kinds that still come, not
// the previous kind's buffers.

const MIN_CLASS = 4096;

// Acquisitions a free buffer waits to be handed out again before it goes: a progressive JPEG's or a PNG's
// decode takes up to eight, so about eight requests of other kinds.
export const IDLE_ACQUIRES = 64;

// The size class of `bytes`: a multiple of 4 KiB, and of 1/8 of the power of two below it.
export function sizeClass(bytes: number): number {
  if (bytes <= MIN_CLASS) return MIN_CLASS;
  const step = Math.max(MIN_CLASS, 2 ** (Math.floor(Math.log2(bytes - 1)) - 3));
  return Math.ceil(bytes / step) * step;
}

export interface PoolStats {
  allocated: number; // buffers made
  reused: number; // buffers handed out again
  dropped: number; // buffers handed back and let go (over the cap or the host's room)
  acquiredBytes: number; // bytes handed out since the pool was made, reused or not
  allocatedBytes: number; // bytes of the buffers made
  droppedBytes: number; // bytes of the buffers let go (freed at once, or gone with a transfer)
}

// A pool's stats before it has handed anything out.
export function emptyPoolStats(): PoolStats {
  return { allocated: 0, reused: 0, dropped: 0, acquiredBytes: 0, allocatedBytes: 0, droppedBytes: 0 };
}

// A free buffer and the acquisition count when it was handed back.
interface Free {
  buffer: ArrayBuffer;
  at: number;
}

export class BufferPool {
  private readonly free = new Map<number, Free[]>(); // per size class, the most recently handed back last
  private acquisitions = 0;
  // Handed back, the most recently last: still inside the reservation of the request that handed them back
  // until settle() keeps or frees them.
  private parked: Free[] = [];
  private parkedBytes = 0;
  private kept = 0; // bytes of the free buffers
  private lent = 0; // bytes handed out and not handed back
  // Bytes of the free buffers that the host counts inside reservations (lent to requests that may reuse
  // them) rather than as the pool's: the first buffer made anew lets them go.
  private earmarked = 0;
  readonly stats: PoolStats = emptyPoolStats();
  // How many free bytes the host lets the pool keep right now (a ledger's room); unbounded without a host.
  room: () => number = () => Number.POSITIVE_INFINITY;
  // With a host, a buffer handed back is parked until settle(); without one it is kept or dropped at once.
  hosted = false;

  readonly capBytes: number;

  constructor(capBytes: number) {
    this.capBytes = capBytes;
  }

  get freeBytes(): number {
    return this.kept;
  }

  // The free bytes the host counts as the pool's own.
  get countedBytes(): number {
    return this.kept - this.earmarked;
  }

  // Counts up to `bytes` of the free buffers inside a reservation instead; returns how many.
  earmark(bytes: number): number {
    const lent = Math.max(0, Math.min(bytes, this.kept - this.earmarked));
    this.earmarked += lent;
    return lent;
  }

  // A reservation that had `bytes` earmarked has shrunk or ended: they count as the pool's again.
  unearmark(bytes: number): void {
    this.earmarked = Math.max(0, this.earmarked - bytes);
  }

  get inUseBytes(): number {
    return this.lent;
  }

  // A zeroed buffer of sizeClass(bytes) bytes or more (views of it give their length).
  acquire(bytes: number): ArrayBuffer {
    const size = sizeClass(bytes);
    this.acquisitions++;
    this.dropIdle();
    this.stats.acquiredBytes += size;
    this.lent += size;
    const reused = this.free.get(size)?.pop()?.buffer;
    if (reused) {
      this.kept -= size;
      this.earmarked = Math.max(0, Math.min(this.earmarked - size, this.kept));
      this.stats.reused++;
      new Uint8Array(reused).fill(0);
      return reused;
    }
    const unparked = this.unpark(size);
    if (unparked) {
      this.stats.reused++;
      new Uint8Array(unparked).fill(0);
      return unparked;
    }
    // None of its class. The reservation it comes out of may have counted earmarked free buffers for this
    // room: the smallest larger one is handed out whole (its room is counted already), else some go and it
    // is made anew.
    const larger = this.takeLarger(size, this.earmarked);
    if (larger) {
      this.lent += larger.byteLength - size;
      this.kept -= larger.byteLength;
      this.earmarked = Math.max(0, Math.min(this.earmarked - larger.byteLength, this.kept));
      this.stats.reused++;
      new Uint8Array(larger).fill(0);
      return larger;
    }
    if (this.earmarked > 0) {
      const drop = Math.min(this.earmarked, size);
      this.earmarked -= drop;
      this.dropAtLeast(drop);
    }
    this.stats.allocated++;
    this.stats.allocatedBytes += size;
    return new ArrayBuffer(size);
  }

  // Hands back a buffer acquire() gave for `bytes` (null is ignored, so that a finally can hand back what it
  // may not have acquired). The caller keeps no view of it. A buffer transferred since (detached by a BYOB
  // read) only counts as handed back.
  release(buffer: ArrayBuffer | null | undefined, bytes = buffer?.byteLength ?? 0): void {
    if (!buffer) return;
    const transferred = buffer.byteLength < sizeClass(bytes);
    this.lent -= transferred ? sizeClass(bytes) : buffer.byteLength;
    if (transferred) {
      // its memory went with the transfer, to whoever holds it now
      this.dropped(sizeClass(bytes));
      return;
    }
    if (this.hosted) this.park({ buffer, at: this.acquisitions });
    else this.keep(buffer);
  }

  // The host has room again: parked buffers are kept while it lasts, the first handed back first; the rest
  // are freed at once. Held uncounted for the next request of their size, they were memory beside the
  // host's count (bench:load saw the isolate over 128 MiB so).
  settle(): void {
    const parked = this.parked;
    this.parked = [];
    this.parkedBytes = 0;
    for (const entry of parked) this.keep(entry.buffer);
  }

  // Parks a buffer handed back, within the cap: the parked buffers handed back longest ago make room.
  private park(entry: Free): void {
    const size = entry.buffer.byteLength;
    if (size > this.capBytes) {
      this.drop(entry.buffer);
      return;
    }
    while (this.parkedBytes + size > this.capBytes) {
      const oldest = this.parked.shift()!.buffer;
      this.parkedBytes -= oldest.byteLength;
      this.drop(oldest);
    }
    this.parked.push(entry);
    this.parkedBytes += size;
  }

  // Lets a buffer go, its memory at once (freeNow).
  private drop(buffer: ArrayBuffer): void {
    this.dropped(buffer.byteLength);
    freeNow(buffer);
  }

  private dropped(size: number): void {
    this.stats.dropped++;
    this.stats.droppedBytes += size;
  }

  // Takes the free buffer of the smallest class above `size` and at most `most` bytes, if any.
  private takeLarger(size: number, most: number): ArrayBuffer | undefined {
    let best = 0;
    for (const [larger, list] of this.free) {
      if (larger > size && larger <= most && list.length > 0 && (best === 0 || larger < best)) best = larger;
    }
    return best > 0 ? this.free.get(best)!.pop()!.buffer : undefined;
  }

  // The parked buffer of `size` handed back last, if any.
  private unpark(size: number): ArrayBuffer | undefined {
    for (let i = this.parked.length - 1; i >= 0; i--) {
      if (this.parked[i].buffer.byteLength !== size) continue;
      this.parkedBytes -= size;
      return this.parked.splice(i, 1)[0].buffer;
    }
    return undefined;
  }

  // Drops free buffers, the largest first, until at most `bytes` are kept.
  trim(bytes: number): void {
    if (this.kept <= bytes) return;
    const sizes = [...this.free.keys()].sort((a, b) => b - a);
    for (const size of sizes) {
      const list = this.free.get(size)!;
      while (list.length > 0 && this.kept > bytes) {
        this.drop(list.pop()!.buffer);
        this.kept -= size;
      }
    }
    this.earmarked = Math.min(this.earmarked, this.kept);
  }

  // Drops free buffers, those idle longest first, until at least `bytes` are gone (or none is left).
  private dropAtLeast(bytes: number): void {
    const target = this.kept - bytes;
    while (this.kept > target && this.dropOldest());
  }

  // Drops the free buffers not handed out again within IDLE_ACQUIRES acquisitions.
  private dropIdle(): void {
    for (const [size, list] of this.free) {
      // oldest first: stop at the first still young
      let idle = 0;
      while (idle < list.length && this.acquisitions - list[idle].at > IDLE_ACQUIRES) idle++;
      if (idle === 0) continue;
      for (const entry of list.splice(0, idle)) this.drop(entry.buffer);
      this.kept -= idle * size;
    }
    this.earmarked = Math.min(this.earmarked, this.kept);
    let idle = 0;
    while (idle < this.parked.length && this.acquisitions - this.parked[idle].at > IDLE_ACQUIRES) idle++;
    for (const { buffer } of this.parked.splice(0, idle)) {
      this.parkedBytes -= buffer.byteLength;
      this.drop(buffer);
    }
  }

  // Drops the free buffer handed back longest ago; false when none is left.
  private dropOldest(): boolean {
    let oldest: [number, Free[]] | undefined;
    for (const entry of this.free) {
      const [, list] = entry;
      if (list.length > 0 && (!oldest || list[0].at < oldest[1][0].at)) oldest = entry;
    }
    if (!oldest) return false;
    const [size, list] = oldest;
    this.drop(list.shift()!.buffer);
    this.kept -= size;
    this.earmarked = Math.min(this.earmarked, this.kept);
    return true;
  }

  // Keeps `buffer` free if it fits the cap and the host's room, else drops it. Whether it was kept.
  private keep(buffer: ArrayBuffer): boolean {
    const size = buffer.byteLength;
    if (size > this.capBytes || this.countedBytes + size > this.room()) {
      this.drop(buffer);
      return false;
    }
    // under the cap: the buffers idle longest make room
    while (this.kept + size > this.capBytes && this.dropOldest());
    const list = this.free.get(size);
    const entry = { buffer, at: this.acquisitions };
    if (list) list.push(entry);
    else this.free.set(size, [entry]);
    this.kept += size;
    return true;
  }
}

// Frees a buffer's memory now instead of at V8's next full collection: transfer(0) detaches it, and the
// backing store of a detached ArrayBuffer nothing else shares is freed at once. An ArrayBuffer let go is
// freed only by a full collection once it has outlived the young generation (the pool's buffers, a
// request's), and V8 starts one for ArrayBuffers only after some 64 MiB of them have piled up since the
// last: under concurrent requests that pile was what took the isolate over 128 MiB beside a ledger that
// counted everything live (docs/MEMORY.md, "Concurrent requests"). Every view of `buffer` reads as empty
// from then on, so only its last holder may call this. A buffer detached already (a BYOB read's) is left
// alone; a runtime without transfer leaves it to the collector, and so does a buffer that cannot be
// detached (a WebAssembly.Memory's, a SharedArrayBuffer): freeing early is never worth failing a request.
export function freeNow(buffer: ArrayBuffer | null | undefined): void {
  const b = buffer as (ArrayBuffer & { transfer?: (length: number) => ArrayBuffer }) | null | undefined;
  if (!b || b.byteLength === 0 || typeof b.transfer !== "function") return;
  try {
    b.transfer(0);
  } catch {
    // not detachable: the collector frees it
  }
}

// The most the isolate's pool keeps free: two 12 MP progressive JPEGs' coefficients at 1/8, or one at 1/4.
export const POOL_CAP_BYTES = 24 << 20;

// The isolate's pool.
export const buffers = new BufferPool(POOL_CAP_BYTES);
