// What the rest of Tandem may use of the CLI folder: the agent's composition root, which an app embedding
// the agent in its own process starts (src/sdk) exactly as `tandem agent` does.
export { type AgentStartOptions, agentLogger, type RunningAgent, startAgent } from "./agent.ts";
