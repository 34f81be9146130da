// TLS API access rules. Both patterns are plain regular expressions tested (unanchored) against the request
// path and the client identity (certificate CN, PSK identity, or `token:<name>` for a bearer token, on
// either listener); anchor them with ^ and $ as needed.
// Rules are tried in order and the first whose path matches decides: allowed iff its cn matches.
// No matching path means denied. src/api/acl.ts applies them.
import type { NodeId } from "../core/types.ts";

export interface AclRule {
  /** RegExp source tested against the request path. */
  path: string;
  /** RegExp source tested against the authenticated identity. */
  cn: string;
}

/** Matches nothing: the internal API of a cluster without peers is closed. */
const noIdentityPattern = "(?!)";

export function defaultAcl(peerIds: readonly NodeId[]): AclRule[] {
  const peers = peerIds.length === 0 ? noIdentityPattern : `^(${peerIds.map(escapeRegExp).join("|")})$`;
  return [
    { path: "^/api/internal/", cn: peers },
    { path: "^/", cn: ".*" },
  ];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
