# Helper scripts: the lab of simulated hosts and the demo, run on this
# machine.
dist_noinst_SCRIPTS = %reldir%/vmckpt-lab %reldir%/vmckpt-demo \
	%reldir%/vmckpt-lab-image %reldir%/vmckpt-xen-image \
	%reldir%/check-layout
# Scripts that never run here: the image builders copy them into the
# initramfs of a lab guest (in-guest/) or of the Xen lab's dom0 (in-dom0/),
# where each is /init.
dist_noinst_SCRIPTS += %reldir%/in-guest/lab-guest-init \
	%reldir%/in-guest/xen-guest-init %reldir%/in-dom0/xen-dom0-init

# The systemd units and the logrotate file, made from their .in files
# with the configured paths (docs/operations.md). The units are built
# whether or not they are installed: t0130 checks them.
VMCKPT_UNITS = %reldir%/systemd/vmckpt-coordinator.service \
	%reldir%/systemd/vmckpt-agent.service
EXTRA_DIST += $(VMCKPT_UNITS:%=%.in) %reldir%/logrotate/vmckpt.in
CLEANFILES += $(VMCKPT_UNITS) %reldir%/logrotate/vmckpt
noinst_DATA += $(VMCKPT_UNITS)
if HAVE_SYSTEMD_UNITS
systemdsystemunit_DATA = $(VMCKPT_UNITS)
endif
logrotatedir = $(sysconfdir)/logrotate.d
logrotate_DATA = %reldir%/logrotate/vmckpt

edit_paths = $(SED) -e 's|@sbindir[@]|$(sbindir)|g' \
	-e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	-e 's|@statedir[@]|$(vmckpt_statedir)|g' \
	-e 's|@docdir[@]|$(docdir)|g'
$(VMCKPT_UNITS) %reldir%/logrotate/vmckpt: Makefile
	$(AM_V_GEN)$(MKDIR_P) $(@D) && rm -f $@ $@.tmp && \
	$(edit_paths) $(srcdir)/$@.in >$@.tmp && \
	if grep -n '@[a-z]*@' $@.tmp; then \
	    echo "$@: a path left unsubstituted" >&2; rm -f $@.tmp; exit 1; \
	fi && mv $@.tmp $@
%reldir%/systemd/vmckpt-coordinator.service: %reldir%/systemd/vmckpt-coordinator.service.in
%reldir%/systemd/vmckpt-agent.service: %reldir%/systemd/vmckpt-agent.service.in
%reldir%/logrotate/vmckpt: %reldir%/logrotate/vmckpt.in

# make distcheck installs under its own prefix: the units too, not in the
# system's unit directory
AM_DISTCHECK_CONFIGURE_FLAGS = \
	--with-systemdsystemunitdir='$${prefix}/lib/systemd/system'
