// The architecture as rules on imports (docs/ARCHITECTURE.md, "What may import what"): the core runs
// anywhere, the Worker and the CLI depend on it and never on each other.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { expect, test } from "vitest";

const root = resolve(new URL("../..", import.meta.url).pathname);

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.(ts|mts)$/.test(e.name) && !e.name.endsWith(".d.ts"))
    .map((e) => relative(root, join(e.parentPath, e.name)));
}

// Every module a file imports: repo-relative paths for relative specifiers, the specifier otherwise.
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), "utf8");
  const found: string[] = [];
  for (const m of text.matchAll(
    /(?:^|[\s;])(?:import|export)\b[^"';]*?\bfrom\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g,
  )) {
    const spec = m[1] ?? m[2];
    found.push(spec.startsWith(".") ? relative(root, resolve(dirname(join(root, file)), spec)) : spec);
  }
  return found;
}

// [file, import] pairs that break a rule.
function violations(dirs: string[], allowed: (spec: string) => boolean, files = dirs.flatMap(sources)): string[] {
  return files.flatMap((f) =>
    importsOf(f)
      .filter((spec) => !allowed(spec))
      .map((spec) => `${f} -> ${spec}`),
  );
}

test("the scanner sees the imports it judges", () => {
  // pinned on a file whose imports are known, so the rules below cannot pass by finding nothing
  expect(importsOf("core/pipeline.ts")).toEqual(
    expect.arrayContaining(["core/image/open.ts", "core/preprocess/stream.ts", "core/engine/model.ts"]),
  );
  expect(importsOf("cli/node-engine.ts")).toEqual(expect.arrayContaining(["node:fs", "core/engine/index.ts"]));
});

test("core/ imports only itself and runtime-neutral packages", () => {
  const allowed = (spec: string) => spec.startsWith("core/") || spec === "jpeg-js";
  expect(violations(["core"], allowed)).toEqual([]);
});

test("the Worker never imports the CLI, the converter or Node", () => {
  const allowed = (spec: string) =>
    !spec.startsWith("cli/") && !spec.startsWith("node:") && !spec.startsWith("models/");
  expect(violations(["worker"], allowed)).toEqual([]);
});

test("the CLI never imports the Worker", () => {
  expect(violations(["cli"], (spec) => !spec.startsWith("worker/"))).toEqual([]);
});

// Import cycles among the given files, each as the path around it.
function cycles(files: string[], imports: (file: string) => string[] = importsOf): string[] {
  const graph = new Map(files.map((f) => [f, imports(f).filter((spec) => files.includes(spec))]));
  const found: string[] = [];
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (f: string) => {
    state.set(f, "open");
    path.push(f);
    for (const next of graph.get(f) ?? []) {
      if (state.get(next) === "open") found.push([...path.slice(path.indexOf(next)), next].join(" -> "));
      else if (!state.has(next)) visit(next);
    }
    path.pop();
    state.set(f, "done");
  };
  for (const f of files) if (!state.has(f)) visit(f);
  return found;
}

const PROJECT = ["core", "worker", "cli", "models", "bench", "scripts", "test"];

test("the project's source files import each other without a cycle", () => {
  expect(cycles(PROJECT.flatMap(sources))).toEqual([]);
});

test("the cycle finder reports a cycle as the path around it", () => {
  const graph: Record<string, string[]> = { a: ["b"], b: ["c", "d"], c: ["a"], d: [] };
  expect(cycles(Object.keys(graph), (f) => graph[f])).toEqual(["a -> b -> c -> a"]);
  expect(cycles(["a", "b"], (f) => graph[f])).toEqual([]);
});

test("no source file sits beside a folder of its own name", () => {
  const files = ["core", "worker", "cli", "models", "assembly"].flatMap(sources);
  const folders = new Set(files.map((f) => dirname(f)));
  expect(files.filter((f) => folders.has(f.replace(/\.m?ts$/, "")))).toEqual([]);
});
