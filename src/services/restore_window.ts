// Restore windows: a cron pattern (croner) in a time zone opens a window of a given length, during which a
// preferred node may take its service back. Each opening has its own id (its start, in ISO form), so
// placement can move a service home at most once per opening.
import { Cron } from "croner";
import type { ServiceConfig } from "../config/index.ts";

type Window = NonNullable<ServiceConfig["restoreWindow"]>;

/** Parsed once per window: placement asks twice a second. */
const crons = new WeakMap<Window, Cron>();

/** The opening of `window` that contains `atMs` (wall clock), by its start time; null when closed. */
export function openRestoreWindow(window: Window, atMs: number): string | null {
  let cron = crons.get(window);
  if (cron === undefined) {
    cron = new Cron(window.cron, { timezone: window.timezone, paused: true });
    crons.set(window, cron);
  }
  // The first opening after atMs - length is the only one that can still be open at atMs.
  const start = cron.nextRun(new Date(atMs - window.lengthMs));
  if (start === null || start.getTime() > atMs) return null;
  return start.toISOString();
}

/** Placement's view: the open window of a service that has one. */
export function serviceWindow(service: ServiceConfig, atMs: number): string | null {
  return service.restoreWindow === null ? null : openRestoreWindow(service.restoreWindow, atMs);
}
