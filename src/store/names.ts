import { FleetboxError } from '../protocol/errors.js';

export const NAME_RULE = 'lowercase letters, digits and "-", starting with a letter or digit, at most 63 characters';
const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Whether `name` is a valid cluster or member name (see NAME_RULE). */
export function isValidName(name: string): boolean {
  return NAME_PATTERN.test(name);
}

/** Refuses any name that could escape the store or break a path, before anything is written. */
export function validateName(name: string, what = 'name'): string {
  if (!isValidName(name)) {
    const shown = name.length > 70 ? `${name.slice(0, 67)}...` : name;
    throw new FleetboxError('invalid_name', `invalid ${what} ${JSON.stringify(shown)}: use ${NAME_RULE}`);
  }
  return name;
}

/** The cluster a member belongs to: its name with one trailing `-<digits>` stripped. */
export function clusterOf(member: string): string {
  const match = /^(.+)-\d+$/.exec(member);
  return match?.[1] ?? member;
}

/** Member names `<cluster>-1 … <cluster>-n`. */
export function memberNames(cluster: string, count: number, firstIndex = 1): string[] {
  return Array.from({ length: count }, (_, i) => validateName(`${cluster}-${firstIndex + i}`, 'member name'));
}
