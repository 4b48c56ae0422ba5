# libtopo: host topology and the placement of the agent's threads. Owns
# hwloc.
noinst_LIBRARIES += %reldir%/libtopo.a
%canon_reldir%_libtopo_a_SOURCES = %reldir%/topo.c %reldir%/topo.h \
	%reldir%/topo_int.h %reldir%/topo_dev.c %reldir%/topo_place.c \
	%reldir%/topo_host.c
%canon_reldir%_libtopo_a_CFLAGS = $(AM_CFLAGS) $(HWLOC_CFLAGS)

if HAVE_CHECK
check_PROGRAMS += %reldir%/test/topo_test
TESTS += %reldir%/test/topo_test
%canon_reldir%_test_topo_test_SOURCES = %reldir%/test/topo_test.c
%canon_reldir%_test_topo_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(HWLOC_CFLAGS)
%canon_reldir%_test_topo_test_LDADD = %reldir%/libtopo.a lib/util/libutil.a \
	$(INIH_LIBS) $(HWLOC_LIBS) $(CHECK_LIBS) -lpthread
endif
