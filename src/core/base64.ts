// Strict base64 for values that arrive in JSON (API bodies, peer messages). Buffer.from(text, "base64")
// silently skips characters outside the alphabet, so the decoded bytes are encoded again and must give back
// the text exactly: only canonical, padded, standard base64 passes. Both steps are native, so this costs
// far less than a regular expression over a large value.

export function decodeBase64Strict(text: string): Buffer | null {
  const bytes = Buffer.from(text, "base64");
  return bytes.toString("base64") === text ? bytes : null;
}
