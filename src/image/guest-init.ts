/**
 * The guest side of fleetbox: the initramfs's /init and what it reads and prints. Changing any
 * text here changes the image hash, so the next `prepare` rebuilds the image.
 */

/** Printed on the serial console once the guest is configured and SSH listens. */
export const READY_MARKER = 'FLEETBOX_READY';

/** Printed instead of the ready marker's companions when a step of the init fails. */
export const ERROR_MARKER = 'FLEETBOX_ERROR';

/** Kernel command line keys the init reads (dotted, so the kernel does not pass them to init's env). */
export const CMDLINE_KEYS = {
  name: 'fleetbox.name',
  ip: 'fleetbox.ip',
  gateway: 'fleetbox.gw',
  /** `host` or `image`: the root is served read-only by virtiofs, with a writable overlay. */
  root: 'fleetbox.root',
  /** Comma-separated `<guest path>:ro|rw`, in the order of share0, share1, … on the file server. */
  shares: 'fleetbox.shares',
  /** `systemd`: the served root's systemd is PID 1 (--init systemd). */
  init: 'fleetbox.init',
  /** `1`: a template for clones: boots to the agent and stops short of any identity. */
  template: 'fleetbox.template',
} as const;

/** Printed by a template guest once its agent, SSH and power button are up, with no identity yet. */
export const TEMPLATE_MARKER = 'FLEETBOX_TEMPLATE';

/** The virtiofs tag of a member's file server; its top holds `root/` and `share<i>/`. */
export const FS_TAG = 'fleetbox';

/**
 * Kernel modules the guest loads, in load order (dependencies first). The Debian cloud kernel
 * builds virtio as modules; microvm exposes virtio over MMIO, so the PCI and vsock modules of
 * the probe's list are left out. `path` is relative to lib/modules/<release>/kernel.
 */
export const GUEST_MODULES = [
  { name: 'virtio_ring', path: 'drivers/virtio/virtio_ring.ko' },
  { name: 'virtio', path: 'drivers/virtio/virtio.ko' },
  { name: 'virtio_mmio', path: 'drivers/virtio/virtio_mmio.ko' },
  { name: 'failover', path: 'net/core/failover.ko' },
  { name: 'net_failover', path: 'drivers/net/net_failover.ko' },
  { name: 'virtio_net', path: 'drivers/net/virtio_net.ko' },
  { name: 'virtio_blk', path: 'drivers/block/virtio_blk.ko' },
  { name: 'virtio-rng', path: 'drivers/char/hw_random/virtio-rng.ko' },
  // virtio-serial: the guest agent's port, the bulk port and the exec ports.
  { name: 'virtio_console', path: 'drivers/char/virtio_console.ko' },
  // evdev before button: the power button's input device must get an event node for init to read.
  { name: 'evdev', path: 'drivers/input/evdev.ko' },
  { name: 'button', path: 'drivers/acpi/button.ko' },
] as const;

/** Loaded only by a member with a file server (--rootfs host, --share): they cost boot time. */
export const FS_MODULES = [
  { name: 'fuse', path: 'fs/fuse/fuse.ko' },
  { name: 'virtiofs', path: 'fs/fuse/virtiofs.ko' },
  { name: 'overlay', path: 'fs/overlayfs/overlay.ko' },
] as const;

/**
 * Loaded only when a member's traffic is shaped (fault delay): netem does delay, loss and rate;
 * prio and u32 send only the traffic to chosen members through it. None has a dependency.
 */
export const SHAPING_MODULES = [
  { name: 'sch_netem', path: 'net/sched/sch_netem.ko' },
  { name: 'sch_prio', path: 'net/sched/sch_prio.ko' },
  { name: 'cls_u32', path: 'net/sched/cls_u32.ko' },
] as const;

/** Every module the kernel cache and the initramfs carry. */
export const ALL_GUEST_MODULES = [...GUEST_MODULES, ...FS_MODULES, ...SHAPING_MODULES] as const;

/**
 * Where a member's own root (host or image) finds fleetbox's tools after the switch: the
 * initramfs's busybox, dropbear, qemu-ga and tc, their libraries, and the shaping modules.
 */
export const GUEST_TOOLS = '/run/fleetbox';

