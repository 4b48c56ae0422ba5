# MPI example programs (need Open MPI: configure --with-mpi, auto).
EXTRA_DIST += %reldir%/heat.c %reldir%/ring.c
if HAVE_MPI
noinst_PROGRAMS += %reldir%/heat %reldir%/ring
%canon_reldir%_heat_SOURCES = %reldir%/heat.c
%canon_reldir%_heat_CFLAGS = $(AM_CFLAGS) $(MPI_CFLAGS)
%canon_reldir%_heat_LDADD = $(MPI_LIBS)
%canon_reldir%_ring_SOURCES = %reldir%/ring.c
%canon_reldir%_ring_CFLAGS = $(AM_CFLAGS) $(MPI_CFLAGS)
%canon_reldir%_ring_LDADD = $(MPI_LIBS)
endif
