# vmckpt, the admin console. Owns jansson for its JSON output and libssh2
# for starting and stopping agents from the head node (cluster start|stop).
bin_PROGRAMS += %reldir%/vmckpt
%canon_reldir%_vmckpt_SOURCES = %reldir%/vmckpt.c %reldir%/cli.h %reldir%/cmd_vm.c %reldir%/cmd_job.c %reldir%/cmd_cluster.c
%canon_reldir%_vmckpt_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS) $(JANSSON_CFLAGS) $(LIBSSH2_CFLAGS)
%canon_reldir%_vmckpt_LDADD = lib/client/libclient.a $(WIRE_LIBS) $(INIH_LIBS) $(JANSSON_LIBS) $(LIBSSH2_LIBS)
