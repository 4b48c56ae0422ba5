# vmckpt-agent. hv_xen.c (the only libxenctrl user) is built with --with-xen.
sbin_PROGRAMS += %reldir%/vmckpt-agent
%canon_reldir%_vmckpt_agent_SOURCES = \
	%reldir%/main.c %reldir%/agent.h \
	%reldir%/link.c \
	%reldir%/hv.c %reldir%/hv.h \
	%reldir%/hv_qemu.c
%canon_reldir%_vmckpt_agent_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
%canon_reldir%_vmckpt_agent_LDADD = lib/topo/libtopo.a $(WIRE_LIBS) $(INIH_LIBS) $(HWLOC_LIBS)
if HAVE_XEN
%canon_reldir%_vmckpt_agent_SOURCES += %reldir%/hv_xen.c
%canon_reldir%_vmckpt_agent_CFLAGS += $(XEN_CFLAGS)
%canon_reldir%_vmckpt_agent_LDADD += $(XEN_LIBS)
endif
EXTRA_DIST += %reldir%/hv_xen.c
