# vmckpt-agent: the daemon's own files; its parts are built in engine/,
# hv/, store/ and vmm/ (docs/architecture.md).
AGENT_SOURCES = \
	%reldir%/main.c %reldir%/agent.h \
	%reldir%/link.c \
	%reldir%/fence.c %reldir%/fence.h \
	%reldir%/guard.c %reldir%/guard.h \
	%reldir%/outbox.c %reldir%/outbox.h \
	%reldir%/work.c %reldir%/work.h \
	%reldir%/ckpt.c %reldir%/ckpt.h \
	%reldir%/ckpt_disk.c %reldir%/ckpt_disk.h \
	%reldir%/restore.c %reldir%/restore.h \
	%reldir%/metrics.c %reldir%/metrics.h
AGENT_LDADD = %reldir%/vmm/libvmm.a %reldir%/disk/libdisk.a \
	%reldir%/store/libstore.a %reldir%/engine/libengine.a $(HV_LIBS) \
	lib/topo/libtopo.a lib/qemu/libqemu.a lib/client/libclient.a \
	lib/metrics/libmetrics.a \
	$(WIRE_LIBS) $(HWLOC_LIBS) -lpthread -lm

# with the lists of back ends and launchers that ship (qemu, xen)
sbin_PROGRAMS += %reldir%/vmckpt-agent
%canon_reldir%_vmckpt_agent_SOURCES = $(AGENT_SOURCES) \
	%reldir%/hv/hv_list.c %reldir%/vmm/vmm_list.c
%canon_reldir%_vmckpt_agent_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
%canon_reldir%_vmckpt_agent_LDADD = $(AGENT_LDADD)

# The simulated agent: the same daemon whose lists hold only the simulated
# back end and launcher (guests of a few pages in its memory), for the
# scale tests and bench/scale. Built, never installed.
noinst_PROGRAMS += %reldir%/vmckpt-agent-simulated
%canon_reldir%_vmckpt_agent_simulated_SOURCES = $(AGENT_SOURCES) \
	%reldir%/hv/hv_list_simulated.c %reldir%/vmm/vmm_simulated.c
%canon_reldir%_vmckpt_agent_simulated_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
%canon_reldir%_vmckpt_agent_simulated_LDADD = %reldir%/hv/libhvsim.a \
	$(AGENT_LDADD)

# the fence guard the agent starts (agent/guard.h)
pkglibexec_PROGRAMS += %reldir%/vmckpt-guard
%canon_reldir%_vmckpt_guard_SOURCES = %reldir%/guard_main.c %reldir%/guard.h
%canon_reldir%_vmckpt_guard_LDADD = lib/util/libutil.a $(INIH_LIBS)
