# SPDX-License-Identifier: GPL-2.0-or-later
# Runs inside the Xen lab's dom0 (as /lab/t/xen-pause.sh), for bench/xen-pause:
# one PVH guest (256 MiB, memwriter at each rate of /tmp/rates), in one
# run: (a) vmckpt live checkpoint to h2's store, (b) xl save -c (the guest
# stays paused for the whole save), (c) libxenguest's own live save. (b)
# and (c) write to dom0's tmpfs, (a) over the lab network to a peer.
. /lab/t/lib.sh
STORE=198.18.0.12:7471
field() { sed -n "s/.* $1 \([0-9]*\).*/\1/p" "$2"; }
ms() { awk '{printf "%d", $1 * 1000}' /proc/uptime; }  # busybox date has no %N
wait_until 30 'ping -c1 -W1 198.18.0.12 >/dev/null 2>&1' || fail "h2 unreachable"
epoch=0
for rate in $(echo "${VMCKPT_RATES:-0:2000:20000}" | tr : " "); do
    pvh_create b1 256 "memwriter -m 64 -r $rate -p 1" || fail "xl create"
    wait_until 90 'test -n "$(last_gen b1)"' || fail "memwriter did not start"
    sleep 3
    epoch=$((epoch + 1))
    vmckpt-vmtool checkpoint --xen b1 --job xb --epoch $epoch --store $STORE \
        --key /tmp/cluster.key --max-ms 60000 >/tmp/a.out 2>&1 || { cat /tmp/a.out; fail "vmckpt"; }
    t0=$(ms)
    xl save -c b1 /tmp/b1.save >/tmp/b.out 2>&1 || { cat /tmp/b.out; fail "xl save -c"; }
    t1=$(ms)
    bbytes=$(stat -c %s /tmp/b1.save); rm -f /tmp/b1.save
    vmckpt-vmtool xen-libxc-save --xen b1 --ram-out /tmp/b1.lx >/tmp/c.out 2>&1 || { cat /tmp/c.out; fail "libxc save"; }
    rm -f /tmp/b1.lx
    echo "bench rate $rate vmckpt pause_us $(field pause_us /tmp/a.out) total_ms $(field total_ms /tmp/a.out) bytes $(field wire_bytes /tmp/a.out) rounds $(field rounds /tmp/a.out)"
    echo "bench rate $rate xl-save-c pause_us $(( (t1 - t0) * 1000 )) total_ms $((t1 - t0)) bytes $bbytes rounds 1"
    echo "bench rate $rate libxc-live pause_us $(field pause_us /tmp/c.out) total_ms $(field total_ms /tmp/c.out) bytes $(field bytes /tmp/c.out) rounds -"
    xl destroy b1
done
say PASS
