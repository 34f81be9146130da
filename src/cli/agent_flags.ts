// The agent's V8 flags and malloc setting, and the re-exec that gives them to `tandem agent` alone: other
// commands are short and would only pay for them. Node takes V8 flags on its command line and glibc reads
// its tunables at process start, so the agent command replaces its process (process.execve: same pid, no
// extra process) with one started with them.

/**
 * V8 settings for `tandem agent` (no other command), to keep an idle agent under 80 MiB (bench/idle.ts):
 * a small young generation, one V8 helper thread, and of the optimising compilers only Maglev, only for
 * functions called 1,000 times (default 400) and without inlining. So the code that runs at start-up (config,
 * schemas, module set-up) stays interpreted, the store's hot paths are compiled within a second of load, and
 * the idle paths (5-10 calls a second) within about three minutes: at 5,000 they were still compiling, and
 * growing, 10-17 minutes in, and interpreted they cost an idle follower ~15 % more CPU. Without TurboFan
 * the store's batched writes are ~8 % slower (measured side by side, bench/store_flags.ts), but TurboFan
 * adds ~5.4 MiB of the node binary's code pages to an idle agent, which the 80 MiB budget cannot take.
 * Maglev's inlining cost ~3 MiB of compiled code once an idle agent had run 5 minutes (79.5-80.8 MiB with
 * it, 76.7-77.7 without) and no store throughput measurable on this VM.
 */
export const AGENT_NODE_FLAGS = [
  "--max-semi-space-size=1",
  "--v8-pool-size=1",
  "--no-opt",
  "--invocation-count-for-maglev=1000",
  "--no-maglev-inlining",
] as const;

/** Replaces AGENT_NODE_FLAGS when set: space-separated Node/V8 flags, or empty for none. */
export const AGENT_NODE_FLAGS_ENV = "TANDEM_AGENT_NODE_FLAGS";

/** The flags `tandem agent` runs with: $TANDEM_AGENT_NODE_FLAGS when set (to tune or measure), else ours. */
export function agentNodeFlags(env: NodeJS.ProcessEnv = process.env): readonly string[] {
  const custom = env[AGENT_NODE_FLAGS_ENV];
  return custom === undefined ? AGENT_NODE_FLAGS : custom.split(/\s+/).filter((flag) => flag !== "");
}

/**
 * glibc's malloc for the agent: one arena for every thread. By default each thread that allocates (V8's
 * compiler and GC helpers, libuv's pool) gets an arena of its own, whose freed pages stay resident; with one
 * the idle agent keeps 1.5-3.5 MiB less (bench/idle.ts), and the store's throughput was unchanged (0.985 of
 * the default in ABBA rounds, within this VM's noise): the agent's threads rarely allocate at once. Other C
 * libraries ignore it. Not passed on to the commands the agent runs (see withoutAgentMallocTunables).
 */
export const AGENT_MALLOC_TUNABLES = "glibc.malloc.arena_max=1";
const TUNABLES_ENV = "GLIBC_TUNABLES";

/** The environment to exec the agent with: the operator's GLIBC_TUNABLES if set, else ours. */
export function agentEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return env[TUNABLES_ENV] === undefined ? { ...env, [TUNABLES_ENV]: AGENT_MALLOC_TUNABLES } : env;
}

/**
 * Once the agent runs, our tunables have done their work: they leave its environment so the services and
 * hooks it starts get the operator's environment, not a one-arena malloc (a threaded server would suffer).
 */
export function withoutAgentMallocTunables(env: NodeJS.ProcessEnv = process.env): void {
  if (env[TUNABLES_ENV] === AGENT_MALLOC_TUNABLES) delete env[TUNABLES_ENV];
}

/** Whether `argv` (as process.argv) runs `tandem agent`; asking for its help does not. */
export function runsAgentCommand(argv: readonly string[]): boolean {
  const args = argv.slice(2);
  return args[0] === "agent" && !args.includes("--help") && !args.includes("-h");
}

/** Whether every agent flag is on this process's command line. */
export function hasAgentFlags(
  execArgv: readonly string[] = process.execArgv,
  flags: readonly string[] = agentNodeFlags(),
): boolean {
  return flags.every((flag) => execArgv.includes(flag));
}

/** The argv to re-exec with: the agent flags, then this process's own Node options, script and arguments. */
export function agentExecArgv(
  argv: readonly string[],
  execArgv: readonly string[],
  execPath: string,
  flags: readonly string[] = agentNodeFlags(),
): string[] {
  return [execPath, ...flags, ...execArgv, ...argv.slice(1)];
}

/**
 * For `tandem agent` started without the agent flags or malloc tunables, replaces this process with one
 * running them; returns only when there is nothing to do, or when this Node lacks process.execve (before
 * 22.15), in which case the agent runs without them and logs so at debug level (see hasAgentFlags).
 */
export function execAgentWithFlags(): void {
  if (!runsAgentCommand(process.argv)) return;
  if (hasAgentFlags() && process.env[TUNABLES_ENV] !== undefined) {
    withoutAgentMallocTunables();
    return;
  }
  if (typeof process.execve !== "function") return;
  process.execve(
    process.execPath,
    hasAgentFlags()
      ? [process.execPath, ...process.execArgv, ...process.argv.slice(1)]
      : agentExecArgv(process.argv, process.execArgv, process.execPath),
    agentEnv(),
  );
}
