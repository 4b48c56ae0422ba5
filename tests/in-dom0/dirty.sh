# SPDX-License-Identifier: GPL-2.0-or-later
# Dirty tracking on Xen: log-dirty of a PVH guest running memwriter misses
# no page that changed, and after our suspends xl can still save the
# guest; a PV guest is refused live, saying why. The PVH guest is the
# one smoke.sh left running, when it did.
. /lab/t/lib.sh
d1=s1
if ! xl domid s1 >/dev/null 2>&1; then
    d1=d1
    pvh_create d1 128 "memwriter -m 32 -r 2000 -p 1" || fail "xl create"
fi
wait_until 60 'test -n "$(last_gen $d1)"' || { cat "$(console_log $d1)"; fail "memwriter did not start"; }
vmckpt-vmtool xen-info --xen $d1 || fail "xen-info"
vmckpt-vmtool xen-dirtycheck --xen $d1 --rounds 4 --interval 500 >/tmp/dc.out 2>&1
rc=$?
cat /tmp/dc.out
[ $rc = 0 ] || fail "dirtycheck rc=$rc"
grep -q "total: 0 missed over 4 rounds" /tmp/dc.out || fail "missed pages"
# pages changed in every round: the check saw memwriter's writes
[ "$(grep -c "round [0-9]: [1-9][0-9]* pages changed" /tmp/dc.out)" = 4 ] || fail "no writes seen"
g=$(last_gen $d1)
if ! wait_until 60 '[ "$(last_gen $d1)" -gt "$g" ]'; then
    # which stopped: the guest, or only its console? (memwriter writing
    # pages with no line printed is a console that stopped)
    vmckpt-vmtool xen-dirtycheck --xen $d1 --rounds 1 --interval 1000 2>&1 | tail -n 3
    xenstore-ls "/local/domain/$(xl domid $d1)/control" 2>&1 | head -n 5
    xl dmesg 2>&1 | tail -n 15
    fail "$d1 stopped running (gen $g)"
fi
# the suspends left the domain as the toolstack expects: it can still
# suspend it for its own save
xl save -c $d1 /tmp/d1.save || fail "xl save -c after our suspends"
rm -f /tmp/d1.save
xl destroy $d1
# (created paused: the refusal is the hypervisor's, whether the guest has
# run or not, and its boot would take 20 s here)
pvh_create p1 128 "memwriter -m 16 -r 100 -p 1" pv paused || fail "xl create pv"
xl list p1 || fail "no PV domain p1"
if vmckpt-vmtool xen-dirtycheck --xen p1 --rounds 1 >/tmp/pv.out 2>&1; then
    cat /tmp/pv.out; fail "live mode on PV was not refused"
fi
cat /tmp/pv.out
grep -q "p1 is a PV guest and this hypervisor cannot track" /tmp/pv.out || fail "refusal does not say why"
xl destroy p1
say PASS
