// Route ACL for the TLS API port. Rules and their defaults come from config (src/config/acl.ts, where
// the semantics are documented: unanchored regular expressions on path and identity, first rule whose
// path matches decides, no match denies). Here they are compiled once and applied per request.
import type { AclRule } from "../config/index.ts";

export interface CompiledAclRule {
  path: RegExp;
  cn: RegExp;
  source: AclRule;
}

export function compileAcl(rules: readonly AclRule[]): CompiledAclRule[] {
  return rules.map((rule) => ({ path: new RegExp(rule.path), cn: new RegExp(rule.cn), source: rule }));
}

export type AclDecision = { allowed: true; rule: AclRule } | { allowed: false; rule: AclRule | null };

export function aclDecide(rules: readonly CompiledAclRule[], path: string, identity: string): AclDecision {
  for (const rule of rules) {
    if (!rule.path.test(path)) continue;
    return rule.cn.test(identity)
      ? { allowed: true, rule: rule.source }
      : { allowed: false, rule: rule.source };
  }
  return { allowed: false, rule: null };
}
