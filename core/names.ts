// Model names and the storage keys that hold their bundles (`<name>.evit`), the same in R2 and on disk.
import { EdgevitError } from "./errors.ts";

// R2 keys are `<name>.evit`; names stay URL- and key-safe.
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const SUFFIX = ".evit";

export function modelName(raw: string): string {
  if (!NAME.test(raw) || raw.endsWith(SUFFIX)) {
    throw new EdgevitError(
      "bad_parameter",
      `${JSON.stringify(raw)} is not a model name (letters, digits, ".", "_", "-")`,
    );
  }
  return raw;
}

export const keyOf = (name: string): string => name + SUFFIX;
