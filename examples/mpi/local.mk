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

# heat linked with the hooks before -lmpi (not preloaded): the second way
# a program gets aligned. The rpath finds the library in the build tree.
if HAVE_MPI
noinst_PROGRAMS += %reldir%/heat-linked
%canon_reldir%_heat_linked_SOURCES = %reldir%/heat.c
%canon_reldir%_heat_linked_CFLAGS = $(WARN_CFLAGS) -O2 $(MPI_CFLAGS)
%canon_reldir%_heat_linked_LDADD = -L$(top_builddir)/mpi-hooks -lvmckpt-mpi \
	$(MPI_LIBS)
%canon_reldir%_heat_linked_LDFLAGS = -Wl,-rpath,$(abs_top_builddir)/mpi-hooks
%canon_reldir%_heat_linked_DEPENDENCIES = mpi-hooks/libvmckpt-mpi.so
endif

# The Fortran heat, once per binding: use mpi_f08, use mpi, mpif.h.
EXTRA_DIST += %reldir%/heatf.F90
if HAVE_MPIFORT
HEATF = %reldir%/heatf-f08 %reldir%/heatf-mpi %reldir%/heatf-mpifh
noinst_SCRIPTS = $(HEATF)
CLEANFILES += $(HEATF)
# each in its own directory: the compiler writes no module files here, but
# keep parallel builds apart anyway
%reldir%/heatf-f08: %reldir%/heatf.F90
	$(AM_V_GEN)mkdir -p $@.d && $(MPIFC) -O2 -DUSE_F08 -J$@.d -o $@ $<
%reldir%/heatf-mpi: %reldir%/heatf.F90
	$(AM_V_GEN)mkdir -p $@.d && $(MPIFC) -O2 -DUSE_MPI -J$@.d -o $@ $<
%reldir%/heatf-mpifh: %reldir%/heatf.F90
	$(AM_V_GEN)mkdir -p $@.d && $(MPIFC) -O2 -J$@.d -o $@ $<
CLEAN_DIRS += $(HEATF:=.d)
endif
