#!/usr/bin/env node
// Installed entry point: runs the compiled CLI (`npm run build`, run by `npm install`, writes dist/).
// `tandem agent` re-executes itself with the agent's V8 flags (src/cli/agent_flags.ts); other commands run without.
import "../dist/tandem.js";
