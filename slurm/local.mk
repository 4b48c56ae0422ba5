# Slurm integration (docs/slurm.md): the SPANK plugin vmckpt.so (built
# when slurm/spank.h is there) and vmckpt-slurm, the program behind the
# controller's prolog and epilog, the coordinator's lost_command and the
# batch script's 'run'. Both go to PKGLIBEXECDIR, where slurm.conf and
# plugstack.conf name them.
if HAVE_SPANK
pkglibexec_PROGRAMS += %reldir%/vmckpt.so
%canon_reldir%_vmckpt_so_SOURCES = %reldir%/spank_vmckpt.c
%canon_reldir%_vmckpt_so_CFLAGS = $(WARN_CFLAGS) -fPIC
%canon_reldir%_vmckpt_so_LDFLAGS = -shared -fPIC
endif
EXTRA_DIST += %reldir%/spank_vmckpt.c %reldir%/vmckpt-slurm.in

pkglibexec_SCRIPTS = %reldir%/vmckpt-slurm
CLEANFILES += %reldir%/vmckpt-slurm
%reldir%/vmckpt-slurm: %reldir%/vmckpt-slurm.in Makefile
	$(AM_V_GEN)$(MKDIR_P) $(@D) && rm -f $@ $@.tmp && \
	$(SED) -e 's|@bindir[@]|$(bindir)|g' \
	    -e 's|@sysconfdir[@]|$(sysconfdir)|g' $(srcdir)/$@.in >$@.tmp && \
	chmod +x $@.tmp && mv $@.tmp $@

# What slurm.conf names (PrologSlurmctld, EpilogSlurmctld take no
# arguments): two lines each
pkglibexec_SCRIPTS += %reldir%/vmckpt-slurm-prolog %reldir%/vmckpt-slurm-epilog
CLEANFILES += %reldir%/vmckpt-slurm-prolog %reldir%/vmckpt-slurm-epilog
%reldir%/vmckpt-slurm-prolog %reldir%/vmckpt-slurm-epilog: Makefile
	$(AM_V_GEN)$(MKDIR_P) $(@D) && rm -f $@ && \
	printf '#!/bin/sh\n# slurm.conf: %s (docs/slurm.md)\nexec %s %s\n' \
	    "$$(case $@ in *prolog) echo PrologSlurmctld;; *) echo EpilogSlurmctld;; esac)" \
	    '$(pkglibexecdir)/vmckpt-slurm' '$(lastword $(subst -, ,$(@F)))' \
	    >$@ && chmod +x $@
