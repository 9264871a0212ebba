// Text tokenizers for the text towers, from the checkpoint's own files or from a bundle's serialised form.
export { CLIP_MAX_LENGTH, ClipTokenizer, clipOptions, clipTables, loadClipTokenizer } from "./clip.ts";
export type { ClipFiles, ClipOptions, ClipTables } from "./clip.ts";
export { TOKENIZER_FORMAT_VERSION, tokenizerFromBytes, tokenizerToBytes } from "./format.ts";
export type { Tokenizer } from "./format.ts";
export { SentencePiece, loadSentencePiece, parseSentencePieceModel } from "./sentencepiece.ts";
export type { SentencePieceData, SentencePieceOptions } from "./sentencepiece.ts";
export { SIGLIP_MAX_LENGTH, SiglipTokenizer, loadSiglipTokenizer, siglipOptions } from "./siglip.ts";
export type { SiglipFiles, SiglipOptions } from "./siglip.ts";
export { TokenizerError } from "./tokenizer.ts";
export type { Encoded, TextTokenizer } from "./tokenizer.ts";