/** The virtio-serial port name the guest agent (qemu-ga) listens on; QEMU's conventional name. */
export const AGENT_PORT = 'org.qemu.guest_agent.0';
/** The virtio-serial port of bulk bytes (copies), served by the init's bulk loop. */
export const BULK_PORT = 'org.fleetbox.bulk.0';
/** What the bulk loop answers to a hello: its protocol. */
export const BULK_HELLO = 'FLEETBOX_BULK 1';

/**
 * The exec ports, `org.fleetbox.exec.<k>`: each is served by a program of its own
 * (EXEC_SERVER), so up to EXEC_PORTS commands run side by side without the agent; more go to it.
 */
export const EXEC_PORT_PREFIX = 'org.fleetbox.exec.';
export const EXEC_PORTS = 4;
/** What an exec port's server answers to a hello, before the hello's nonce and the server's PID. */
export const EXEC_HELLO = 'FLEETBOX_EXEC 1';
/** Output kept of each stream of a command, as qemu-ga keeps (beyond it the result says truncated). */
export const EXEC_OUTPUT_CAP = 16 << 20;
/** Port k's server is named <dir> = EXEC_DIR/<k> (its hello says so); <dir>.id says which request it runs, for the host's kill. */
export const EXEC_DIR = '/run/fleetbox-exec';
/** What a command starts with, as dropbear gives an SSH command: the server runs under exactly this. */
export const GUEST_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', 'USER=root', 'LOGNAME=root', 'SHELL=/bin/sh'];
/**
 * The exec ports' server (image/exec-server.c, built by image/exec-server.ts), in the initramfs,
 * run as 'fleetbox-exec <port> <dir> <shell> EXEC_REQUEST', one per port.
 */
export const EXEC_SERVER = '/bin/fleetbox-exec';

/**
 * The script of a command's shell when the guest's /bin/sh is this busybox: the exec server
 * starts the shell before the request comes and hands it, on fd 3, the path of its input (empty
 * for none) on a line and the command up to a NUL. It reads them with builtins, gives up its
 * variables and runs the command with eval, as 'sh -c' would (same $0, $#, $$, $PPID, $LINENO,
 * environment, SHLVL, folder, exit code, exit, return, traps). One line, so that the eval is on
 * the script's first line and $LINENO counts as under 'sh -c'. What differs: 'not found' and
 * syntax errors say 'eval: line N:' ('/bin/sh: eval: line 0: x: not found', not '/bin/sh: x: not
 * found'); the command's last program is forked, not exec'd in the shell's place, so it has a
 * PID of its own, starts with SIGQUIT at its default (busybox ignores SIGQUIT and leaves it so
 * for a program it execs in its own place) and, if a signal ends it, the shell says so on stderr
 * ('Killed'), as it does for any program but the last under 'sh -c'; ps shows the shell as
 * '/bin/sh -c <this script>'; a command that starts with '-' is run, not read as an option.
 * With another /bin/sh (dash in a Debian root) the server execs '/bin/sh -c <command>' instead.
 */
export const EXEC_REQUEST = [
  // Handed nothing whole (the server went away): nothing runs.
  'read -r i <&3 || exit',
  'IFS= read -r -d "" c <&3 || exit',
  'exec <"${i:-/dev/null}" 3<&-',
  'unset i',
  'eval "unset c; $c"',
].join('; ');
if (EXEC_REQUEST.includes("'")) throw new Error('EXEC_REQUEST goes inside single quotes in the init: it must have none');

/** The reseed program (image/reseed-program.ts) in the initramfs: copied guests run it. */
export const RESEED_PROGRAM = '/bin/fleetbox-reseed';

/** Where the dropbear host key and the authorised client key sit inside the initramfs. */
export const GUEST_HOST_KEY = '/etc/dropbear/dropbear_ed25519_host_key';
export const GUEST_AUTHORIZED_KEYS = '/root/.ssh/authorized_keys';

