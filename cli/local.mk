# vmckpt, the admin console. Owns jansson for its JSON output and libssh2
# for starting and stopping agents from the head node (cluster start|stop).
# Layers: vmckpt.c (the command table) calls the cmd_*.c files; they use
# only cli.c (calls to the coordinator) and show.c (how a job is shown),
# and lib/ (cmd_cert.c: the CA in lib/cert).
bin_PROGRAMS += %reldir%/vmckpt
%canon_reldir%_vmckpt_SOURCES = %reldir%/vmckpt.c \
	%reldir%/cmd_vm.c %reldir%/cmd_vm.h \
	%reldir%/cmd_job.c %reldir%/cmd_job.h \
	%reldir%/cmd_checkpoint.c %reldir%/cmd_checkpoint.h \
	%reldir%/cmd_cluster.c %reldir%/cmd_cluster.h \
	%reldir%/cmd_cert.c %reldir%/cmd_cert.h \
	%reldir%/cli.c %reldir%/cli.h %reldir%/show.c %reldir%/show.h
%canon_reldir%_vmckpt_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS) $(JANSSON_CFLAGS) $(LIBSSH2_CFLAGS) $(CRYPTO_CFLAGS)
%canon_reldir%_vmckpt_LDADD = lib/client/libclient.a lib/cert/libcert.a $(WIRE_LIBS) $(INIH_LIBS) $(JANSSON_LIBS) $(LIBSSH2_LIBS)
