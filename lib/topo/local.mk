# libtopo: host topology. Owns hwloc.
noinst_LIBRARIES += %reldir%/libtopo.a
%canon_reldir%_libtopo_a_SOURCES = %reldir%/topo.c %reldir%/topo.h
%canon_reldir%_libtopo_a_CFLAGS = $(AM_CFLAGS) $(HWLOC_CFLAGS)
