// Byte sizes for sentences and settings, one definition for the engine, the bundle checks, the Worker's
// budget and the measuring scripts.

export const MiB = 1 << 20;

// A size for a sentence: MiB, or KiB below one MiB (a small model's plan would read "0.0 MiB").
export const sizeText = (bytes: number): string =>
  bytes >= MiB ? `${(bytes / MiB).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
