# The pre-copy engine: rounds, the cut policy, the pause; it reaches a guest
# through a back end's ops (agent/hv) and hands pages to a sink.
noinst_LIBRARIES += %reldir%/libengine.a
%canon_reldir%_libengine_a_SOURCES = %reldir%/precopy.c %reldir%/precopy.h
%canon_reldir%_libengine_a_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
