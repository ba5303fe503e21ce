import { findBinary } from '../../host/binaries.js';
import type { BackendSetup, Prerequisite } from '../types.js';

/** The default member program is a Perl script (Perl is Essential in Debian: always there). */
function perlCheck(): Prerequisite {
  const perl = findBinary('perl');
  return {
    name: 'perl',
    ok: perl !== undefined,
    required: true,
    detail: perl ? `${perl} found (runs the default process member)` : 'perl missing (runs the default process member)',
    fix: perl ? null : 'run: fleetbox setup --yes',
    package: 'perl-base',
  };
}

/** Plain processes need Perl for their default program, and prepare nothing. */
export const backendSetup: BackendSetup = {
  cannotRun: () => (findBinary('perl') ? undefined : "perl is not installed (the default process member runs on it); run 'fleetbox setup --yes'"),
  check: () => Promise.resolve([perlCheck()]),
  prepare: () => Promise.resolve(),
};
