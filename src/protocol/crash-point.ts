/**
 * Test-only fault injection: when FLEETBOX_CRASH_AT names this point (comma-separated list
 * allowed), the process SIGKILLs itself right here, as a power cut or OOM kill would.
 */
export function crashPoint(name: string): void {
  const wanted = process.env.FLEETBOX_CRASH_AT;
  if (wanted && wanted.split(',').includes(name)) process.kill(process.pid, 'SIGKILL');
}
