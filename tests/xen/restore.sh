# SPDX-License-Identifier: GPL-2.0-or-later
# After ckpt.sh: guest c1 dies (xl destroy); its epoch 2 comes back from
# h2's store into a domain built paused from the same configuration; the
# guest resumes from its suspend, memwriter goes on from the checkpointed
# counter and its own verification (every 5 s) passes.
. /lab/t/lib.sh
STORE=198.18.0.12:7471
[ -f /tmp/c1.cfg ] && xl domid c1 >/dev/null 2>&1 || fail "no guest c1 (ckpt.sh runs first)"
g_dead=$(last_gen c1)
xl destroy c1 || fail "xl destroy"
say "c1 destroyed at gen $g_dead"
vmckpt-vmtool fetch --store $STORE --key /tmp/cluster.key --job xj --vm c1 --epoch 2 \
    --ram-out /tmp/c1.ram --state-out /tmp/c1.state || fail "fetch epoch 2 from h2"
rm -f "$(console_log c1)"
xl create -p /tmp/c1.cfg || fail "xl create -p"
vmckpt-vmtool xen-restore --xen c1 --ram /tmp/c1.ram --state /tmp/c1.state || fail "xen-restore"
rm -f /tmp/c1.ram
xl unpause c1 || fail "xl unpause"
# the guest's clock goes on from the checkpoint (its TSC is restored), so
# memwriter sees no gap: it verifies every 5 s (-v 5 in ckpt.sh)
wait_until 90 'grep -aq "memwriter: verify" "$(console_log c1)"' || fail "memwriter did not verify after the restore"
cat "$(console_log c1)" | tail -n 8
grep -aq "memwriter: verify PASS" "$(console_log c1)" || fail "memwriter's verification failed"
g=$(grep -ao "memwriter: gen=[0-9]*" "$(console_log c1)" | head -n 1 | cut -d= -f2)
[ -n "$g" ] && [ "$g" -le "$g_dead" ] || fail "after the restore memwriter is at gen $g, it died at $g_dead"
g2=$(last_gen c1); sleep 3
[ "$(last_gen c1)" -gt "$g2" ] || fail "the restored c1 does not run"
xl destroy c1
say PASS
