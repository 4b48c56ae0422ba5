# Documentation installed with vmckpt.
dist_doc_DATA += %reldir%/architecture.md %reldir%/protocol.md %reldir%/lab.md %reldir%/store.md %reldir%/performance.md %reldir%/mpi.md \
	%reldir%/consistency.md %reldir%/xen.md %reldir%/metrics.md %reldir%/operations.md \
	%reldir%/reliability.md %reldir%/scale.md %reldir%/slurm.md %reldir%/security.md \
	%reldir%/thesis.md
# the plots docs/scale.md and docs/thesis.md show (bench/scale, bench/thesis)
EXTRA_DIST += %reldir%/scale.png %reldir%/thesis.png
# plans for what is not built yet (not installed)
EXTRA_DIST += %reldir%/plans/disks.md %reldir%/plans/encryption.md

# Manual pages, written by hand in roff as docs/man/*.in; the configured
# paths and the version are filled in here. vmckpt-mpirun.1 is installed
# with the program (MPI builds) but always built, for t0050's checks.
MAN_PAGES = %reldir%/man/vmckpt.1 %reldir%/man/vmckpt-mpirun.1 \
	%reldir%/man/vmckpt.conf.5 %reldir%/man/vmckpt-coordinator.8 \
	%reldir%/man/vmckpt-agent.8
man1_MANS = %reldir%/man/vmckpt.1
if HAVE_MPI
man1_MANS += %reldir%/man/vmckpt-mpirun.1
endif
man5_MANS = %reldir%/man/vmckpt.conf.5
man8_MANS = %reldir%/man/vmckpt-coordinator.8 %reldir%/man/vmckpt-agent.8
check_DATA = $(MAN_PAGES)
EXTRA_DIST += $(MAN_PAGES:=.in)
CLEANFILES += $(MAN_PAGES)

man_subst = $(AM_V_GEN)$(MKDIR_P) %reldir%/man && \
	sed -e 's|@SYSCONFDIR[@]|$(sysconfdir)|g' \
	    -e 's|@STATEDIR[@]|$(vmckpt_statedir)|g' \
	    -e 's|@PKGLIBEXECDIR[@]|$(pkglibexecdir)|g' \
	    -e 's|@SBINDIR[@]|$(sbindir)|g' \
	    -e 's|@DOCDIR[@]|$(docdir)|g' \
	    -e 's|@VERSION[@]|$(PACKAGE_VERSION)|g' \
	    $(srcdir)/$@.in >$@.tmp && \
	if grep -n '@[A-Z_]*@' $@.tmp; then \
	    echo "$@: a placeholder above is not substituted" >&2; \
	    rm -f $@.tmp; exit 1; fi && \
	mv $@.tmp $@

%reldir%/man/vmckpt.1: %reldir%/man/vmckpt.1.in Makefile
	$(man_subst)
%reldir%/man/vmckpt-mpirun.1: %reldir%/man/vmckpt-mpirun.1.in Makefile
	$(man_subst)
%reldir%/man/vmckpt.conf.5: %reldir%/man/vmckpt.conf.5.in Makefile
	$(man_subst)
%reldir%/man/vmckpt-coordinator.8: %reldir%/man/vmckpt-coordinator.8.in Makefile
	$(man_subst)
%reldir%/man/vmckpt-agent.8: %reldir%/man/vmckpt-agent.8.in Makefile
	$(man_subst)
