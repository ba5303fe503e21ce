import { scratch } from '../scratch.js';
import { spawn } from 'node:child_process';
import { writeFileSync, existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { liveHolder, readPidfile, removePidfile, writePidfile } from '../../dist/store/pidfile.js';
import { processStartTime } from '../../dist/host/proc.js';

describe('pidfile', () => {
  it('records pid, start time and token, and trusts a live matching process', () => {
    const path = `${scratch()}/holder.pid`;
    writePidfile(path, 'tok1');
    const record = readPidfile(path);
    expect(record).toEqual({ pid: process.pid, startTime: processStartTime(process.pid), token: 'tok1' });
    expect(liveHolder(path)?.pid).toBe(process.pid);
  });

  it('distrusts a live PID whose start time differs (PID reuse)', () => {
    const path = `${scratch()}/holder.pid`;
    writeFileSync(path, `${process.pid} 1 tok\n`);
    expect(liveHolder(path)).toBeUndefined();
  });

  it('distrusts a dead PID', async () => {
    const child = spawn('true');
    await new Promise((resolve) => child.once('exit', resolve));
    const path = `${scratch()}/holder.pid`;
    writeFileSync(path, `${child.pid} 123 tok\n`);
    expect(liveHolder(path)).toBeUndefined();
  });

  it('ignores garbage and only removes its own token', () => {
    const path = `${scratch()}/holder.pid`;
    writeFileSync(path, 'not a pidfile');
    expect(readPidfile(path)).toBeUndefined();
    writePidfile(path, 'mine');
    removePidfile(path, 'theirs');
    expect(existsSync(path)).toBe(true);
    removePidfile(path, 'mine');
    expect(existsSync(path)).toBe(false);
  });
});
