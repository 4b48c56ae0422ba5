# libmetrics: the text of a scrape (Prometheus / OpenMetrics) and the
# small HTTP endpoint both daemons serve it from (docs/metrics.md).
noinst_LIBRARIES += %reldir%/libmetrics.a
%canon_reldir%_libmetrics_a_SOURCES = \
	%reldir%/mtext.c %reldir%/mtext.h \
	%reldir%/http.c %reldir%/http.h \
	%reldir%/httpd.c %reldir%/httpd.h

if HAVE_CHECK
check_PROGRAMS += %reldir%/test/metrics_test
TESTS += %reldir%/test/metrics_test
%canon_reldir%_test_metrics_test_SOURCES = %reldir%/test/metrics_test.c
%canon_reldir%_test_metrics_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
%canon_reldir%_test_metrics_test_LDADD = %reldir%/libmetrics.a lib/util/libutil.a $(INIH_LIBS) $(CHECK_LIBS) -lm
endif
