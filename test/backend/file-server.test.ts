import { describe, expect, it } from 'vitest';
import { fileServerScript, guestAccounts, HIDDEN_DIRS } from '../../dist/backend/qemu/file-server.js';
import { kernelCommandLine, qemuArguments } from '../../dist/backend/qemu/command-line.js';

const plan = {
  root: { kind: 'host' as const },
  shares: [{ host: "/srv/it's", guest: '/opt/app', readOnly: true }, { host: '/data/out', guest: '/out', readOnly: false }],
  home: '/var/lib/fleetbox',
  top: '/s/clusters/c/c-1/files',
  etcDir: '/s/clusters/c/c-1/guest-etc',
  socket: '/s/run/x.vfs',
  virtiofsd: '/usr/lib/qemu/virtiofsd',
};

describe("a member's file server", () => {
  it('serves the host root read-only with the secrets hidden, shares under share<i>, then execs virtiofsd', () => {
    const script = fileServerScript(plan);
    const lines = script.split('\n');
    expect(lines[0]).toBe('set -e');
    expect(script).toContain("mount -o remount,bind,ro '/s/clusters/c/c-1/files/root'");
    for (const dir of [...HIDDEN_DIRS, plan.home]) expect(script, dir).toContain(`fleetbox-hidden '/s/clusters/c/c-1/files/root${dir}'`);
    expect(script).toContain("mount --bind '/s/clusters/c/c-1/guest-etc/shadow' '/s/clusters/c/c-1/files/root/etc/shadow'");
    // share 0 read-only at the source, share 1 writable; a quote in a path stays one argument
    expect(script).toContain(`mount --bind '/srv/it'\\''s' '/s/clusters/c/c-1/files/share0'\nmount -o remount,bind,ro '/s/clusters/c/c-1/files/share0'`);
    expect(script).toContain("mount --bind '/data/out' '/s/clusters/c/c-1/files/share1'\nmount -o remount,ro");
    expect(lines.at(-2)).toBe("mount -o remount,ro '/s/clusters/c/c-1/files'");
    expect(lines.at(-1)).toMatch(/^exec '\/usr\/lib\/qemu\/virtiofsd' --socket-path='\/s\/run\/x.vfs' -o source='\/s\/clusters\/c\/c-1\/files' -o cache=always -o sandbox=chroot/);
    // /var/lib is hidden but the package database is shown again, read-only
    expect(script).toMatch(/fleetbox-hidden '[^']*\/root\/var\/lib'\n {2}mkdir -p '[^']*\/root\/var\/lib\/dpkg'/);
  });

  it('shares only: no root in the tree; an image: its tree read-only, nothing hidden (it holds nothing of the host)', () => {
    const { root: _root, ...sharesOnly } = plan;
    expect(fileServerScript(sharesOnly)).not.toContain('/root');
    const image = fileServerScript({ ...plan, root: { kind: 'image', name: 'pg', dir: '/s/images/roots/pg/root' } });
    expect(image).toContain("mount --bind '/s/images/roots/pg/root' '/s/clusters/c/c-1/files/root'\nmount -o remount,bind,ro '/s/clusters/c/c-1/files/root'");
    expect(image).not.toContain('fleetbox-hidden');
  });

  it("keeps the host's system accounts and drops people, with no password anywhere", () => {
    const accounts = guestAccounts(
      'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\nredis:x:101:104::/var/lib/redis:/usr/sbin/nologin\nnobody:x:65534:65534::/:/usr/sbin/nologin\n',
      'root:x:0:\nsudo:x:27:alice,redis\nalice:x:1000:\nredis:x:104:\n',
    );
    expect(accounts.passwd).toBe('root:x:0:0:root:/root:/bin/bash\nredis:x:101:104::/var/lib/redis:/usr/sbin/nologin\nnobody:x:65534:65534::/:/usr/sbin/nologin\n');
    expect(accounts.group).toBe('root:x:0:\nsudo:x:27:redis\nredis:x:104:\n');
    expect(accounts.shadow.split('\n').filter(Boolean).every((line) => line.split(':')[1] === '*')).toBe(true);
    expect(guestAccounts('', '').passwd).toBe('root:x:0:0:root:/root:/bin/sh\n');
  });

  it('tells the guest its root and shares on the command line, and gives QEMU shared memory and the vhost-user device', () => {
    const cmdline = kernelCommandLine({ name: 'c-1', network: null, cpuKhz: 1, root: 'host', shares: plan.shares });
    expect(cmdline).toContain(' fleetbox.root=host fleetbox.shares=/opt/app:ro,/out:rw');
    expect(kernelCommandLine({ name: 'c-1', network: null, cpuKhz: 1 })).not.toMatch(/fleetbox\.(root|shares|init)/);
    expect(kernelCommandLine({ name: 'c-1', network: null, cpuKhz: 1, root: 'image', systemd: true })).toMatch(/ fleetbox\.root=image fleetbox\.init=systemd$/);
    const vm = { accel: 'tcg' as const, cpus: 1, memoryMiB: 256, kernel: 'k', initrd: 'i', cmdline, serialLog: 's' };
    const args = qemuArguments({ ...vm, fileServer: '/s/run/x,y.vfs' }).join(' ');
    expect(args).toContain('-M microvm,memory-backend=mem');
    expect(args).toContain('-object memory-backend-memfd,id=mem,size=256M,share=on');
    expect(args).toContain('-global virtio-mmio.force-legacy=false');
    expect(args).toContain('-chardev socket,id=fs0,path=/s/run/x,,y.vfs -device vhost-user-fs-device,chardev=fs0,tag=fleetbox');
    // without a file server the command line is what it always was
    expect(qemuArguments(vm).join(' ')).not.toMatch(/memory-backend|force-legacy|vhost-user/);
  });
});
