// The cluster CA tooling (`tandem tls`, `tandem dev`). Kept apart from the mesh so that a running agent,
// which only reads PEM files, never loads the X.509 generation libraries.
export * from "./certificates.ts";
