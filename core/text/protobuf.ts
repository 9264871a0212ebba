// The few protobuf wire rules a spiece.model needs: varints, length-delimited fields and 32-bit floats.
// Fields are visited in file order; unknown ones are skipped by their wire type, as protobuf readers do.
import { TokenizerError } from "./tokenizer.ts";

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

export interface Field {
  number: number;
  wire: number;
  varint: number; // WIRE_VARINT
  bytes: Uint8Array; // WIRE_LEN (a view into the message)
  float: number; // WIRE_I32, read as a little-endian float32
}

// Calls `visit` for each field of the message in `bytes`.
export function readFields(bytes: Uint8Array, what: string, visit: (f: Field) => void): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= bytes.length) throw new TokenizerError(`${what}: a varint runs past the end of the message`);
      const b = bytes[pos++];
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
    throw new TokenizerError(`${what}: a varint is longer than 10 bytes`);
  };
  const field: Field = { number: 0, wire: 0, varint: 0, bytes: bytes.subarray(0, 0), float: 0 };
  while (pos < bytes.length) {
    const key = varint();
    field.number = Math.floor(key / 8);
    field.wire = key % 8;
    if (field.wire === WIRE_VARINT) {
      field.varint = varint();
    } else if (field.wire === WIRE_LEN) {
      const length = varint();
      if (pos + length > bytes.length) {
        throw new TokenizerError(`${what}: field ${field.number} is ${length} bytes, past the end of the message`);
      }
      field.bytes = bytes.subarray(pos, pos + length);
      pos += length;
    } else if (field.wire === WIRE_I32) {
      if (pos + 4 > bytes.length) throw new TokenizerError(`${what}: field ${field.number} runs past the end`);
      field.float = view.getFloat32(pos, true);
      pos += 4;
    } else if (field.wire === WIRE_I64) {
      if (pos + 8 > bytes.length) throw new TokenizerError(`${what}: field ${field.number} runs past the end`);
      pos += 8;
    } else {
      throw new TokenizerError(`${what}: field ${field.number} has wire type ${field.wire}, not a protobuf one`);
    }
    visit(field);
  }
}
