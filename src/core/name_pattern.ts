// Name patterns of the config (provisioning's include/exclude, backup schedules' databases): `*` any run of
// characters, `?` one, everything else literal; the whole name must match. Pure.

export function globMatches(pattern: string, name: string): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\*?]/g, (c) =>
    c === "*" ? ".*" : c === "?" ? "." : `\\${c}`,
  );
  return new RegExp(`^${source}$`, "s").test(name);
}
