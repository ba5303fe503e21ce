/**
 * The guest side of fleetbox: the initramfs's /init and what it reads and prints. Changing any
 * text here changes the image hash, so the next `prepare` rebuilds the image.
 */

/** Printed on the serial console once the guest is configured and SSH listens. */
export const READY_MARKER = 'FLEETBOX_READY';

/** Printed instead of the ready marker's companions when a step of the init fails. */
export const ERROR_MARKER = 'FLEETBOX_ERROR';

/** Kernel command line keys the init reads (dotted, so the kernel does not pass them to init's env). */
export const CMDLINE_KEYS = { name: 'fleetbox.name', ip: 'fleetbox.ip', gateway: 'fleetbox.gw' } as const;

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
  // evdev before button: the power button's input device must get an event node for init to read.
  { name: 'evdev', path: 'drivers/input/evdev.ko' },
  { name: 'button', path: 'drivers/acpi/button.ko' },
] as const;

/** Where the dropbear host key and the authorised client key sit inside the initramfs. */
export const GUEST_HOST_KEY = '/etc/dropbear/dropbear_ed25519_host_key';
export const GUEST_AUTHORIZED_KEYS = '/root/.ssh/authorized_keys';

export const GUEST_INIT = `#!/bin/busybox sh
# fleetbox guest init (PID 1). Source: src/image/guest-init.ts.
# The busybox applet links are made when the image is built: at boot, under TCG, every
# instruction saved is boot time saved.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /tmp /run /data /var/log
mount -t devpts devpts /dev/pts
fail() { echo "${ERROR_MARKER} $*"; }

NAME=guest IP= GW=
for kv in $(cat /proc/cmdline); do
  case "$kv" in
    ${CMDLINE_KEYS.name}=*) NAME=\${kv#${CMDLINE_KEYS.name}=} ;;
    ${CMDLINE_KEYS.ip}=*) IP=\${kv#${CMDLINE_KEYS.ip}=} ;;
    ${CMDLINE_KEYS.gateway}=*) GW=\${kv#${CMDLINE_KEYS.gateway}=} ;;
  esac
done

# Errors are ignored: a module may have no device (no disk) or be built in on another kernel.
for m in ${GUEST_MODULES.map((m) => m.name).join(' ')}; do
  [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
done

hostname "$NAME"
printf '127.0.0.1 localhost\\n%s %s\\n' "\${IP%/*}" "$NAME" > /etc/hosts
# Member names resolve through the cluster's dnsmasq on the gateway address (src/net/dns.ts).
[ -n "$GW" ] && echo "nameserver $GW" > /etc/resolv.conf
ip link set lo up
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

if [ -b /dev/vda ]; then
  # Format only a disk that was never written (all zeros at the start): a disk that holds
  # anything else, e.g. a file system this kernel cannot mount, must never be wiped.
  if [ "$(dd if=/dev/vda bs=4096 count=1 2>/dev/null | tr -d '\\000' | wc -c)" = 0 ]; then
    mke2fs -q /dev/vda >/dev/null 2>&1 || fail "disk: mke2fs /dev/vda failed"
  fi
  mount -t ext2 /dev/vda /data || fail "disk: cannot mount /dev/vda at /data"
fi

# QMP system_powerdown presses the ACPI power button: flush the disk, then power off, so QEMU
# exits on its own and the member's disk is consistent.
for e in /sys/class/input/event*; do
  [ -e "$e" ] || continue
  if grep -q "Power Button" "$e/device/name" 2>/dev/null; then
    ( dd if=/dev/input/\${e##*/} bs=24 count=1 >/dev/null 2>&1
      echo "FLEETBOX_POWERDOWN $NAME"
      sync; umount /data 2>/dev/null; poweroff -f ) &
  fi
done

mkdir -p /etc/dropbear
dropbear -F -E -s -p 22 -r ${GUEST_HOST_KEY} -P /run/dropbear.pid 2>>/var/log/dropbear.log &
# The ready marker promises that SSH listens: wait (bounded) for the listening socket.
i=0
until grep -q ':0016 00000000:0000 0A' /proc/net/tcp 2>/dev/null || [ $i -ge 500 ]; do usleep 10000; i=$((i+1)); done
if [ $i -ge 500 ]; then
  fail "ssh: dropbear is not listening on port 22"
  tail -n 5 /var/log/dropbear.log
fi

echo "${READY_MARKER} $NAME ip=\${IP:-none} uptime=$(cut -d' ' -f1 /proc/uptime)s"
# PID 1 must live (its exit panics the kernel) and reaps orphans while it waits.
while :; do sleep 3600; done
`;
