import { ip } from './ip-command.js';

/** An IPv4 network as [first address, prefix length]. */
type Network = [number, number];

function toInt(address: string): number | undefined {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return undefined;
  return (((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0);
}

function parse(dst: string): Network | undefined {
  const [address, bits] = dst.split('/');
  const base = toInt(address ?? '');
  const prefix = bits === undefined ? 32 : Number(bits);
  if (base === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) return undefined;
  return [base, prefix];
}

function overlaps([a, pa]: Network, [b, pb]: Network): boolean {
  const bits = Math.min(pa, pb);
  if (bits === 0) return true;
  const mask = (0xffffffff << (32 - bits)) >>> 0;
  return ((a & mask) >>> 0) === ((b & mask) >>> 0);
}

/** The host's IPv4 routes (main table) as "a.b.c.d/n" strings; the default route is left out. */
export async function hostRoutes(): Promise<string[]> {
  const routes = JSON.parse((await ip(['-j', '-4', 'route', 'show'])) || '[]') as { dst?: string }[];
  return routes.map((r) => r.dst ?? '').filter((dst) => dst !== '' && dst !== 'default');
}

/** The first route of `routes` that overlaps `subnet` ("a.b.c", a /24), or undefined. */
export function overlappingRoute(subnet: string, routes: readonly string[]): string | undefined {
  const own = parse(`${subnet}.0/24`);
  if (!own) return undefined;
  return routes.find((route) => {
    const other = parse(route);
    return other !== undefined && overlaps(own, other);
  });
}
