// One transcript command: `name pos pos key=value key=(a b c)`, e.g. `add-nodes 3 witness=(3)`,
// `partition (1)|(2 3)`, `tick 1 2 count=10`. Node numbers stand for ids: 1 is n1.
import type { NodeId } from "../../../src/core/types.ts";

export interface Command {
  name: string;
  /** Positional arguments, raw (a partition spec such as "(1)|(2 3)" stays one argument). */
  args: string[];
  keys: Map<string, string>;
}

export class CommandError extends Error {
  override name = "CommandError";
}

export function parseCommand(line: string): Command {
  // Parenthesised groups may contain spaces: split on spaces outside parentheses.
  const tokens: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of line.trim()) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === " " && depth === 0) {
      if (current !== "") tokens.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  if (current !== "") tokens.push(current);
  const [name, ...rest] = tokens;
  if (name === undefined) throw new CommandError("empty command");
  const command: Command = { name, args: [], keys: new Map() };
  for (const token of rest) {
    const eq = token.indexOf("=");
    if (eq > 0 && !token.startsWith("(")) command.keys.set(token.slice(0, eq), token.slice(eq + 1));
    else command.args.push(token);
  }
  return command;
}

export function nodeId(token: string): NodeId {
  if (!/^[1-9][0-9]*$/.test(token)) throw new CommandError(`not a node number: ${token}`);
  return `n${token}`;
}

/** "(1 2 3)" -> [n1, n2, n3]. */
export function nodeList(token: string): NodeId[] {
  const inner = token.match(/^\((.*)\)$/)?.[1];
  if (inner === undefined) throw new CommandError(`expected a (list): ${token}`);
  return inner
    .split(" ")
    .filter((t) => t !== "")
    .map(nodeId);
}

export function intKey(command: Command, key: string, fallback: number): number {
  const raw = command.keys.get(key);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value)) throw new CommandError(`${key} must be an integer, got ${raw}`);
  return value;
}
