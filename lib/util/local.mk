# libutil: logging, errors, config files, event loop, sockets, daemons.
noinst_LIBRARIES += %reldir%/libutil.a
%canon_reldir%_libutil_a_SOURCES = \
	%reldir%/log.c %reldir%/log.h \
	%reldir%/error.c %reldir%/error.h \
	%reldir%/conf.c %reldir%/conf.h \
	%reldir%/conf_keys.c %reldir%/conf_keys.h \
	%reldir%/evloop.c %reldir%/evloop.h \
	%reldir%/net.c %reldir%/net.h \
	%reldir%/daemon.c %reldir%/daemon.h %reldir%/daemon_conf.c \
	%reldir%/notify.c %reldir%/notify.h \
	%reldir%/name.c %reldir%/name.h \
	%reldir%/clock.c %reldir%/clock.h \
	%reldir%/runcmd.c %reldir%/runcmd.h \
	%reldir%/io.c %reldir%/io.h
%canon_reldir%_libutil_a_CFLAGS = $(AM_CFLAGS) $(INIH_CFLAGS)

if HAVE_CHECK
check_PROGRAMS += %reldir%/test/util_test
TESTS += %reldir%/test/util_test
%canon_reldir%_test_util_test_SOURCES = %reldir%/test/util_test.c
%canon_reldir%_test_util_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
%canon_reldir%_test_util_test_LDADD = %reldir%/libutil.a $(INIH_LIBS) $(CHECK_LIBS)
endif

if HAVE_CHECK
check_PROGRAMS += %reldir%/test/daemon_test
TESTS += %reldir%/test/daemon_test
%canon_reldir%_test_daemon_test_SOURCES = %reldir%/test/daemon_test.c
%canon_reldir%_test_daemon_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
%canon_reldir%_test_daemon_test_LDADD = %reldir%/libutil.a $(INIH_LIBS) $(CHECK_LIBS)
endif
