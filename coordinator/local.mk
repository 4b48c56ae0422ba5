# vmckpt-coordinator. Owns SQLite (catalog.c). Modules from the bottom up:
# catalog, server, hosts, vms, jobs, ranks, dispatch, metrics (and stats,
# counters the guests and jobs update, just above the server); main.c on top.
sbin_PROGRAMS += %reldir%/vmckpt-coordinator
%canon_reldir%_vmckpt_coordinator_SOURCES = \
	%reldir%/main.c \
	%reldir%/metrics.c %reldir%/metrics.h \
	%reldir%/dispatch.c %reldir%/dispatch.h \
	%reldir%/ranks.c %reldir%/ranks.h \
	%reldir%/jobs.c %reldir%/jobs.h %reldir%/jobs_int.h %reldir%/jobs_hold.c \
	%reldir%/jobs_restart.c %reldir%/jobs_admin.c %reldir%/jobs_fail.c \
	%reldir%/jobs_report.c %reldir%/jobs_timing.c \
	%reldir%/vms.c %reldir%/vms.h %reldir%/vms_news.c %reldir%/vms_rows.c \
	%reldir%/vms_spec.c \
	%reldir%/vms_int.h \
	%reldir%/hosts.c %reldir%/hosts.h %reldir%/hosts_crl.c %reldir%/hosts_hv.c \
	%reldir%/tickets.c %reldir%/tickets.h \
	%reldir%/stats.c %reldir%/stats.h \
	%reldir%/datakey.c %reldir%/datakey.h \
	%reldir%/server.c %reldir%/server.h \
	%reldir%/catalog.c %reldir%/catalog.h %reldir%/catalog_int.h \
	%reldir%/catalog_retain.c
%canon_reldir%_vmckpt_coordinator_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS) $(SQLITE_CFLAGS) $(CRYPTO_CFLAGS)
%canon_reldir%_vmckpt_coordinator_LDADD = lib/metrics/libmetrics.a $(WIRE_LIBS) $(INIH_LIBS) $(SQLITE_LIBS) -lm
