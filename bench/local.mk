# Benchmarks: not tests. Each prints ratios against baselines measured in
# the same run; see docs/performance.md.
dist_noinst_SCRIPTS += %reldir%/checkpoint-pause %reldir%/job-checkpoint
dist_noinst_SCRIPTS += %reldir%/mpi-hooks %reldir%/checkpoint-streams
dist_noinst_SCRIPTS += %reldir%/xen-pause %reldir%/soak %reldir%/scale
dist_noinst_SCRIPTS += %reldir%/slurm %reldir%/disk-checkpoint
dist_noinst_SCRIPTS += %reldir%/tls-stream %reldir%/slowdown %reldir%/thesis
dist_noinst_SCRIPTS += %reldir%/hpccinf
# what bench/xen-pause runs inside the Xen lab's dom0 (not here)
EXTRA_DIST += %reldir%/in-dom0/xen-pause.sh %reldir%/in-dom0/thesis.sh

# MPI_Barrier latency, for bench/mpi-hooks (no sanitizers: the hooks are
# preloaded into it).
if HAVE_MPI
noinst_PROGRAMS += %reldir%/barrier-lat
%canon_reldir%_barrier_lat_SOURCES = %reldir%/barrier-lat.c
%canon_reldir%_barrier_lat_CFLAGS = $(WARN_CFLAGS) -O2 $(MPI_CFLAGS)
%canon_reldir%_barrier_lat_LDADD = $(MPI_LIBS)
%canon_reldir%_barrier_lat_LDFLAGS =
endif

# bench/restore-rate: a restore from this host's store into a RAM file,
# against a plain copy and a write per page (docs/performance.md)
noinst_PROGRAMS += %reldir%/restore-rate
%canon_reldir%_restore_rate_SOURCES = %reldir%/restore-rate.c
%canon_reldir%_restore_rate_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
%canon_reldir%_restore_rate_LDADD = agent/store/libstore.a $(WIRE_LIBS)
