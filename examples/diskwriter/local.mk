# diskwriter: the guest workload that proves its disk intact (files whole
# or absent, exactly those counted before the cut). Built static and
# without sanitizers: it runs inside the lab's guests, from their disk.
noinst_PROGRAMS += %reldir%/diskwriter
%canon_reldir%_diskwriter_SOURCES = %reldir%/diskwriter.c
%canon_reldir%_diskwriter_CFLAGS = $(WARN_CFLAGS) -O2
%canon_reldir%_diskwriter_LDFLAGS = -static
