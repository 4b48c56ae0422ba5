# memwriter: the guest workload that proves its memory intact. Built
# static and without sanitizers: it runs inside the lab's guests.
noinst_PROGRAMS += %reldir%/memwriter
%canon_reldir%_memwriter_SOURCES = %reldir%/memwriter.c
%canon_reldir%_memwriter_CFLAGS = $(WARN_CFLAGS) -O2
%canon_reldir%_memwriter_LDFLAGS = -static
