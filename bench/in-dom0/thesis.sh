# SPDX-License-Identifier: GPL-2.0-or-later
# Runs inside the Xen lab's dom0 (as /lab/t/thesis.sh), for bench/thesis:
# one PVH guest ($VMCKPT_MEM MiB, the QEMU lab's guest initramfs with hpcc
# and /thesis/hpl.sh, /lab/guest-thesis.img) per row, HPL of each N of
# $VMCKPT_HPL_NS (colon-separated) under (a) no checkpoint, (b) vmckpt's
# stop-and-save, (c) a live checkpoint, (d) two in a row, each to h2's
# store, begun when HPL's section begins. Prints a "thesis-row" line per
# row in bench/thesis's format.
. /lab/t/lib.sh
STORE=198.18.0.12:7471
[ -f /lab/guest-thesis.img ] || fail "no /lab/guest-thesis.img: an image made by bench/thesis"
field() { sed -n "s/.* $1 \([0-9]*\).*/\1/p" "$2"; }
ms() { awk '{printf "%d", $1 * 1000}' /proc/uptime; } # busybox date has no %N
wait_until 30 'ping -c1 -W1 198.18.0.12 >/dev/null 2>&1' || fail "h2 unreachable"
mem=${VMCKPT_MEM:-512}
row=0
epoch=0
for n in $(echo "${VMCKPT_HPL_NS:-500:1000:3000}" | tr : " "); do
    for m in a b c d; do
        row=$((row + 1))
        name=t$row
        say "HPL $n, mode ($m)"
        cat >/tmp/$name.cfg <<CFG
name = "$name"
type = "pvh"
kernel = "/lab/vmlinuz"
ramdisk = "/lab/guest-thesis.img"
extra = "console=hvc0 quiet vmckpt.name=$name vmckpt.run=sh,/thesis/hpl.sh,/thesis/hpl-$n"
memory = $mem
vcpus = 1
cpuid = "host,rdtscp=0,avx=0"
on_crash = "preserve"
CFG
        log=$(console_log $name)
        rm -f "$log"
        xl create /tmp/$name.cfg >/dev/null || fail "xl create $name"
        # hpcc's other tests come first: minutes at N = 3000
        wait_until 3600 'grep -aEq "thesis: (begin|end)" "$log"' || fail "HPL did not begin in $name"
        t0=$(ms)
        # the end's time, taken while a checkpoint may still run
        rm -f /tmp/end.$name
        (
            stop=$(($(date +%s) + 3600))
            until grep -aq "thesis: end" "$log"; do
                [ "$(date +%s)" -lt $stop ] || exit 1
                sleep 0.05
            done
            ms >/tmp/end.$name
        ) &
        w=$!
        k=0
        case $m in b | c) k=1 ;; d) k=2 ;; esac
        i=0 parent=0
        while [ $i -lt $k ]; do
            i=$((i + 1))
            epoch=$((epoch + 1))
            set -- checkpoint --xen $name --job th --epoch $epoch --store $STORE \
                --key /tmp/cluster.key --max-ms 60000
            [ $m = b ] && set -- "$@" --stop-and-save
            [ $parent = 0 ] || set -- "$@" --parent $parent
            vmckpt-vmtool "$@" >/tmp/ck.$name.$i 2>&1 || { cat /tmp/ck.$name.$i; fail "checkpoint of $name"; }
            parent=$epoch
        done
        wait $w
        t1=$(cat /tmp/end.$name 2>/dev/null) || fail "HPL did not end in $name"
        line=$(grep -a "thesis: end" "$log" | tail -n 1 | tr -d '\r')
        case $line in *"end rc=0 "*) ;; *) fail "HPL failed in $name: $line" ;; esac
        extra=$(echo "$line" | sed -n 's/.*HPL_Tflops=\([0-9.e+-]*\) *HPL_time=\([0-9.]*\).*/gflops=\1 guest_s=\2/p')
        run=$(awk -v a=$t0 -v b=$t1 'BEGIN { printf "%.2f", (b - a) / 1000 }')
        [ $k = 0 ] && echo "thesis-row xen hpl $n $m 0 $run - - - - - - ${extra:--}"
        i=0
        while [ $i -lt $k ]; do
            i=$((i + 1))
            f=/tmp/ck.$name.$i
            awk -v p="$(field pause_us $f)" -v w="$(field wire_bytes $f)" -v r="$(field rounds $f)" \
                -v t="$(field total_ms $f)" -v pre="$(field precopy_ms $f)" -v n=$n -v m=$m -v i=$i \
                -v run=$run -v extra="${extra:--}" 'BEGIN {
                printf "thesis-row xen hpl %s %s %d %s %d %d %.1f %d %.1f - %s\n", n, m, i, run, pre, r,
                    p / 1000, t, w / 1048576, extra
            }'
        done
        xl destroy $name
    done
done
say PASS
