# libclient: blocking authenticated request/reply to a vmckpt daemon.
noinst_LIBRARIES += %reldir%/libclient.a
%canon_reldir%_libclient_a_SOURCES = %reldir%/client.c %reldir%/client.h
%canon_reldir%_libclient_a_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
