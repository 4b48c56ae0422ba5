# vmckpt-vmtool: the engine and the stores driven by hand, one guest at a
# time, for the tests and benchmarks (not installed).
noinst_PROGRAMS += %reldir%/vmckpt-vmtool
%canon_reldir%_vmckpt_vmtool_SOURCES = %reldir%/vmtool.c agent/hv/hv_list.c
%canon_reldir%_vmckpt_vmtool_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS) $(JANSSON_CFLAGS)
%canon_reldir%_vmckpt_vmtool_LDADD = agent/store/libstore.a \
	agent/engine/libengine.a $(HV_LIBS) lib/client/libclient.a $(WIRE_LIBS)
