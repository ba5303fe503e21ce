/**
 * Test-only fault injection: when FLEETBOX_CRASH_AT names this point (comma-separated list
 * allowed), the process SIGKILLs itself right here, as a power cut or OOM kill would.
 */
export function crashPoint(name: string): void {
  const wanted = process.env.FLEETBOX_CRASH_AT;
  if (wanted && wanted.split(',').includes(name)) process.kill(process.pid, 'SIGKILL');
}

/**
 * Test-only: when FLEETBOX_HOLD_AT names this point as `point:ms` (comma-separated list allowed),
 * the process waits that long right here, so a test can act while it stands at a known step
 * (e.g. a fault order while a snapshot holds the members paused).
 */
export async function holdPoint(name: string): Promise<void> {
  const entry = process.env.FLEETBOX_HOLD_AT?.split(',').find((item) => item.startsWith(`${name}:`));
  const ms = entry ? Number(entry.slice(name.length + 1)) : 0;
  if (Number.isFinite(ms) && ms > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(ms, 60_000)));
}
