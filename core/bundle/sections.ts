// The sections after the image payload (FORMAT.md, "Sections"), whatever their kind: a header entry
// checked against the layout its own config implies, and that layout for the writer and the reader.
import {
  BundleError,
  SECTION_KINDS,
  checkPayloadLimit,
  type Section,
  type SectionKind,
  type SectionParts,
} from "./format.ts";
import { checkEmbeddingsConfig, embeddingsLayout } from "./embeddings.ts";
import { checkTextConfig, textLayout } from "./text.ts";

export interface SectionEntry {
  name: string;
  offset: number;
  bytes: number;
  source: { kind: string; part?: string };
}

// Every tensor of a section in order, with its offset in the section.
export function sectionLayout(s: Section | SectionParts): { tensors: SectionEntry[]; length: number } {
  return s.kind === "lm-embeddings" ? embeddingsLayout(s.config) : textLayout(s.config);
}

// The tensors that hold f32 values, which must be finite.
export function sectionFloatTensors(s: Section | SectionParts): SectionEntry[] {
  return sectionLayout(s).tensors.filter(
    ({ source }) =>
      source.kind === "f32" || (source.kind === "linear" && source.part !== "weight" && source.part !== "wsum"),
  );
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function bad(message: string): never {
  throw new BundleError("bad_header", message);
}

// A section entry of the header: its kind, config, CRC and tensor table as its own config lays them out.
export function checkSection(s: unknown, i: number): Section {
  const where = `header.sections[${i}]`;
  if (!isObject(s)) bad(`${where} is not an object`);
  if (typeof s.name !== "string" || s.name === "") bad(`${where}.name must be a non-empty string`);
  if (!SECTION_KINDS.includes(s.kind as SectionKind))
    bad(`${where}.kind ${JSON.stringify(s.kind)} is not one of ${SECTION_KINDS.join(", ")}`);
  let plan: { tensors: SectionEntry[]; length: number };
  if (s.kind === "lm-embeddings") {
    // bounded by its own limits: it is streamed, never loaded
    checkEmbeddingsConfig(s.config, where);
    plan = embeddingsLayout(s.config);
  } else {
    checkTextConfig(s.config, where);
    plan = textLayout(s.config);
    checkPayloadLimit(plan.length, `${where}'s tensors`);
  }
  if (!Number.isInteger(s.offset) || (s.offset as number) % 64 !== 0)
    bad(`${where}.offset must be a multiple of 64, got ${JSON.stringify(s.offset)}`);
  if (typeof s.crc32 !== "string" || !/^[0-9a-f]{8}$/.test(s.crc32)) bad(`${where}.crc32 must be 8 hex digits`);
  if (s.length !== plan.length) {
    throw new BundleError("size_mismatch", `${where}.length is ${s.length}; its config implies ${plan.length}`);
  }
  const table = s.tensors;
  if (!Array.isArray(table) || table.length !== plan.tensors.length)
    bad(`${where}.tensors must list the ${plan.tensors.length} tensors its config implies`);
  plan.tensors.forEach((want, t) => {
    const got = table[t];
    if (!isObject(got) || got.name !== want.name || got.offset !== want.offset || got.bytes !== want.bytes) {
      bad(
        `${where}.tensors[${t}] is ${JSON.stringify(got)}; the layout says ${JSON.stringify({ name: want.name, offset: want.offset, bytes: want.bytes })}`,
      );
    }
  });
  return s as unknown as Section;
}
