// The memory ledger on its own (worker/memory.ts): admission in arrival order, bounded waits and queue,
// refusals of what could never fit, growth ahead of later arrivals, a deadlock of growing requests broken,
// models counted while cached or held and the model budget set aside while one loads, caches counted beside
// the fixed heap, release on every path.
// Sizes are in KiB so the arithmetic can be checked by eye.

import { describe, expect, test } from "vitest";
import { BufferPool } from "../../core/buffers.ts";
import { Busy, type LedgerSettings, MemoryLedger, type Ticket } from "../../worker/memory.ts";
import { EdgevitError } from "../../core/errors.ts";

const K = 1024;
// 100 K in all: 10 K of fixed heap, a model budget of 40 K; requests alone have 50 K beside the budget.
const SETTINGS: LedgerSettings = {
  capacityBytes: 100 * K,
  fixedBytes: 10 * K,
  modelBudgetBytes: 40 * K,
  queueLength: 3,
  waitMs: 200,
};

// Each ledger hosts a pool of its own (the isolate's is the default).
const ledger = (overrides: Partial<LedgerSettings> = {}, pool = new BufferPool(1 << 30)) =>
  new MemoryLedger({ ...SETTINGS, ...overrides }, pool);

// Settles the microtasks admission runs on.
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

// The order in which promises of tickets settle, by label.
function recorder() {
  const order: string[] = [];
  const track = <T>(label: string, p: Promise<T>): Promise<T> =>
    p.then(
      (value) => {
        order.push(label);
        return value;
      },
      (error: unknown) => {
        order.push(`${label}:${(error as EdgevitError).code ?? "error"}`);
        throw error;
      },
    );
  return { order, track };
}

describe("admission", () => {
  test("what fits is admitted at once; the rest waits and comes in arrival order as memory is released", async () => {
    const l = ledger();
    const { order, track } = recorder();
    const a = await l.admit(60 * K);
    const b = track("b", l.admit(40 * K));
    const c = track("c", l.admit(20 * K));
    // c would fit beside a (10 + 60 + 20 = 90 K) but b arrived first and does not: nobody overtakes the head.
    const d = track("d", l.admit(10 * K));
    await tick();
    expect(order).toEqual([]);
    expect(l.state()).toMatchObject({ reservedBytes: 60 * K, inFlight: 1, queued: 3 });
    a.release();
    const [tb, tc, td] = await Promise.all([b, c, d]);
    expect(order).toEqual(["b", "c", "d"]);
    expect(l.state()).toMatchObject({ reservedBytes: 70 * K, usedBytes: 80 * K, inFlight: 3, queued: 0 });
    for (const t of [tb, tc, td]) t.release();
    expect(l.state()).toMatchObject({ reservedBytes: 0, usedBytes: 10 * K, inFlight: 0, queued: 0 });
    expect(l.peakBytes).toBeLessThanOrEqual(SETTINGS.capacityBytes);
  });

  test("a waiter is refused busy after the wait bound, with Retry-After in whole seconds", async () => {
    const l = ledger({ waitMs: 50 });
    const a = await l.admit(80 * K);
    const started = Date.now();
    const refused = await l.admit(30 * K).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Busy);
    expect((refused as Busy).code).toBe("busy");
    expect((refused as Busy).retryAfter).toBe(1);
    expect((refused as Busy).message).toMatch(/busy with other images/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(40);
    expect(l.state()).toMatchObject({ reservedBytes: 80 * K, queued: 0 });
    a.release();
    expect(l.state().usedBytes).toBe(10 * K);
  });

  test("a full queue refuses at once", async () => {
    const l = ledger();
    const a = await l.admit(90 * K);
    const waiting = [l.admit(K), l.admit(K), l.admit(K)];
    const refused = await l.admit(K).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Busy);
    expect(l.state().queued).toBe(3);
    a.release();
    for (const t of await Promise.all(waiting)) t.release();
    expect(l.state()).toMatchObject({ reservedBytes: 0, queued: 0 });
  });

  test("what could never fit, even alone, is refused at once with the caller's sentence", async () => {
    const l = ledger();
    const other = await l.admit(30 * K);
    const tooLarge = (room: number) => new EdgevitError("payload_too_large", `room ${room / K} K`);
    // 90 K of capacity beside the fixed heap: 91 K never fits, whoever else is in flight.
    await expect(l.admit(91 * K, undefined, tooLarge)).rejects.toMatchObject({
      code: "payload_too_large",
      message: "room 90 K",
    });
    // A request for a model that must be loaded has the model budget set aside: 50 K alone.
    await expect(l.admit(51 * K, "cold", tooLarge)).rejects.toMatchObject({ message: "room 50 K" });
    expect(l.state()).toMatchObject({ reservedBytes: 30 * K, inFlight: 1, queued: 0, loading: [] });
    other.release();
  });
});

