// `host:port` as written in tandem.yml. IPv6 literals are bracketed (`[::1]:7400`); hosts are kept
// unbracketed after parsing because node:net wants them that way.
import { isIPv4, isIPv6 } from "node:net";

export interface HostPort {
  host: string;
  port: number;
}

export type HostPortParse = { ok: true; value: HostPort } | { ok: false; reason: string };

/** For the JSON Schema only; parseHostPort is the real check. */
export const hostPortPattern = "^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$";

const hostnamePattern =
  /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const portPattern = /^[0-9]{1,5}$/;
const portMax = 65_535;

export function parseHostPort(text: string): HostPortParse {
  const colon = text.lastIndexOf(":");
  if (colon <= 0) return { ok: false, reason: "expected host:port" };
  const hostText = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  const port = Number(portText);
  if (!portPattern.test(portText) || port < 1 || port > portMax) {
    return { ok: false, reason: `expected host:port with a port in 1..${portMax}` };
  }
  if (hostText.startsWith("[") && hostText.endsWith("]")) {
    const host = hostText.slice(1, -1);
    if (!isIPv6(host)) return { ok: false, reason: "expected an IPv6 address inside [ ]" };
    return { ok: true, value: { host, port } };
  }
  if (hostText.includes(":")) return { ok: false, reason: "expected host:port; write IPv6 as [addr]:port" };
  if (isIPv4(hostText) || hostnamePattern.test(hostText))
    return { ok: true, value: { host: hostText, port } };
  return { ok: false, reason: "expected host:port with an IPv4 address, [IPv6] or a DNS name" };
}

export function formatHostPort(a: HostPort): string {
  return isIPv6(a.host) ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Binds every interface: fine to listen on, meaningless to dial. */
export function isWildcardHost(host: string): boolean {
  return host === "0.0.0.0" || host === "::";
}

export function isLoopbackHost(host: string): boolean {
  if (host === "localhost" || host === "::1") return true;
  return isIPv4(host) && host.startsWith("127.");
}
