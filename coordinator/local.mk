# vmckpt-coordinator. Owns SQLite (catalog.c).
sbin_PROGRAMS += %reldir%/vmckpt-coordinator
%canon_reldir%_vmckpt_coordinator_SOURCES = \
	%reldir%/main.c %reldir%/coord.h \
	%reldir%/server.c \
	%reldir%/hosts.c \
	%reldir%/vms.c \
	%reldir%/jobs.c %reldir%/jobs.h %reldir%/jobs_restart.c %reldir%/ranks.c \
	%reldir%/jobs_admin.c \
	%reldir%/catalog.c %reldir%/catalog.h
%canon_reldir%_vmckpt_coordinator_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS) $(SQLITE_CFLAGS)
%canon_reldir%_vmckpt_coordinator_LDADD = $(WIRE_LIBS) $(INIH_LIBS) $(SQLITE_LIBS) -lm
