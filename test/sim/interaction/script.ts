// Transcript files in the datadriven shape of etcd raft's testdata: comment lines (`#`, the first ones
// state the claim under test), then blocks of a command, a `----` line and the expected output, each
// block ended by a blank line. format() writes a file back with new outputs (REWRITE=1).

export interface Block {
  /** Comment and blank lines before the command, kept verbatim. */
  preamble: string[];
  command: string;
  /** 1-based line of the command, for error messages. */
  line: number;
  expected: string[];
}

export class ScriptError extends Error {
  override name = "ScriptError";
}

export function parseScript(text: string): Block[] {
  const lines = text.split("\n");
  const blocks: Block[] = [];
  let preamble: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.trim() === "" || line.startsWith("#")) {
      preamble.push(line);
      i++;
      continue;
    }
    if (lines[i + 1] !== "----") throw new ScriptError(`line ${i + 2}: expected ---- after "${line}"`);
    const block: Block = { preamble, command: line, line: i + 1, expected: [] };
    i += 2;
    while (i < lines.length && lines[i]!.trim() !== "") block.expected.push(lines[i++]!);
    blocks.push(block);
    preamble = [];
  }
  return blocks;
}

/** The file text with `outputs[k]` as the output of block k. */
export function formatScript(blocks: readonly Block[], outputs: readonly string[][]): string {
  const out: string[] = [];
  blocks.forEach((block, k) => {
    // Blocks are separated by exactly one blank line; comments keep their place.
    const preamble = k === 0 ? block.preamble : block.preamble.filter((l, j) => j > 0 || l.trim() !== "");
    out.push(...preamble, block.command, "----", ...(outputs[k] ?? []), "");
  });
  return out.join("\n");
}
