#!/usr/bin/env -S node --max-semi-space-size=1 --v8-pool-size=1 --no-opt --invocation-count-for-maglev=5000 --no-maglev-inlining
// Installed entry point: runs the compiled CLI (`npm run build`, run by `npm install`, writes dist/).
// The V8 flags match AGENT_NODE_FLAGS in src/cli/dev_cluster.ts: see there for why.
import "../dist/src/cli/main.js";