describe("the heap of the requests present", () => {
  test("while another request holds memory, each request waiting beside it has its heap counted", async () => {
    const l = ledger({ crowdBytes: 5 * K, queueLength: 8 });
    const { order, track } = recorder();
    const a = await l.admit(40 * K);
    const b = await l.admit(50 * K); // 10 + 40 + 50 = 100 K
    const c = track("c", l.admit(45 * K));
    const d = track("d", l.admit(5 * K));
    const e = track("e", l.admit(5 * K));
    await tick();
    expect(order).toEqual([]);
    b.release();
    await tick();
    // c would fit beside a (10 + 40 + 45 = 95 K), but five requests were present at once and only a and c
    // would hold memory: three more heaps of 5 K, 110 K.
    expect(order).toEqual([]);
    expect(l.state()).toMatchObject({ reservedBytes: 40 * K, queued: 3 });
    a.release();
    await tick();
    // c alone holds memory: 55 K; d beside it with three heaps counted (75 K), e with two (75 K).
    expect(order).toEqual(["c", "d", "e"]);
    const [tc, td, te] = await Promise.all([c, d, e]);
    expect(l.state()).toMatchObject({ reservedBytes: 55 * K, queued: 0 });
    for (const t of [tc, td, te]) t.release();
    expect(l.peakBytes).toBeLessThanOrEqual(SETTINGS.capacityBytes);
  });

  test("requests that came and went count until the isolate is idle again", async () => {
    const l = ledger({ crowdBytes: 5 * K });
    const a = await l.admit(40 * K);
    const small = await Promise.all([l.admit(K), l.admit(K), l.admit(K)]); // four at once
    for (const t of small) t.release();
    const { order, track } = recorder();
    // 10 + 40 + 45 = 95 K, but the two of the four gone still count: 105 K.
    const b = track("b", l.admit(45 * K));
    await tick();
    expect(order).toEqual([]);
    a.release();
    const tb = await b; // alone it fits
    expect(order).toEqual(["b"]);
    tb.release();
    // Idle: the count starts over, and the same two fit at once.
    const c = await l.admit(40 * K);
    const d = await l.admit(45 * K);
    expect(l.state()).toMatchObject({ reservedBytes: 85 * K, queued: 0 });
    c.release();
    d.release();
  });

  test("the head is admitted when nobody else holds memory, however many wait behind it", async () => {
    // 90 K beside the fixed heap: the head takes all of it; the eight waiting behind it would count 40 K.
    const l = ledger({ crowdBytes: 5 * K, queueLength: 9 });
    const { order, track } = recorder();
    const a = await l.admit(20 * K);
    const head = track("head", l.admit(90 * K));
    const behind = Array.from({ length: 8 }, (_, i) => track(`w${i}`, l.admit(K)));
    await tick();
    expect(order).toEqual([]);
    a.release();
    await tick();
    expect(order).toEqual(["head"]);
    expect(l.state()).toMatchObject({ reservedBytes: 90 * K, usedBytes: 100 * K, queued: 8 });
    (await head).release();
    for (const t of await Promise.all(behind)) t.release();
    expect(order.slice(1)).toEqual(Array.from({ length: 8 }, (_, i) => `w${i}`));
    expect(l.state()).toMatchObject({ reservedBytes: 0, queued: 0 });
  });

  test("a request in flight grows beside the crowd it was admitted with, not the requests that came after it", async () => {
    const l = ledger({ crowdBytes: 10 * K, queueLength: 8 });
    const a = await l.admit(30 * K);
    const b = await l.admit(30 * K); // 70 K, two present
    const waiting = [1, 2, 3].map(() => l.admit(31 * K)); // 101 K each: they wait, five present
    await tick();
    expect(l.state()).toMatchObject({ reservedBytes: 60 * K, queued: 3 });
    // 10 + 50 + 30 = 90 K: at once, though the three that arrived after a would count 30 K more.
    await a.resize(50 * K);
    expect(l.state()).toMatchObject({ reservedBytes: 80 * K, queued: 3 });
    a.release();
    b.release();
    // Each alone in turn (beside another, the crowd of five leaves no room for the next).
    for (const w of waiting) (await w).release();
    expect(l.state()).toMatchObject({ reservedBytes: 0, queued: 0 });
  });

  test("a request holding memory that waits to grow is not kept waiting by the count once it is alone", async () => {
    const l = ledger({ crowdBytes: 10 * K, queueLength: 8 });
    const { order, track } = recorder();
    const a = await l.admit(40 * K);
    const b = await l.admit(35 * K); // 85 K
    const waiting = [1, 2, 3].map((i) => track(`w${i}`, l.admit(20 * K)));
    // a grows to 80 K: 10 + 80 + 35 = 125 K with b; alone 90 K, though the three others present would count 30 K.
    const grow = track("a grows", a.resize(80 * K));
    await tick();
    expect(order).toEqual([]);
    b.release();
    await grow;
    expect(order).toEqual(["a grows"]);
    a.release();
    for (const t of await Promise.all(waiting)) t.release();
    expect(order).toEqual(["a grows", "w1", "w2", "w3"]);
  });
});

