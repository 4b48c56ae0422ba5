# SPDX-License-Identifier: GPL-2.0-or-later
# Live checkpoints of a PVH guest to the store of lab host h2 (outside
# this Xen host, over the lab network): the guest runs during pre-copy,
# the pause is short, the second epoch moves only what was written since
# the first cut. c1 is left running for restore.sh.
. /lab/t/lib.sh
STORE=198.18.0.12:7471
# a field of the 'durable' line; the pages round 0 sent
field() { grep "durable:" "$2" | sed -n "s/.* $1 \([0-9]*\).*/\1/p"; }
round0() { sed -n 's/^round 0: sent \([0-9]*\) pages.*/\1/p' "$1"; }
[ -s /tmp/cluster.key ] || fail "no cluster key"
wait_until 30 'ping -c1 -W1 198.18.0.12 >/dev/null 2>&1' || fail "h2 unreachable"
pvh_create c1 256 "memwriter -m 64 -r 2000 -p 1 -v 5" || fail "xl create"
# memwriter has filled its buffer and writes at its steady rate
wait_until 90 'test "$(last_gen c1)" -gt 4000 2>/dev/null' || fail "memwriter did not start"
g0=$(last_gen c1)
vmckpt-vmtool checkpoint --xen c1 --job xj --epoch 1 --store $STORE \
    --key /tmp/cluster.key --max-ms 60000 >/tmp/e1.out 2>&1 || { cat /tmp/e1.out; fail "epoch 1"; }
cat /tmp/e1.out
gen1=$(last_gen c1)
grep -q "checkpoint xj/c1 epoch 1 (full) durable" /tmp/e1.out || fail "epoch 1 not durable"
[ "$gen1" -gt "$g0" ] || fail "the guest did not run during pre-copy ($g0 -> $gen1)"
pause=$(field pause_us /tmp/e1.out) total=$(field total_ms /tmp/e1.out)
[ "$pause" -lt $((total * 1000 / 2)) ] || fail "pause $pause us of $total ms"
sleep 2
vmckpt-vmtool checkpoint --xen c1 --job xj --epoch 2 --parent 1 --streams 2 --store $STORE \
    --key /tmp/cluster.key --max-ms 60000 >/tmp/e2.out 2>&1 || { cat /tmp/e2.out; fail "epoch 2"; }
cat /tmp/e2.out
grep -q "checkpoint xj/c1 epoch 2 (delta) durable" /tmp/e2.out || fail "epoch 2 not durable"
# a delta's first round sends what was written since the last cut (at
# most memwriter's 16384 pages and the kernel's), a full one every page
r1=$(round0 /tmp/e1.out) r2=$(round0 /tmp/e2.out)
say "round 0 sent $r1 pages in epoch 1, $r2 in epoch 2"
[ -n "$r1" ] && [ -n "$r2" ] && [ $((r2 * 4)) -lt $((r1 * 3)) ] ||
    fail "epoch 2 is not incremental: round 0 sent $r2 pages, epoch 1's $r1"
g=$(last_gen c1); sleep 2
[ "$(last_gen c1)" -gt "$g" ] || fail "c1 stopped running"
grep -aq "memwriter: verify FAIL" "$(console_log c1)" && fail "memwriter's own check failed"
# c1 runs on for restore.sh
say PASS
