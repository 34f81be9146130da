// Text the CLI prints that came from a user or a server (a refused path, an error message) may hold control
// characters: C1 CSI (U+009B) or ESC sequences drive the terminal, bidi overrides make text print as
// something else. They are printed as JSON-style escapes instead (\n, \u009b), so what is shown is what was
// sent, and nothing in it acts on the terminal.

/** The characters escaped: control characters (C0, DEL, C1), bidi formatting, U+2028/2029. */
const unsafe = /[\p{Cc}\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/gu;
const short: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f" };

export function escapeControls(text: string): string {
  return text.replace(unsafe, (c) => short[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
