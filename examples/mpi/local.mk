# MPI example programs (need Open MPI: configure --with-mpi, auto). Built
# without sanitizers: they also run inside the lab's guests.
EXTRA_DIST += %reldir%/heat.c %reldir%/ring.c
if HAVE_MPI
noinst_PROGRAMS += %reldir%/heat %reldir%/ring
%canon_reldir%_heat_SOURCES = %reldir%/heat.c
%canon_reldir%_heat_CFLAGS = $(WARN_CFLAGS) -O2 $(MPI_CFLAGS)
%canon_reldir%_heat_LDADD = $(MPI_LIBS)
%canon_reldir%_heat_LDFLAGS =
%canon_reldir%_ring_SOURCES = %reldir%/ring.c
%canon_reldir%_ring_CFLAGS = $(WARN_CFLAGS) -O2 $(MPI_CFLAGS)
%canon_reldir%_ring_LDADD = $(MPI_LIBS)
%canon_reldir%_ring_LDFLAGS =
endif