describe("growth", () => {
  test("a request that grows goes before later arrivals, and shrinking frees room at once", async () => {
    const l = ledger();
    const { order, track } = recorder();
    const a = await l.admit(50 * K);
    const b = track("b", l.admit(40 * K)); // waits: 10 + 50 + 40 = 100 K fits... exactly
    await tick();
    expect(order).toEqual(["b"]);
    const c = track("c", l.admit(20 * K)); // waits for room
    const grow = track("a grows", a.resize(60 * K)); // a arrived before c
    await tick();
    expect(order).toEqual(["b"]);
    (await b).release();
    await grow;
    await tick();
    // a (10 K more) went first; then c fits beside a's 60 K.
    expect(order).toEqual(["b", "a grows", "c"]);
    await a.resize(5 * K);
    expect(l.state().reservedBytes).toBe(25 * K);
    a.release();
    (await c).release();
    expect(l.state().usedBytes).toBe(10 * K);
  });

  test("when every request in flight waits to grow, the latest is refused and the earliest goes on", async () => {
    const l = ledger();
    const a = await l.admit(40 * K);
    const b = await l.admit(40 * K);
    const { order, track } = recorder();
    const growA = track("a", a.resize(60 * K));
    const growB = track("b", b.resize(60 * K)).catch((e: unknown) => e);
    expect(await growB).toBeInstanceOf(Busy);
    b.release(); // its door releases it on the refusal's way out
    await growA;
    expect(order).toEqual(["b:busy", "a"]);
    expect(l.state()).toMatchObject({ reservedBytes: 60 * K, inFlight: 1, queued: 0 });
    a.release();
  });
});

