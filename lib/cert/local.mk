# libcert: the cluster's certificate authority (init, issue, revoke, list;
# the CA directory and its index) and the identity in a peer's
# certificate, for 'vmckpt cert' and the TLS code. Uses libcrypto.
noinst_LIBRARIES += %reldir%/libcert.a
%canon_reldir%_libcert_a_SOURCES = \
	%reldir%/cert.c %reldir%/cert.h \
	%reldir%/cert_store.c %reldir%/cert_int.h
%canon_reldir%_libcert_a_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS)
CERT_LIBS = lib/cert/libcert.a lib/util/libutil.a $(CRYPTO_LIBS) $(INIH_LIBS)

if HAVE_CHECK
check_PROGRAMS += %reldir%/test/cert_test
TESTS += %reldir%/test/cert_test
%canon_reldir%_test_cert_test_SOURCES = %reldir%/test/cert_test.c
%canon_reldir%_test_cert_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(CRYPTO_CFLAGS)
%canon_reldir%_test_cert_test_LDADD = $(CERT_LIBS) $(CHECK_LIBS)
endif
