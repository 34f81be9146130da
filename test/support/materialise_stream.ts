// A deterministic stream of store changes for the materialiser crash test: the child process applies it,
// the parent recomputes any value from its seq to check that a file on disk is whole.
import { Prng } from "../../src/core/prng.ts";
import type { StoreChange } from "../../src/store/types.ts";

const fileCount = 29;
const valueBytesMin = 64 * 1024;
const valueBytesMax = 768 * 1024;

export function pathAt(seq: number): string {
  const file = seq % fileCount;
  return `dir${file % 4}/file-${file}`;
}

export function isDeleteAt(seq: number): boolean {
  return seq % 11 === 0;
}

/** The value written at `seq`: a header line naming path and seq, then seeded random bytes. */
export function valueAt(seq: number): Uint8Array {
  const rng = new Prng(`materialise-stream/${seq}`);
  const bytes = rng.intBetween(valueBytesMin / 4, valueBytesMax / 4) * 4;
  const value = new Uint8Array(bytes);
  const words = new Uint32Array(value.buffer);
  for (let i = 0; i < words.length; i++) words[i] = rng.nextUint32();
  const header = new TextEncoder().encode(`${pathAt(seq)} ${seq}\n`);
  value.set(header);
  return value;
}

export function changeAt(seq: number): StoreChange {
  const deleted = isDeleteAt(seq);
  return {
    seq,
    entry: {
      path: pathAt(seq),
      value: deleted ? new Uint8Array() : valueAt(seq),
      version: { wallMs: 1_700_000_000_000 + seq, counter: 0, nodeId: "n1" },
      deleted,
    },
  };
}

/** The seq a file's header names, or null when the header is not one this stream writes. */
export function seqOfValue(path: string, value: Uint8Array): number | null {
  const newline = value.indexOf(0x0a);
  if (newline < 0 || newline > 200) return null;
  const match = /^(\S+) (\d+)$/.exec(new TextDecoder().decode(value.subarray(0, newline)));
  if (!match || match[1] !== path) return null;
  return Number(match[2]);
}

/** What the directory must hold after applying seqs 1..lastSeq: path → seq of its value. */
export function expectedFiles(lastSeq: number): Map<string, number> {
  const files = new Map<string, number>();
  for (let seq = 1; seq <= lastSeq; seq++) {
    if (isDeleteAt(seq)) files.delete(pathAt(seq));
    else files.set(pathAt(seq), seq);
  }
  return files;
}
