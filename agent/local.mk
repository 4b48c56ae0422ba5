# vmckpt-agent: the daemon's own files; its parts are built in engine/,
# hv/, store/ and vmm/ (docs/architecture.md).
sbin_PROGRAMS += %reldir%/vmckpt-agent
%canon_reldir%_vmckpt_agent_SOURCES = \
	%reldir%/main.c %reldir%/agent.h \
	%reldir%/link.c \
	%reldir%/fence.c %reldir%/fence.h \
	%reldir%/guard.c %reldir%/guard.h \
	%reldir%/outbox.c %reldir%/outbox.h \
	%reldir%/work.c %reldir%/work.h \
	%reldir%/ckpt.c %reldir%/ckpt.h \
	%reldir%/restore.c %reldir%/restore.h \
	%reldir%/metrics.c %reldir%/metrics.h
%canon_reldir%_vmckpt_agent_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
%canon_reldir%_vmckpt_agent_LDADD = %reldir%/vmm/libvmm.a \
	%reldir%/store/libstore.a %reldir%/engine/libengine.a $(HV_LIBS) \
	lib/topo/libtopo.a lib/qemu/libqemu.a lib/client/libclient.a \
	lib/metrics/libmetrics.a \
	$(WIRE_LIBS) $(HWLOC_LIBS) -lpthread -lm

# the fence guard the agent starts (agent/guard.h)
pkglibexec_PROGRAMS += %reldir%/vmckpt-guard
%canon_reldir%_vmckpt_guard_SOURCES = %reldir%/guard_main.c %reldir%/guard.h
%canon_reldir%_vmckpt_guard_LDADD = lib/util/libutil.a $(INIH_LIBS)
