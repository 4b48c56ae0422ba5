# Integration tests: TAP shell scripts that start the real daemons in
# network namespaces with private directories. tNNNN-area-what.t
SHELL_TESTS = \
	%reldir%/t0050-man.t \
	%reldir%/t0060-install.t \
	%reldir%/t0100-daemons.t \
	%reldir%/t0110-keys-config.t \
	%reldir%/t0115-cert.t \
	%reldir%/t0120-cluster-ssh.t \
	%reldir%/t0130-service.t \
	%reldir%/t0150-job-scale.t \
	%reldir%/t0160-fence-command.t \
	%reldir%/t0170-simulated-hosts.t \
	%reldir%/t0190-tls.t \
	%reldir%/t0200-bad-input.t \
	%reldir%/t0300-mpi-examples.t \
	%reldir%/t0400-lab.t \
	%reldir%/t0500-dirty-tracking.t \
	%reldir%/t0600-live-checkpoint.t \
	%reldir%/t0602-disk-checkpoint.t \
	%reldir%/t0604-disk-faults.t \
	%reldir%/t0610-console-checkpoint.t \
	%reldir%/t0612-sealed-images.t \
	%reldir%/t0620-job-checkpoint.t \
	%reldir%/t0630-job-policies.t \
	%reldir%/t0640-no-tracking.t \
	%reldir%/t0650-mpi-align.t \
	%reldir%/t0660-store-full.t \
	%reldir%/t0670-vm-exit.t \
	%reldir%/t0680-partition.t \
	%reldir%/t0685-hung-agent.t \
	%reldir%/t0690-metrics.t \
	%reldir%/t0695-restore-fallback.t \
	%reldir%/t0697-fault-matrix.t \
	%reldir%/t0700-xen.t \
	%reldir%/t0750-slurm.t \
	%reldir%/t0800-debian.t
TESTS += $(SHELL_TESTS)
EXTRA_DIST += $(SHELL_TESTS) %reldir%/lib/tap.sh %reldir%/lib/cluster.sh \
	%reldir%/lib/slurm.sh \
	%reldir%/lib/vmckpt-slurm.sh
# the fault matrix's cells (t0697) and its table (docs/reliability.md)
EXTRA_DIST += %reldir%/faults/cell.sh %reldir%/faults/table
# the scenarios t0700 runs inside the Xen lab's dom0 (not here)
EXTRA_DIST += %reldir%/in-dom0/lib.sh %reldir%/in-dom0/run.sh \
	%reldir%/in-dom0/smoke.sh %reldir%/in-dom0/dirty.sh %reldir%/in-dom0/agent.sh

# wirepoke: sends hand-made (and deliberately bad) frames to a daemon.
check_PROGRAMS += %reldir%/tools/wirepoke
%canon_reldir%_tools_wirepoke_SOURCES = %reldir%/tools/wirepoke.c
%canon_reldir%_tools_wirepoke_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
%canon_reldir%_tools_wirepoke_LDADD = lib/client/libclient.a $(WIRE_LIBS)

# tlsflip: a man in the middle that alters one TLS record (t0190, t0600).
check_PROGRAMS += %reldir%/tools/tlsflip
%canon_reldir%_tools_tlsflip_SOURCES = %reldir%/tools/tlsflip.c
%canon_reldir%_tools_tlsflip_LDADD = lib/util/libutil.a

# fakeagents: many fake agents in one process (no guests), for t0150.
check_PROGRAMS += %reldir%/tools/fakeagents
%canon_reldir%_tools_fakeagents_SOURCES = %reldir%/tools/fakeagents.c
%canon_reldir%_tools_fakeagents_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
%canon_reldir%_tools_fakeagents_LDADD = lib/client/libclient.a $(WIRE_LIBS)

# Each test keeps its daemons' logs in tests/NAME.dir for inspection.
CLEAN_DIRS += $(SHELL_TESTS:%.t=%.dir) $(top_builddir)/lab

# dirtycheck: the dirty-tracking correctness check against a real guest.
check_PROGRAMS += %reldir%/tools/dirtycheck
%canon_reldir%_tools_dirtycheck_SOURCES = %reldir%/tools/dirtycheck.c
%canon_reldir%_tools_dirtycheck_LDADD = agent/hv/libhv.a lib/qemu/libqmp.a lib/util/libutil.a $(JANSSON_LIBS)

# The unit tests alone: what a package build runs (debian/rules), where
# the integration tests cannot (they need root and network namespaces).
check-unit:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(filter-out $(SHELL_TESTS),$(TESTS))'
.PHONY: check-unit