describe("release", () => {
  test("is idempotent, and a ticket released while it waits to grow gives its place and its memory back", async () => {
    const l = ledger();
    const a = await l.admit(50 * K);
    const b = await l.admit(30 * K);
    const growing = b.resize(45 * K).catch((e: unknown) => e);
    await tick();
    expect(l.state().queued).toBe(1);
    b.release();
    expect(await growing).toBeInstanceOf(Error);
    b.release();
    a.release();
    a.release();
    expect(l.state()).toMatchObject({ reservedBytes: 0, usedBytes: 10 * K, inFlight: 0, queued: 0 });
    await expect(a.resize(K)).rejects.toThrow(/released/);
  });

  test("every path out of a request's work releases what it reserved (try/finally)", async () => {
    const l = ledger();
    const work = async (fail: "none" | "throw" | "reject") => {
      let ticket: Ticket | undefined;
      try {
        ticket = await l.admit(20 * K);
        await ticket.resize(30 * K);
        if (fail === "throw") throw new Error("decoder failed");
        if (fail === "reject") await Promise.reject(new EdgevitError("invalid_image", "corrupt"));
        return "answered";
      } finally {
        ticket?.release();
      }
    };
    const outcomes = await Promise.allSettled([work("none"), work("throw"), work("reject"), work("none")]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled"]);
    expect(l.state()).toMatchObject({ reservedBytes: 0, inFlight: 0, queued: 0 });
    expect(l.peakBytes).toBeLessThanOrEqual(SETTINGS.capacityBytes);
  });
});

describe("models", () => {
  test("a cached model counts; evicted, it counts until the last request holding it ends", async () => {
    const l = ledger();
    const model = { memoryBytes: 30 * K };
    l.modelLoaded("m", model);
    expect(l.state().modelBytes).toBe(30 * K);
    const t = await l.admit(10 * K);
    t.hold(model);
    l.modelEvicted(model);
    expect(l.state().modelBytes).toBe(30 * K);
    // Its memory grows in place (capture buffers): read live.
    (model as { memoryBytes: number }).memoryBytes = 35 * K;
    expect(l.state().modelBytes).toBe(35 * K);
    t.release();
    expect(l.state().modelBytes).toBe(0);
  });

  test("requests for a model not loaded set the model budget aside once, until it loads", async () => {
    const l = ledger();
    const a = await l.admit(20 * K, "cold");
    expect(l.state()).toMatchObject({ modelBytes: 40 * K, loading: ["cold"], usedBytes: 70 * K });
    // A second request for it shares the claim; one that would not fit beside the budget waits.
    const b = await l.admit(20 * K, "cold");
    expect(l.state().usedBytes).toBe(90 * K);
    const c = l.admit(20 * K);
    // The load joins the claim at once: no wait.
    const end = await l.claimLoad("cold");
    l.modelLoaded("cold", { memoryBytes: 25 * K });
    end();
    // Loaded: 25 K instead of the 40 K budget, and c fits (10 + 25 + 60 = 95 K).
    const tc = await c;
    expect(l.state()).toMatchObject({ modelBytes: 25 * K, loading: [], usedBytes: 95 * K });
    for (const t of [a, b, tc]) t.release();
  });

  test("a load nobody claimed waits for room ahead of new requests, and a failed one frees its claim", async () => {
    const l = ledger();
    l.modelLoaded("warm", { memoryBytes: 20 * K });
    const a = await l.admit(60 * K); // 10 + 20 + 60 = 90 K
    const { order, track } = recorder();
    const load = track("load", l.claimLoad("reloaded")); // needs the budget: 10 + 40 + 60 = 110 K
    const b = track("b", l.admit(5 * K));
    await tick();
    expect(order).toEqual([]);
    a.release();
    const end = await load;
    const tb = await b;
    expect(order).toEqual(["load", "b"]);
    expect(l.state()).toMatchObject({ modelBytes: 40 * K, loading: ["reloaded"] });
    end(); // the load failed: nothing registered
    expect(l.state()).toMatchObject({ modelBytes: 20 * K, loading: [] });
    tb.release();
  });
});

describe("caches", () => {
  test("what a cache keeps counts beside the fixed heap: less room while it keeps it, room back when it evicts", async () => {
    const l = ledger();
    // a request reads a label set (4 K) and hands it to the cache: counted twice until the request ends
    const a = await l.admit(4 * K);
    l.setCache("labels", 4 * K);
    expect(l.state()).toMatchObject({ cacheBytes: 4 * K, reservedBytes: 4 * K, usedBytes: 18 * K });
    a.release();
    expect(l.state()).toMatchObject({ cacheBytes: 4 * K, usedBytes: 14 * K });
    // a request alone has 100 - 10 - 4 = 86 K now
    const tooLarge = (room: number) => new EdgevitError("payload_too_large", `room ${room / K} K`);
    await expect(l.admit(87 * K, undefined, tooLarge)).rejects.toThrow("room 86 K");
    const b = await l.admit(80 * K);
    const { order, track } = recorder();
    const c = track("c", l.admit(8 * K)); // 10 + 4 + 80 + 8 = 102 K: waits
    await tick();
    expect(order).toEqual([]);
    l.setCache("labels", 0); // evicted
    const tc = await c;
    expect(order).toEqual(["c"]);
    expect(l.state()).toMatchObject({ cacheBytes: 0, usedBytes: 98 * K });
    for (const t of [b, tc]) t.release();
    expect(l.peakBytes).toBeLessThanOrEqual(SETTINGS.capacityBytes);
  });
});

describe("the buffer pool", () => {
  test("free buffers count; a buffer handed back is kept once its reservation has shrunk", async () => {
    const pool = new BufferPool(1 << 30);
    const l = ledger({}, pool);
    const a = await l.admit(30 * K);
    const buffer = pool.acquire(20 * K);
    // Handed back while a's reservation still counts it: parked, not counted twice.
    pool.release(buffer);
    expect(l.state()).toMatchObject({ reservedBytes: 30 * K, poolBytes: 0, usedBytes: 40 * K });
    await a.resize(5 * K);
    expect(l.state()).toMatchObject({ reservedBytes: 5 * K, poolBytes: 20 * K, usedBytes: 35 * K });
    // The next request of that size gets the same buffer, zeroed.
    const b = await l.admit(25 * K);
    new Uint8Array(buffer).fill(7);
    expect(pool.acquire(20 * K)).toBe(buffer);
    expect(new Uint8Array(buffer).every((v) => v === 0)).toBe(true);
    expect(pool.stats).toMatchObject({ allocated: 1, reused: 1, dropped: 0 });
    for (const t of [a, b]) t.release();
  });

  test("a reservation that needs the pool's room counts its buffers inside it: reused, or let go once one is made anew", async () => {
    const pool = new BufferPool(1 << 30);
    const l = ledger({}, pool);
    const a = await l.admit(60 * K);
    const held = [pool.acquire(24 * K), pool.acquire(24 * K)];
    for (const buffer of held) pool.release(buffer);
    a.release();
    // 10 K fixed + 48 K free.
    expect(l.state()).toMatchObject({ reservedBytes: 0, poolBytes: 48 * K, usedBytes: 58 * K });
    // 70 K fits beside the fixed heap if 28 K of the free buffers count inside the reservation.
    const b = await l.admit(70 * K);
    expect(l.state()).toMatchObject({ reservedBytes: 70 * K, poolBytes: 20 * K, usedBytes: 100 * K });
    expect(pool.stats.dropped).toBe(0);
    // Its request reuses one; then makes one anew, and the earmarked rest goes.
    expect(held).toContain(pool.acquire(24 * K));
    expect(l.usedBytes()).toBeLessThanOrEqual(SETTINGS.capacityBytes);
    pool.acquire(30 * K);
    expect(pool.freeBytes).toBe(0);
    expect(l.usedBytes()).toBeLessThanOrEqual(SETTINGS.capacityBytes);
    // Handed back with no room beside the reservations: parked, never counted over capacity.
    const c = await l.admit(20 * K);
    pool.release(pool.acquire(24 * K));
    c.release();
    expect(l.usedBytes()).toBeLessThanOrEqual(SETTINGS.capacityBytes);
    b.release();
    expect(l.state()).toMatchObject({ reservedBytes: 0, usedBytes: 10 * K + l.state().poolBytes });
    expect(l.peakBytes).toBeLessThanOrEqual(SETTINGS.capacityBytes);
  });

  test("earmarked buffers a reservation did not use count as the pool's again when it ends", async () => {
    const pool = new BufferPool(1 << 30);
    const l = ledger({}, pool);
    const a = await l.admit(60 * K);
    pool.release(pool.acquire(48 * K));
    a.release();
    const b = await l.admit(70 * K); // 48 K free, 28 K of it earmarked
    expect(l.state().poolBytes).toBe(20 * K);
    const c = l.admit(25 * K); // waits: 10 + 70 + 25 > 100
    await tick();
    expect(l.state().queued).toBe(1);
    b.release();
    await c;
    // b's earmark is gone; beside c's 25 K the pool keeps its 48 K (10 + 25 + 48 <= 100).
    expect(l.state()).toMatchObject({ reservedBytes: 25 * K, poolBytes: 48 * K, usedBytes: 83 * K });
  });

  test("the pool keeps no more than its cap, and a model's load shrinks it too", async () => {
    const pool = new BufferPool(40 * K);
    const l = ledger({}, pool);
    const held = [pool.acquire(24 * K), pool.acquire(24 * K)];
    for (const buffer of held) pool.release(buffer);
    await l.admit(0).then((t) => t.release());
    expect(l.state().poolBytes).toBe(24 * K);
    l.modelLoaded("big", { memoryBytes: 70 * K });
    expect(l.state()).toMatchObject({ modelBytes: 70 * K, poolBytes: 0 });
    expect(l.state().usedBytes).toBeLessThanOrEqual(SETTINGS.capacityBytes);
  });
});