export const GUEST_INIT = `#!/bin/busybox sh
# fleetbox guest init (PID 1). Source: src/image/guest-init.ts.
# The busybox applet links are made when the image is built: at boot, under TCG, every
# instruction saved is boot time saved.
fail() { echo "${ERROR_MARKER} $*"; }
# A step the guest cannot be used without: say so, and stay PID 1 (its exit panics the kernel).
die() { fail "$@"; while :; do sleep 3600; done; }

# The guest agent on its virtio-serial port: the holder's way in for readiness, health and what
# the bulk and exec ports do not take, with or without a network. It runs in root's home, where
# commands start as they do over SSH.
# Started as early as its root allows: under emulation it takes a while to load.
start_agent() {
  PORT=
  i=0
  while [ -z "$PORT" ] && [ $i -lt 300 ]; do
    for p in /sys/class/virtio-ports/*; do
      [ "$(cat $p/name 2>/dev/null)" = ${AGENT_PORT} ] && PORT=/dev/\${p##*/}
    done
    [ -z "$PORT" ] && { usleep 10000; i=$((i+1)); }
  done
  if [ -n "$PORT" ]; then
    mkdir -p /root
    ( cd /root && exec $AGENT -m virtio-serial -p $PORT -t /run ) 2>>/run/qemu-ga.log &
    echo $! > /run/qemu-ga.pid
    # The raw ports come with the agent's (a guest booted without any, e.g. the KVM probe, has none).
    start_bulk
    EXEC_PORTS_WANTED=1
  else
    fail "agent: no virtio-serial port named ${AGENT_PORT}"
  fi
  AGENT_STARTED=1
}

# The bulk loop on its own port: a copy's bytes raw, not as JSON and base64 parsed by the agent
# in the emulated guest. One request at a time, a header line and then the bytes
# (src/backend/qemu/bulk.ts is the other end):
#   H 0 0 0                     -> ${BULK_HELLO}
#   W <append> <size> <n><path> + <size> bytes -> OK | ERR <why>   (path: n bytes after the line)
#   R <offset> <count> <n><path> -> OK <bytes> <eof> + that many bytes | ERR <why>
# A file that cannot be written still has its bytes read off the port, so the stream stays in step.
bulk_serve() {
  while :; do
    exec 3<>"$1" || { sleep 1; continue; }
    while read -r op a b n <&3; do
      # dd, not head: busybox's head reads ahead (stdio) and would eat the next bytes.
      p=; [ "$n" -gt 0 ] && p=$(dd bs="$n" count=1 iflag=fullblock <&3 2>/dev/null)
      case "$op" in
        H) echo "${BULK_HELLO}" >&3 ;;
        W) if [ "$b" -gt 0 ]; then dd bs="$b" count=1 iflag=fullblock <&3 2>/dev/null; fi |
             { if [ "$a" = 1 ]; then cat >> "$p"; else cat > "$p"; fi 2>/dev/null || { cat >/dev/null; false; }; }
           if [ $? = 0 ]; then echo OK >&3; else echo "ERR cannot write $p" >&3; fi ;;
        R) if [ -d "$p" ] || ! s=$(stat -c %s "$p" 2>/dev/null) || ! [ -r "$p" ]; then echo "ERR cannot read $p" >&3; continue; fi
           c=$((s - a)); [ $c -lt 0 ] && c=0; [ $c -gt "$b" ] && c=$b
           e=0; [ $((a + c)) -ge $s ] && e=1
           echo "OK $c $e" >&3
           # Exactly c bytes whatever happens to the file meanwhile (padded with zeros), written in
           # one go: the port takes big writes in few exits of the emulated guest.
           [ "$c" -gt 0 ] || continue
           if [ $((a % 65536)) = 0 ]; then { dd if="$p" bs=65536 skip=$((a / 65536)) count=$(((c + 65535) / 65536)) 2>/dev/null; head -c "$c" /dev/zero; }
           else { tail -c +$((a + 1)) "$p" 2>/dev/null; head -c "$c" /dev/zero; }; fi | dd bs="$c" count=1 iflag=fullblock 2>/dev/null >&3 ;;
        *) echo "ERR unknown request $op" >&3 ;;
      esac
    done
    exec 3<&-
    sleep 1
  done
}
start_bulk() {
  for p in /sys/class/virtio-ports/*; do
    read -r name 2>/dev/null < $p/name || continue
    [ "$name" = ${BULK_PORT} ] || continue
    ( cd /root && bulk_serve /dev/\${p##*/} ) </dev/null >/dev/null 2>>/run/fleetbox-bulk.log &
  done
}

# The exec servers (EXEC_SERVER), one per port, started once the guest is ready (the holder's
# hello waits in the port's socket until a server opens it), so their processes do not delay the
# ready marker. They run with exactly the environment a command gets (GUEST_ENV), in root's
# home, and are started by start-stop-daemon, not with '&': a shell without job control starts
# background jobs with SIGINT and SIGQUIT ignored. Ports get their names a moment after they
# appear: wait (bounded) until all are there. 'read', not 'cat': fewer processes.
start_exec_ports() {
  mkdir -p ${EXEC_DIR} 2>>/run/fleetbox-exec.log || return
  # By their paths: the command's PATH (GUEST_ENV) need not lead to fleetbox's tools.
  BB=/bin/busybox; [ -x ${GUEST_TOOLS}/bin/busybox ] && BB=${GUEST_TOOLS}/bin/busybox
  X=${EXEC_SERVER}; [ -x ${GUEST_TOOLS}${EXEC_SERVER} ] && X=${GUEST_TOOLS}${EXEC_SERVER}
  # Commands are run by a shell started ahead when the root's /bin/sh is this busybox (EXEC_REQUEST).
  S=; [ /bin/sh -ef $BB ] && S=/bin/sh
  started= n=0 i=0
  while [ $n -lt ${EXEC_PORTS} ] && [ $i -lt 300 ]; do
    for p in /sys/class/virtio-ports/*; do
      case "$started " in *" \${p##*/} "*) continue ;; esac
      read -r name 2>/dev/null < $p/name || continue
      case "$name" in
        ${EXEC_PORT_PREFIX}*) k=\${name#${EXEC_PORT_PREFIX}}
          ( cd /root && exec env -i ${GUEST_ENV.join(' ')} $BB start-stop-daemon -S -b -p ${EXEC_DIR}/$k.pid -m -x $X -- /dev/\${p##*/} ${EXEC_DIR}/$k "$S" '${EXEC_REQUEST}' ) </dev/null >/dev/null 2>>/run/fleetbox-exec.log ;;
        *) continue ;;
      esac
      started="$started \${p##*/}" n=$((n + 1))
    done
    [ $n -lt ${EXEC_PORTS} ] && { usleep 10000; i=$((i + 1)); }
  done
  # Not a failed boot: commands then go through the agent.
  [ $n -ge ${EXEC_PORTS} ] || echo "only $n of the ${EXEC_PORTS} exec ports appeared" >>/run/fleetbox-exec.log
}

if [ "$1" = stage2 ] || [ "$1" = services ]; then
  # In the member's own root (host or image): PID 1 again (stage2), or the fleetbox unit that
  # systemd starts (services). fleetbox's tools are in ${GUEST_TOOLS}, never on the guest's PATH.
  export PATH=${GUEST_TOOLS}/bin
  [ "$1" = stage2 ] && busybox --install -s ${GUEST_TOOLS}/bin
  . ${GUEST_TOOLS}/env
  if [ "$1" = stage2 ] && [ "$INIT" = systemd ]; then
    [ -x /lib/systemd/systemd ] || die "init: this root has no /lib/systemd/systemd"
    exec /lib/systemd/systemd
  fi
  # systemd owns the console: what the unit says goes to the serial port itself.
  [ "$1" = services ] && exec >/dev/ttyS0 2>&1
  # The root's own dropbear when it has one (the host has; images get dropbear-bin), else the
  # initramfs's with its libraries: dropbear re-executes itself for every connection, so those
  # are found through LD_LIBRARY_PATH, not a loader argument.
  DROPBEAR="env LD_LIBRARY_PATH=${GUEST_TOOLS}/lib ${GUEST_TOOLS}/bin/dropbear"
  [ -x /usr/sbin/dropbear ] && DROPBEAR=/usr/sbin/dropbear
  # The agent likewise, started through the copied loader so that no library path leaks into
  # what it runs.
  AGENT="${GUEST_TOOLS}/lib/ld-linux-x86-64.so.2 --library-path ${GUEST_TOOLS}/lib ${GUEST_TOOLS}/bin/qemu-ga"
  [ -x /usr/sbin/qemu-ga ] && AGENT=/usr/sbin/qemu-ga
  HOSTKEY=${GUEST_TOOLS}/host_key
else
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /tmp /run /data /var/log
mount -t devpts devpts /dev/pts

NAME=guest IP= GW= ROOT= SHARES= INIT= TEMPLATE=
for kv in $(cat /proc/cmdline); do
  case "$kv" in
    ${CMDLINE_KEYS.name}=*) NAME=\${kv#${CMDLINE_KEYS.name}=} ;;
    ${CMDLINE_KEYS.ip}=*) IP=\${kv#${CMDLINE_KEYS.ip}=} ;;
    ${CMDLINE_KEYS.gateway}=*) GW=\${kv#${CMDLINE_KEYS.gateway}=} ;;
    ${CMDLINE_KEYS.root}=*) ROOT=\${kv#${CMDLINE_KEYS.root}=} ;;
    ${CMDLINE_KEYS.shares}=*) SHARES=\${kv#${CMDLINE_KEYS.shares}=} ;;
    ${CMDLINE_KEYS.init}=*) INIT=\${kv#${CMDLINE_KEYS.init}=} ;;
    ${CMDLINE_KEYS.template}=1) TEMPLATE=1 ;;
  esac
done

# Errors are ignored: a module may have no device (no disk) or be built in on another kernel.
for m in ${GUEST_MODULES.map((m) => m.name).join(' ')}; do
  [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
done
# This root is the member's own root unless another is served: start the agent now.
AGENT=qemu-ga
[ -z "$ROOT" ] && start_agent

ip link set lo up
# A template stops here short of an identity: a clone gets its name, address and MAC from the
# holder over the agent (cloneIdentityScript), and its eth0 stays down until then.
if [ -z "$TEMPLATE" ]; then
hostname "$NAME"
printf '127.0.0.1 localhost\\n%s %s\\n' "\${IP%/*}" "$NAME" > /etc/hosts
# Member names resolve through the cluster's dnsmasq on the gateway address (src/net/dns.ts).
[ -n "$GW" ] && echo "nameserver $GW" > /etc/resolv.conf
if [ -n "$IP" ]; then
  # virtio-net binds while its module loads; the bounded wait only covers a slow probe.
  i=0
  while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 300 ]; do usleep 10000; i=$((i+1)); done
  if ip addr add "$IP" dev eth0 && ip link set eth0 up; then
    [ -n "$GW" ] && ip route add default via "$GW"
  else
    fail "network: cannot configure eth0 with $IP"
  fi
fi
else
  # Saved only once eth0 exists: a clone configures it at once.
  i=0
  while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 300 ]; do usleep 10000; i=$((i+1)); done
fi

DISK=
if [ -b /dev/vda ]; then
  # Format only a disk that was never written (all zeros at the start): a disk that holds
  # anything else, e.g. a file system this kernel cannot mount, must never be wiped.
  if [ "$(dd if=/dev/vda bs=4096 count=1 2>/dev/null | tr -d '\\000' | wc -c)" = 0 ]; then
    mke2fs -q /dev/vda >/dev/null 2>&1 || fail "disk: mke2fs /dev/vda failed"
  fi
  mount -t ext2 /dev/vda /data && DISK=1 || fail "disk: cannot mount /dev/vda at /data"
fi

# The host's file server (virtiofs): the host root under root/, share <i> under share<i>/.
if [ -n "$ROOT" ] || [ -n "$SHARES" ]; then
  for m in ${FS_MODULES.map((m) => m.name).join(' ')}; do
    [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
  done
  mkdir -p /fbx
  mount -t virtiofs ${FS_TAG} /fbx || die "virtiofs: cannot mount the host's file server"
fi
# Share <i> at its guest path under the root being built ($NEW), read-only in the guest too
# when it is on the host. Before /proc moves: remounting needs /proc/mounts.
mount_shares() {
  i=0
  for s in $(echo "$SHARES" | tr , ' '); do
    dst=$NEW\${s%:*}
    mkdir -p "$dst" && mount --bind /fbx/share$i "$dst" || die "share: cannot mount share $i at \${s%:*}"
    if [ "\${s##*:}" = ro ]; then mount -o remount,bind,ro "$dst" || die "share: cannot make \${s%:*} read-only"; fi
    i=$((i+1))
  done
}
NEW=
if [ -n "$ROOT" ]; then
  # The served root (the host's or an image's) is the read-only lower layer; the member writes to an upper layer of its own,
  # on its disk when it has one (so writes survive a stop), else in RAM.
  NEW=/newroot
  mkdir -p $NEW /overlay
  if [ -n "$DISK" ]; then U=/data/.fleetbox-root; else mount -t tmpfs -o mode=0755 overlay /overlay; U=/overlay; fi
  mkdir -p $U/upper $U/work
  mount -t overlay overlay -o lowerdir=/fbx/root,upperdir=$U/upper,workdir=$U/work $NEW ||
    die "rootfs: cannot lay the member's overlay over its $ROOT root"
  mount_shares
  for d in proc sys dev; do mount --move /$d $NEW/$d || die "rootfs: cannot move /$d into the new root"; done
  mount -t tmpfs -o mode=0755,nosuid,nodev run $NEW/run
  mount -t tmpfs -o mode=1777,nosuid,nodev tmp $NEW/tmp
  mkdir -p $NEW/dev/shm && mount -t tmpfs -o mode=1777,nosuid,nodev shm $NEW/dev/shm
  if [ -n "$DISK" ]; then mkdir -p $NEW/data && mount --move /data $NEW/data; fi
  # The guest's own identity files, never the host's (links there could point anywhere).
  for f in hostname hosts resolv.conf; do rm -f $NEW/etc/$f; done
  echo "$NAME" > $NEW/etc/hostname
  # Its own machine id (the host's would be shared by every member), stable across its boots.
  rm -f $NEW/etc/machine-id && echo "$NAME $IP" | md5sum | cut -c1-32 > $NEW/etc/machine-id
  cp /etc/hosts $NEW/etc/hosts
  [ -f /etc/resolv.conf ] && cp /etc/resolv.conf $NEW/etc/resolv.conf
  mkdir -p $NEW/root/.ssh && cp ${GUEST_AUTHORIZED_KEYS} $NEW/root/.ssh/authorized_keys
  chmod 700 $NEW/root $NEW/root/.ssh
  # What stage 2 runs from: this init, a static busybox, the exec server (static), dropbear
  # with its own libraries.
  F=$NEW${GUEST_TOOLS}
  mkdir -p $F/bin $F/lib
  cp /init $F/init && cp /bin/busybox ${EXEC_SERVER} $F/bin/ && cp ${GUEST_HOST_KEY} $F/host_key ||
    die "rootfs: cannot copy fleetbox's tools into the new root"
  # A root without its own dropbear, agent or tc gets the initramfs's, with the libraries they
  # need; the shaping modules (loaded when a fault delays the member) go along in any case.
  mkdir -p $F/modules
  for m in ${SHAPING_MODULES.map((m) => m.name).join(' ')}; do [ -f /lib/modules/$m.ko ] && cp /lib/modules/$m.ko $F/modules/; done
  if [ ! -x $NEW/usr/sbin/dropbear ] || [ ! -x $NEW/usr/sbin/qemu-ga ] || [ ! -x $NEW/usr/sbin/tc ]; then
    cp /bin/dropbear /bin/qemu-ga /bin/tc $F/bin/ || die "rootfs: cannot copy dropbear, qemu-ga and tc into the new root"
    for f in $(find /lib /lib64 -name '*.so*' -type f 2>/dev/null); do cp $f $F/lib/; done
  fi
  printf 'NAME=%s\\nIP=%s\\nINIT=%s\\n' "$NAME" "$IP" "$INIT" > $F/env
  if [ "$INIT" = systemd ]; then
    # systemd is PID 1; SSH, the power button and the ready marker are a unit of its own.
    U=$NEW/etc/systemd/system
    mkdir -p $U/multi-user.target.wants
    printf '[Unit]\\nDescription=fleetbox: SSH, power button, ready marker\\n[Service]\\nExecStart=${GUEST_TOOLS}/bin/busybox sh ${GUEST_TOOLS}/init services\\n[Install]\\nWantedBy=multi-user.target\\n' > $U/fleetbox.service
    ln -sf ../fleetbox.service $U/multi-user.target.wants/fleetbox.service
    # No logins on consoles (fleetbox reaches the guest by SSH): a serial getty would wait 90 s
    # for a device unit that an image without udev never gets.
    for g in serial-getty@.service getty@.service getty-static.service; do ln -sf /dev/null $U/$g; done
  fi
else
  mount_shares
fi
[ -n "$NEW" ] && exec switch_root $NEW ${GUEST_TOOLS}/bin/busybox sh ${GUEST_TOOLS}/init stage2
DROPBEAR=dropbear HOSTKEY=${GUEST_HOST_KEY}
fi

[ -n "$AGENT_STARTED" ] || start_agent

# QMP system_powerdown presses the ACPI power button: flush the disk, then power off, so QEMU
# exits on its own and the member's disk is consistent.
for e in /sys/class/input/event*; do
  [ -e "$e" ] || continue
  if grep -q "Power Button" "$e/device/name" 2>/dev/null; then
    ( dd if=/dev/input/\${e##*/} bs=24 count=1 >/dev/null 2>&1
      echo "FLEETBOX_POWERDOWN $(cat /proc/sys/kernel/hostname)"
      [ "$1" = services ] && exec /bin/systemctl poweroff
      sync; umount /data 2>/dev/null; poweroff -f ) &
  fi
done

mkdir -p /etc/dropbear /var/log
$DROPBEAR -F -E -s -p 22 -r $HOSTKEY -P /run/dropbear.pid 2>>/run/dropbear.log &
# The ready marker promises that SSH listens: wait (bounded) for the listening socket.
i=0
until grep -q ':0016 00000000:0000 0A' /proc/net/tcp 2>/dev/null || [ $i -ge 500 ]; do usleep 10000; i=$((i+1)); done
if [ $i -ge 500 ]; then
  fail "ssh: dropbear is not listening on port 22"
  tail -n 5 /run/dropbear.log
fi

# Under systemd the member is running once the whole system is up (running, or degraded:
# a unit of the user's that failed is theirs to see, not a failed boot).
[ "$1" = services ] && /bin/systemctl is-system-running --wait >/dev/null 2>&1
# A template starts its exec servers before its marker (it is saved right after: its clones get
# them running); a member after its own, so that they do not delay it.
if [ -n "$TEMPLATE" ]; then
  [ -n "$EXEC_PORTS_WANTED" ] && start_exec_ports
  echo "${TEMPLATE_MARKER} uptime=$(cut -d' ' -f1 /proc/uptime)s"
else
  echo "${READY_MARKER} $NAME ip=\${IP:-none} uptime=$(cut -d' ' -f1 /proc/uptime)s"
  [ -n "$EXEC_PORTS_WANTED" ] && start_exec_ports
fi
# PID 1 must live (its exit panics the kernel) and reaps orphans while it waits.
while :; do sleep 3600; done
`;

