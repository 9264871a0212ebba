// The config structs are an ABI: the host writes one field per name in the order core/engine/abi.ts
// (CONFIG_STRUCT) and core/engine/text.ts (TEXT_CONFIG_FIELDS) list them, and the engine reads them through
// @unmanaged classes declaring the same names in the same order (assembly/model.ts's ConfigStruct,
// assembly/text.ts's TextConfigStruct), each field 4 bytes after `bytes`, the struct's size.
import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { CONFIG_STRUCT, PLAN_FIELDS } from "../../core/engine/abi.ts";
import { TEXT_CONFIG_FIELDS } from "../../core/engine/text.ts";

// The field names of `@unmanaged class <name> { ... }` in `file`, in order.
function structFields(file: string, name: string): string[] {
  const source = readFileSync(new URL(`../../assembly/${file}`, import.meta.url), "utf8");
  const body = new RegExp(`@unmanaged class ${name} \\{([^}]*)\\}`).exec(source);
  if (!body) throw new Error(`no ${name} in assembly/${file}`);
  return [...body[1].matchAll(/^\s*(\w+): (?:i32|f32);/gm)].map((m) => m[1]);
}

test("assembly/model.ts's ConfigStruct has CONFIG_STRUCT's fields by name and in order", () => {
  expect(structFields("model.ts", "ConfigStruct")).toEqual(["bytes", ...Object.keys(CONFIG_STRUCT), ...PLAN_FIELDS]);
});

test("assembly/text.ts's TextConfigStruct has TEXT_CONFIG_FIELDS by name and in order", () => {
  expect(structFields("text.ts", "TextConfigStruct")).toEqual(["bytes", ...TEXT_CONFIG_FIELDS]);
});
