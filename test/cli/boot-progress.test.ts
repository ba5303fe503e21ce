import { describe, expect, it } from 'vitest';
import { bootProgress } from '../../dist/cli/boot-progress.js';
import type { MemberView } from '../../dist/control/status.js';

function view(name: string, state: MemberView['state'], progress?: string): MemberView {
  return {
    name, state, pid: null, running: state === 'running', ip: null, since: '', cluster: 'web', backend: 'qemu',
    source: 'holder', holderPid: 1, createdAt: null, ...(progress !== undefined && { progress }),
  };
}

describe('up progress lines', () => {
  it('says each member state once: the holder\'s starting → downloading → starting is one start with progress', () => {
    const lines: string[] = [];
    const onChange = bootProgress((line) => lines.push(line));
    // What waitMembers reports while the holder prepares a shared image for two members.
    for (const v of [
      view('web-1', 'starting'), view('web-2', 'starting'),
      view('web-1', 'downloading', 'downloading linux-image-cloud'), view('web-2', 'downloading', 'downloading linux-image-cloud'),
      view('web-1', 'downloading', 'building guest image'), view('web-2', 'downloading', 'building guest image'),
      view('web-1', 'starting'), view('web-2', 'starting'),
      view('web-2', 'running'), view('web-1', 'running'),
    ]) onChange(v);
    expect(lines).toEqual([
      'web-1: starting',
      'web-2: starting',
      '  preparing: downloading linux-image-cloud',
      '  preparing: building guest image',
      'web-2: running',
      'web-1: running',
    ]);
  });

  it('a member first seen downloading still reads as starting, once', () => {
    const lines: string[] = [];
    const onChange = bootProgress((line) => lines.push(line));
    for (const v of [view('a-1', 'downloading'), view('a-1', 'starting'), view('a-1', 'error')]) onChange(v);
    expect(lines).toEqual(['a-1: starting', 'a-1: error']);
  });
});
