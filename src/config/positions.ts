// Maps a key path back to a line and column of the YAML source, so errors point at the text.
import { type Document, isMap, isNode, isPair, isScalar, type LineCounter, type Node } from "yaml";

export interface SourcePosition {
  line: number;
  column: number;
}

/**
 * Where `path` is written. `keyOfLast`: point at the last segment's key (unknown keys) rather than its
 * value. A path that does not exist (missing key) falls back to its nearest existing parent.
 */
export function positionOf(
  doc: Document,
  lineCounter: LineCounter,
  path: readonly PropertyKey[],
  keyOfLast = false,
): SourcePosition {
  for (let length = path.length; length >= 0; length--) {
    const prefix = path.slice(0, length);
    const node = keyOfLast && length === path.length ? keyNodeOf(doc, prefix) : valueNodeOf(doc, prefix);
    const offset = node?.range?.[0];
    if (offset !== undefined) {
      const { line, col } = lineCounter.linePos(offset);
      return { line, column: col };
    }
  }
  return { line: 1, column: 1 };
}

function valueNodeOf(doc: Document, path: readonly PropertyKey[]): Node | undefined {
  const node = path.length === 0 ? doc.contents : doc.getIn(path as unknown[], true);
  return isNode(node) ? node : undefined;
}

function keyNodeOf(doc: Document, path: readonly PropertyKey[]): Node | undefined {
  const parent = valueNodeOf(doc, path.slice(0, -1));
  const key = path.at(-1);
  if (!isMap(parent)) return undefined;
  const pair = parent.items.find((item) => isPair(item) && isScalar(item.key) && item.key.value === key);
  return isNode(pair?.key) ? pair.key : undefined;
}
