# libwire: framing, envelope, type table, authentication, page batches and
# the sealing of images. Owns protobuf-c and libcrypto.
noinst_LIBRARIES += %reldir%/libwire.a
%canon_reldir%_libwire_a_SOURCES = \
	%reldir%/wire.c %reldir%/wire.h \
	%reldir%/auth.c %reldir%/auth.h \
	%reldir%/tls.c %reldir%/tls.h %reldir%/tls_int.h %reldir%/tls_sock.c \
	%reldir%/tls_conf.c %reldir%/tls_conf.h \
	%reldir%/batch.c %reldir%/batch.h \
	%reldir%/seal.c %reldir%/seal.h \
	%reldir%/ticket.c %reldir%/ticket.h
nodist_%canon_reldir%_libwire_a_SOURCES = proto/vmckpt.pb-c.c proto/vmckpt.pb-c.h
%canon_reldir%_libwire_a_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS) $(CRYPTO_CFLAGS) $(XXHASH_CFLAGS) $(LZ4_CFLAGS)
WIRE_LIBS = lib/wire/libwire.a lib/util/libutil.a $(PROTOBUF_C_LIBS) $(CRYPTO_LIBS) $(XXHASH_LIBS) $(LZ4_LIBS) $(INIH_LIBS)

if HAVE_CHECK
check_PROGRAMS += %reldir%/test/wire_test %reldir%/test/auth_test %reldir%/test/batch_test \
	%reldir%/test/tls_test %reldir%/test/seal_test %reldir%/test/ticket_test
TESTS += %reldir%/test/wire_test %reldir%/test/auth_test %reldir%/test/batch_test \
	%reldir%/test/tls_test %reldir%/test/seal_test %reldir%/test/ticket_test
%canon_reldir%_test_ticket_test_SOURCES = %reldir%/test/ticket_test.c
%canon_reldir%_test_ticket_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
%canon_reldir%_test_ticket_test_LDADD = $(WIRE_LIBS) $(CHECK_LIBS)
%canon_reldir%_test_seal_test_SOURCES = %reldir%/test/seal_test.c
%canon_reldir%_test_seal_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(PROTOBUF_C_CFLAGS)
%canon_reldir%_test_seal_test_LDADD = $(WIRE_LIBS) $(CHECK_LIBS)
%canon_reldir%_test_tls_test_SOURCES = %reldir%/test/tls_test.c
%canon_reldir%_test_tls_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(PROTOBUF_C_CFLAGS)
%canon_reldir%_test_tls_test_LDADD = lib/cert/libcert.a $(WIRE_LIBS) $(CHECK_LIBS) -lpthread
%canon_reldir%_test_batch_test_SOURCES = %reldir%/test/batch_test.c
%canon_reldir%_test_batch_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(PROTOBUF_C_CFLAGS)
%canon_reldir%_test_batch_test_LDADD = $(WIRE_LIBS) $(CHECK_LIBS)
%canon_reldir%_test_wire_test_SOURCES = %reldir%/test/wire_test.c
%canon_reldir%_test_wire_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(PROTOBUF_C_CFLAGS)
%canon_reldir%_test_wire_test_LDADD = $(WIRE_LIBS) $(CHECK_LIBS)
%canon_reldir%_test_auth_test_SOURCES = %reldir%/test/auth_test.c
%canon_reldir%_test_auth_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(PROTOBUF_C_CFLAGS)
%canon_reldir%_test_auth_test_LDADD = $(WIRE_LIBS) $(CHECK_LIBS)
endif

# libFuzzer target for the frame + envelope decoder and the in-place
# page batch reader: 'make fuzz' (FUZZ_SECONDS=60 by default). Built with
# clang apart from the rest.
FUZZ_SECONDS = 60
FUZZ_BIN = $(top_builddir)/%reldir%/test/fuzz_wire
FUZZ_SRC = $(top_srcdir)/%reldir%/test/fuzz_wire.c $(top_srcdir)/%reldir%/wire.c \
	$(top_srcdir)/%reldir%/batch.c $(top_srcdir)/lib/util/io.c \
	$(top_srcdir)/lib/util/error.c $(top_srcdir)/lib/util/evloop.c \
	$(top_srcdir)/lib/util/clock.c \
	$(top_builddir)/proto/vmckpt.pb-c.c
EXTRA_DIST += %reldir%/test/fuzz_wire.c %reldir%/test/corpus
$(FUZZ_BIN): $(FUZZ_SRC) $(BUILT_SOURCES) $(top_builddir)/config.h
	$(AM_V_CC)test "x$(FUZZ_CC)" != xno || { echo "make fuzz needs clang (apt-get install clang)"; exit 1; }; \
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined $(DEFS) \
		-I$(top_builddir) -I$(top_srcdir) $(PROTOBUF_C_CFLAGS) \
		$(FUZZ_SRC) $(PROTOBUF_C_LIBS) $(XXHASH_LIBS) $(LZ4_LIBS) -o $@
fuzz: $(FUZZ_BIN)
	@mkdir -p $(top_builddir)/%reldir%/test/fuzz-corpus
	$(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		-print_final_stats=1 $(top_builddir)/%reldir%/test/fuzz-corpus \
		$(top_srcdir)/%reldir%/test/corpus
CLEANFILES += $(FUZZ_BIN)
.PHONY: fuzz
CLEAN_DIRS += $(top_builddir)/%reldir%/test/fuzz-corpus
