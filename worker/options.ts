// The one set of option checkers: RPC and queue options arrive as values and are checked here as they are;
// HTTP query parameters (http.ts) are parsed from their text first, then checked here too, so every
// transport accepts the same values and refuses the rest with the same sentence.

import { EdgevitError } from "../core/errors.ts";

// `shown`: what the caller sent, as they sent it (a query parameter's text rather than the parsed value).
function badOption(name: string, expected: string, shown: unknown): EdgevitError {
  return new EdgevitError(
    "bad_parameter",
    `${name} must be ${expected}, got ${JSON.stringify(shown) ?? String(shown)}`,
  );
}

// An integer in [min, max], or `fallback` when absent.
export function intOption(
  name: string,
  value: unknown,
  fallback: number,
  min: number,
  max = Infinity,
  shown: unknown = value,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw badOption(name, `an integer ${max === Infinity ? `at least ${min}` : `from ${min} to ${max}`}`, shown);
  }
  return value;
}

// true or false, or `fallback` when absent.
export function boolOption(name: string, value: unknown, fallback = false, shown: unknown = value): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw badOption(name, "true or false", shown);
  return value;
}

// One of `choices`, or the first choice when absent.
export function choiceOption<T extends string>(name: string, value: unknown, choices: readonly T[]): T {
  if (value === undefined) return choices[0];
  if (!(choices as readonly unknown[]).includes(value)) throw badOption(name, `one of ${choices.join(", ")}`, value);
  return value as T;
}