/**
 * What a clone of a template runs (through its agent, as root) to become member `name`: host
 * name, hosts and resolver files, its own MAC on eth0 (the template's is in every clone's
 * restored device), its address and route, the wall clock (the template's stopped when it was
 * saved), then the ready marker on its console. 64 fresh random bytes arrive as the script's
 * input and are mixed into the guest's pool, and the generator is reseeded from it at once
 * (RESEED_PROGRAM): clones never share the template's generator state.
 */
export function cloneIdentityScript(identity: { name: string; ip: string; prefix: number; gateway: string | null; mac: string; epochSeconds: number }): string {
  const { name, ip, prefix, gateway, mac } = identity;
  const lines = [
    'set -e',
    // The clock first: what the script writes is stamped with today's time, not the template's.
    `date -u -s @${Math.floor(identity.epochSeconds)} >/dev/null`,
    `hostname ${name}`,
    `printf '127.0.0.1 localhost\\n%s %s\\n' ${ip} ${name} > /etc/hosts`,
    gateway ? `echo "nameserver ${gateway}" > /etc/resolv.conf` : 'rm -f /etc/resolv.conf',
    `ip link set eth0 address ${mac}`,
    `ip addr add ${ip}/${prefix} dev eth0`,
    'ip link set eth0 up',
    ...(gateway ? [`ip route add default via ${gateway}`] : []),
    // Fresh bytes into the pool, then a reseed from it now (set -e: a refusal fails the script).
    'cat > /dev/urandom',
    RESEED_PROGRAM,
    `echo "${READY_MARKER} ${name} ip=${ip}/${prefix} clone uptime=$(cut -d' ' -f1 /proc/uptime)s" > /dev/ttyS0`,
  ];
  return lines.join('\n');
}

/**
 * What a member restored from a snapshot runs through its agent to become itself: the guest
 * already has its address and everything the saved member had (a fork keeps the same addresses
 * in its own network), so only the name, the clock and the entropy change; then the ready marker.
 * The random bytes come on standard input and the generator is reseeded from them at once:
 * forks of one snapshot never share RNG state.
 */
export function forkIdentityScript(identity: { name: string; ip: string; prefix: number; epochSeconds: number }): string {
  const { name, ip, prefix } = identity;
  return [
    'set -e',
    `date -u -s @${Math.floor(identity.epochSeconds)} >/dev/null`,
    `hostname ${name}`,
    `printf '127.0.0.1 localhost\\n%s %s\\n' ${ip} ${name} > /etc/hosts`,
    'cat > /dev/urandom',
    RESEED_PROGRAM,
    `echo "${READY_MARKER} ${name} ip=${ip}/${prefix} restored uptime=$(cut -d' ' -f1 /proc/uptime)s" > /dev/ttyS0`,
  ].join('\n');
}
