// The isolate's buffer pool on its own: size classes, reuse, zeroing, its cap.

import { describe, expect, test } from "vitest";
import { BufferPool, freeNow, IDLE_ACQUIRES, sizeClass } from "../../core/buffers.ts";

describe("BufferPool", () => {
  test("size classes: 4 KiB at least, at most 1/8 over what is asked, monotonic", () => {
    expect(sizeClass(1)).toBe(4096);
    expect(sizeClass(4096)).toBe(4096);
    expect(sizeClass(4097)).toBe(8192);
    let last = 0;
    for (let n = 1; n < 64 << 20; n = Math.ceil(n * 1.37) + 1) {
      const c = sizeClass(n);
      expect(c).toBeGreaterThanOrEqual(n);
      expect(c).toBeGreaterThanOrEqual(last);
      if (n > 32768) expect(c / n).toBeLessThanOrEqual(1.125);
      expect(c % 4096).toBe(0);
      last = c;
    }
  });

  test("a buffer handed back is handed out again, zeroed, for any size of its class", () => {
    const pool = new BufferPool(1 << 20);
    const a = pool.acquire(100_000);
    new Uint8Array(a).fill(9);
    pool.release(a);
    expect(pool.freeBytes).toBe(a.byteLength);
    const b = pool.acquire(a.byteLength - 100);
    expect(b).toBe(a);
    expect(new Uint8Array(b).every((v) => v === 0)).toBe(true);
    expect(pool.freeBytes).toBe(0);
    // Another class is a new buffer.
    expect(pool.acquire(300_000)).not.toBe(a);
    expect(pool.stats).toMatchObject({ allocated: 2, reused: 1 });
    expect(pool.stats.allocatedBytes).toBe(a.byteLength + sizeClass(300_000));
  });

  test("what is kept stays within the cap and the host's room; trim drops the largest first", () => {
    const pool = new BufferPool(200_000);
    const [a, b, c] = [pool.acquire(100_000), pool.acquire(50_000), pool.acquire(90_000)];
    for (const x of [a, b, c]) pool.release(x);
    // c, handed back last, does not fit beside a and b: a, handed back longest ago, makes room
    expect(pool.freeBytes).toBe(b.byteLength + c.byteLength);
    expect(pool.stats.dropped).toBe(1);
    expect(pool.stats.droppedBytes).toBe(sizeClass(100_000));
    // and its memory is freed at once (detached), not left for the collector
    expect(a.byteLength).toBe(0);
    expect(b.byteLength).toBe(sizeClass(50_000));
    expect(pool.acquire(100_000)).not.toBe(a);
    expect(pool.acquire(90_000)).toBe(c);
    pool.release(pool.acquire(50_000));
    expect(pool.freeBytes).toBe(b.byteLength);
    pool.trim(60_000);
    expect(pool.freeBytes).toBe(b.byteLength);
    let room = 0;
    pool.room = () => room;
    pool.hosted = true;
    pool.release(pool.acquire(50_000));
    expect(pool.freeBytes).toBe(0);
    room = 1 << 20;
    pool.settle();
    expect(pool.freeBytes).toBe(b.byteLength);
  });

  test("a free buffer not handed out again within IDLE_ACQUIRES acquisitions goes", () => {
    const pool = new BufferPool(64 << 20);
    const old = pool.acquire(1 << 20);
    const other = pool.acquire(1 << 21);
    pool.release(old);
    pool.release(other);
    const kept = pool.freeBytes;
    expect(kept).toBe(old.byteLength + other.byteLength);
    // requests of another kind: their one buffer is reused each time, and `other` once, halfway
    for (let i = 0; i < IDLE_ACQUIRES; i++) {
      if (i === IDLE_ACQUIRES / 2) pool.release(pool.acquire(1 << 21));
      else pool.release(pool.acquire(4096));
    }
    expect(pool.freeBytes).toBe(kept + 4096);
    pool.release(pool.acquire(4096)); // the acquisition past IDLE_ACQUIRES: `old` goes, the rest stay
    expect(pool.freeBytes).toBe(other.byteLength + 4096);
    expect(pool.acquire(1 << 20)).not.toBe(old);
    expect(pool.stats.dropped).toBe(1);
    // what the pool lends and keeps adds up to every buffer it made, less those it let go
    expect(pool.inUseBytes).toBe(sizeClass(1 << 20));
  });

  test("a buffer handed back is parked until the host settles: kept if its room allows, else freed at once", () => {
    const pool = new BufferPool(250_000);
    let room = 0;
    pool.room = () => room;
    pool.hosted = true;
    const a = pool.acquire(100_000);
    new Uint8Array(a).fill(9);
    pool.release(a);
    // Parked (its request's reservation still counts it): handed out again before the host settles.
    expect(pool.freeBytes).toBe(0);
    const again = pool.acquire(100_000);
    expect(again).toBe(a);
    expect(new Uint8Array(again).every((v) => v === 0)).toBe(true);
    expect(pool.stats).toMatchObject({ allocated: 1, reused: 1, dropped: 0 });
    // The parked buffers stay within the cap: the one handed back longest ago goes.
    const b = pool.acquire(100_000);
    const c = pool.acquire(100_000);
    for (const x of [a, b, c]) pool.release(x);
    expect(pool.stats.dropped).toBe(1);
    expect(a.byteLength).toBe(0); // freed at once
    // The host has room for one: it is kept (counted), the other freed at once, never held uncounted.
    room = 150_000;
    pool.settle();
    expect(pool.freeBytes).toBe(b.byteLength);
    expect(c.byteLength).toBe(0);
    expect(pool.stats).toMatchObject({ dropped: 2, droppedBytes: 2 * sizeClass(100_000) });
    expect(pool.acquire(100_000)).toBe(b);
    expect(pool.inUseBytes).toBe(sizeClass(100_000));
  });

  test("a parked buffer not handed out again within IDLE_ACQUIRES acquisitions goes", () => {
    const pool = new BufferPool(64 << 20);
    pool.room = () => 0;
    pool.hosted = true;
    const old = pool.acquire(1 << 20);
    pool.release(old);
    for (let i = 0; i < IDLE_ACQUIRES; i++) pool.release(pool.acquire(4096));
    expect(pool.stats.dropped).toBe(0);
    pool.release(pool.acquire(4096));
    expect(pool.stats.dropped).toBe(1);
    expect(pool.acquire(1 << 20)).not.toBe(old);
  });

  test("a class the pool has none of takes a larger free buffer its reservation counts, whole", () => {
    const pool = new BufferPool(1 << 20);
    const big = pool.acquire(200_000);
    new Uint8Array(big).fill(9);
    pool.release(big);
    // Without an earmark the larger buffer is the pool's own: a smaller class is made anew beside it.
    const other = pool.acquire(50_000);
    expect(other).not.toBe(big);
    pool.release(other);
    expect(pool.freeBytes).toBe(big.byteLength + other.byteLength);
    // A reservation counts both; a class of neither takes the smallest larger one instead of dropping.
    pool.earmark(pool.freeBytes);
    const small = pool.acquire(20_000);
    expect(small).toBe(other);
    expect(new Uint8Array(small).every((v) => v === 0)).toBe(true);
    expect(pool.acquire(100_000)).toBe(big);
    expect(pool.stats).toMatchObject({ allocated: 2, reused: 2, dropped: 0 });
    expect(pool.countedBytes).toBe(0);
    expect(pool.inUseBytes).toBe(big.byteLength + other.byteLength);
    // Handed back with the size it was asked for, it is kept as its own class.
    pool.release(big, 100_000);
    pool.release(small, 20_000);
    expect(pool.freeBytes).toBe(big.byteLength + other.byteLength);
    expect(pool.inUseBytes).toBe(0);
  });
});

