// Linux /proc readings: peak resident memory of a process, and finding workerd under wrangler.
import { readFileSync, readdirSync } from "node:fs";

// Bytes of a /proc/<pid>/status field given in kB (VmHWM: peak resident set, VmRSS: resident now).
export function statusBytes(pid: number, field: "VmHWM" | "VmRSS"): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  if (!match) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(match[1]) * 1024;
}

// CPU time a process's threads have run, in ms (the first field of each /proc/<pid>/task/<tid>/schedstat,
// in ns): a request's cost inside workerd whatever else the machine runs meanwhile.
export function cpuMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread exited while the table was read
    }
  }
  return ns / 1e6;
}

// State and parent pid from /proc/<pid>/stat. The command name is in parentheses and may hold spaces:
// the fields after it are fixed.
function stateOf(pid: number): { state: string; parent: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const [state, parent] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { state, parent: Number(parent) };
}

// Pids of every live (not zombie) process below `root` whose command name is `name`.
export function descendantsNamed(root: number, name: string): number[] {
  const parents = new Map<number, number>();
  const zombies = new Set<number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const { state, parent } = stateOf(Number(entry));
      parents.set(Number(entry), parent);
      if (state === "Z") zombies.add(Number(entry));
    } catch {
      // the process exited while the table was read
    }
  }
  const below = (pid: number): boolean => {
    for (let p = parents.get(pid); p !== undefined && p > 1; p = parents.get(p)) if (p === root) return true;
    return false;
  };
  return [...parents.keys()].filter((pid) => {
    if (zombies.has(pid) || !below(pid)) return false;
    try {
      return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === name;
    } catch {
      return false;
    }
  });
}
