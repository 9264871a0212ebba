// `wrangler dev` for the benchmark: its own local R2 state under .cache/bench, free ports, started fresh
// (an empty isolate) and stopped by the benchmark.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { descendantsNamed } from "./proc.ts";

const root = new URL("..", import.meta.url).pathname;
const wranglerJs = join(root, "node_modules", "wrangler", "bin", "wrangler.js");

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export class DevServer {
  readonly url: string;
  readonly inspectorPort: number; // V8's inspector for the Worker's isolate, through wrangler's proxy
  readonly process: ChildProcess;
  private log = "";

  private constructor(url: string, inspectorPort: number, child: ChildProcess) {
    this.url = url;
    this.inspectorPort = inspectorPort;
    this.process = child;
    child.stdout!.on("data", (d) => (this.log += d));
    child.stderr!.on("data", (d) => (this.log += d));
  }

  // Starts `wrangler dev` and resolves once the Worker answers /healthz; `startedAt` is performance.now()
  // at spawn. `config`: another wrangler.toml than the project's (bench/kernels-wrangler.toml), or several
  // Workers in one session (the first answers the port and gets the inspector); `vars` override [vars]
  // (`--var NAME:VALUE`).
  static async start(
    persistDir: string,
    timeoutMs = 120_000,
    config?: string | string[],
    vars: Record<string, string> = {},
  ): Promise<{ server: DevServer; startedAt: number }> {
    const [port, inspectorPort] = [await freePort(), await freePort()];
    const args = [
      wranglerJs,
      "dev",
      ...[config ?? []].flat().flatMap((c) => ["--config", c]),
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--inspector-port",
      String(inspectorPort),
      "--persist-to",
      persistDir,
      ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
      "--show-interactive-dev-session=false",
      "--log-level",
      "warn",
    ];
    const startedAt = performance.now();
    const child = spawn(process.execPath, args, {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    });
    const server = new DevServer(`http://127.0.0.1:${port}`, inspectorPort, child);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}:\n${server.log}`);
      try {
        const response = await fetch(`${server.url}/healthz`);
        await response.arrayBuffer();
        if (response.ok) return { server, startedAt };
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await server.stop();
        throw new Error(`wrangler dev did not answer within ${timeoutMs} ms:\n${server.log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  // The workerd process that runs the Worker. wrangler starts two: a proxy that listens on the dev port
  // and forwards, and the Worker's own runtime on a port of its choosing.
  // While wrangler restarts it (a source file changed) there may be none or two: wait for one.
  async workerdPid(timeoutMs = 60_000): Promise<number> {
    const proxy = `entry=${new URL(this.url).host}`;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const pids = descendantsNamed(this.process.pid!, "workerd").filter((pid) => {
        try {
          return !readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(proxy);
        } catch {
          return false; // exited meanwhile
        }
      });
      if (pids.length === 1) return pids[0];
      if (Date.now() > deadline)
        throw new Error(
          `expected one workerd running the Worker under wrangler (pid ${this.process.pid}), found ${pids.length}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise((r) => this.process.once("exit", r));
    this.process.kill("SIGTERM");
    const timer = setTimeout(() => this.process.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