describe("freeNow", () => {
  test("detaches a buffer it is handed, so its memory goes at once", () => {
    const buffer = new ArrayBuffer(1 << 20);
    const view = new Uint8Array(buffer);
    freeNow(buffer);
    expect(buffer.byteLength).toBe(0);
    expect(view.length).toBe(0);
  });

  test("gives the memory back before any collection: the isolate's ArrayBuffer bytes drop by its size", () => {
    const size = 32 << 20;
    const buffer = new ArrayBuffer(size);
    new Uint8Array(buffer).fill(1);
    const before = process.memoryUsage().arrayBuffers;
    expect(before).toBeGreaterThanOrEqual(size);
    freeNow(buffer); // synchronous: no collection can run between the two readings
    expect(process.memoryUsage().arrayBuffers).toBeLessThanOrEqual(before - size);
  });

  test("leaves a buffer that cannot be detached as it is, without throwing", () => {
    const memory = new WebAssembly.Memory({ initial: 1 });
    expect(() => freeNow(memory.buffer)).not.toThrow();
    expect(memory.buffer.byteLength).toBe(65536);
    const shared = new SharedArrayBuffer(16);
    expect(() => freeNow(shared as unknown as ArrayBuffer)).not.toThrow();
    expect(shared.byteLength).toBe(16);
    expect(() => freeNow(null)).not.toThrow();
  });
});
