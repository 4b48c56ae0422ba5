# The pre-copy engine: rounds, the cut policy, the pause; it reaches a guest
# through a back end's ops (agent/hv) and hands pages to a sink.
noinst_LIBRARIES += %reldir%/libengine.a
%canon_reldir%_libengine_a_SOURCES = %reldir%/precopy.c %reldir%/precopy.h
%canon_reldir%_libengine_a_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)

if HAVE_CHECK
check_PROGRAMS += %reldir%/test/engine_test
TESTS += %reldir%/test/engine_test
%canon_reldir%_test_engine_test_SOURCES = %reldir%/test/engine_test.c \
	%reldir%/test/mem_sink.c %reldir%/test/mem_sink.h \
	%reldir%/test/timed_ops.c %reldir%/test/timed_ops.h
%canon_reldir%_test_engine_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(PROTOBUF_C_CFLAGS)
%canon_reldir%_test_engine_test_LDADD = %reldir%/libengine.a agent/hv/libhvsim.a \
	$(WIRE_LIBS) $(CHECK_LIBS) -lpthread
check_PROGRAMS += %reldir%/test/sim_test
TESTS += %reldir%/test/sim_test
%canon_reldir%_test_sim_test_SOURCES = %reldir%/test/sim_test.c
%canon_reldir%_test_sim_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(PROTOBUF_C_CFLAGS)
%canon_reldir%_test_sim_test_LDADD = agent/hv/libhvsim.a \
	$(WIRE_LIBS) $(CHECK_LIBS) -lpthread
endif
