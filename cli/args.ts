// The one argument parser of every subcommand (node:util parseArgs), its --help, and the one error shape:
// `edgevit <command>: <problem>` on stderr, then the usage line; exit 2 for a usage error, 1 for a failure.

import { parseArgs, type ParseArgsOptionDescriptor } from "node:util";

export interface OptionSpec extends ParseArgsOptionDescriptor {
  help: string; // one line for --help
  value?: string; // the value's name in --help (options of type "string")
}

export interface CommandSpec {
  name: string;
  synopsis: string; // after `edgevit <name> `
  summary: string;
  options: Record<string, OptionSpec>;
  positionals: { min: number; max: number };
}

export type Parsed = { values: Record<string, string | boolean | undefined>; positionals: string[] };

// A usage error: the caller prints it with the usage line and exits 2.
export class UsageError extends Error {}

export function usageLine(spec: CommandSpec): string {
  return `usage: edgevit ${spec.name} ${spec.synopsis}`;
}

export function helpText(spec: CommandSpec): string {
  const lines = [usageLine(spec), "", spec.summary, "", "options:"];
  const all: [string, OptionSpec][] = [
    ...Object.entries(spec.options),
    ["help", { type: "boolean", help: "this help" }],
  ];
  for (const [name, option] of all) {
    const flag = `${option.short ? `-${option.short}, ` : "    "}--${name}${option.type === "string" ? ` ${option.value ?? "VALUE"}` : ""}`;
    lines.push(`  ${flag.padEnd(28)} ${option.help}`);
  }
  return lines.join("\n");
}

// The error as every subcommand reports it.
export function report(command: string, problem: string, usage?: string): void {
  console.error(`edgevit ${command}: ${problem}${usage ? `\n${usage}` : ""}`);
}

// Parses `args` for `spec`. Returns the values, or an exit code when it printed --help (0) or a usage
// error (2) itself.
export function parseCommand(spec: CommandSpec, args: string[]): Parsed | number {
  const options = Object.fromEntries(
    Object.entries(spec.options).map(([name, { help: _help, value: _value, ...descriptor }]) => [name, descriptor]),
  );
  let parsed: Parsed;
  try {
    const result = parseArgs({
      args,
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
    parsed = { values: result.values as Parsed["values"], positionals: result.positionals };
  } catch (error) {
    // parseArgs' messages name the option ("Unknown option '--force'"); the code is the kind.
    report(spec.name, (error as Error).message.split(". ")[0], usageLine(spec));
    return 2;
  }
  if (parsed.values.help) {
    console.log(helpText(spec));
    return 0;
  }
  const count = parsed.positionals.length;
  if (count < spec.positionals.min || count > spec.positionals.max) {
    const expected =
      spec.positionals.max === spec.positionals.min
        ? `${spec.positionals.min} argument${spec.positionals.min === 1 ? "" : "s"}`
        : `at least ${spec.positionals.min} argument${spec.positionals.min === 1 ? "" : "s"}`;
    report(spec.name, `expected ${expected}, got ${count}`, usageLine(spec));
    return 2;
  }
  return parsed;
}

// A numeric option: an integer in [min, max], or a UsageError.
export function intValue(
  name: string,
  raw: string | boolean | undefined,
  fallback: number,
  min: number,
  max = Infinity,
) {
  if (raw === undefined) return fallback;
  const value = typeof raw === "string" && /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Infinity ? `at least ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`--${name} must be an integer ${range}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

// A subcommand's whole run: parse, then `body`; a UsageError exits 2 with the usage line, any other error
// exits 1 with its message, both in the one shape.
export async function runCommand(
  spec: CommandSpec,
  args: string[],
  body: (parsed: Parsed) => Promise<number>,
): Promise<number> {
  const parsed = parseCommand(spec, args);
  if (typeof parsed === "number") return parsed;
  try {
    return await body(parsed);
  } catch (error) {
    if (error instanceof UsageError) {
      report(spec.name, error.message, usageLine(spec));
      return 2;
    }
    report(spec.name, (error as Error).message);
    return 1;
  }
}
