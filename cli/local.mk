# vmckpt, the admin console. Owns jansson for its JSON output.
bin_PROGRAMS += %reldir%/vmckpt
%canon_reldir%_vmckpt_SOURCES = %reldir%/vmckpt.c %reldir%/cli.h %reldir%/cmd_vm.c %reldir%/cmd_job.c
%canon_reldir%_vmckpt_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS) $(JANSSON_CFLAGS)
%canon_reldir%_vmckpt_LDADD = lib/client/libclient.a $(WIRE_LIBS) $(INIH_LIBS) $(JANSSON_LIBS)
