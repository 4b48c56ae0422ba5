# Images: the store's files and folding (docs/store.md), the store server
# peers stream to, and the client side of streams to and from stores.
noinst_LIBRARIES += %reldir%/libstore.a
%canon_reldir%_libstore_a_SOURCES = %reldir%/image.c %reldir%/image.h \
	%reldir%/image_fold.c %reldir%/image_fold_inplace.c %reldir%/image_disk.c %reldir%/image_disk_merge.c \
	%reldir%/image_manifest.c \
	%reldir%/image_int.h \
	%reldir%/store.c %reldir%/store.h \
	%reldir%/stream.c %reldir%/stream.h \
	%reldir%/sealed.c %reldir%/sealed.h
%canon_reldir%_libstore_a_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)

if HAVE_CHECK
check_PROGRAMS += %reldir%/test/image_test
TESTS += %reldir%/test/image_test
%canon_reldir%_test_image_test_SOURCES = %reldir%/test/image_test.c \
	%reldir%/test/store_testlib.c %reldir%/test/store_testlib.h
%canon_reldir%_test_image_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(PROTOBUF_C_CFLAGS)
%canon_reldir%_test_image_test_LDADD = %reldir%/libstore.a $(WIRE_LIBS) $(CHECK_LIBS)
check_PROGRAMS += %reldir%/test/merge_test
TESTS += %reldir%/test/merge_test
%canon_reldir%_test_merge_test_SOURCES = %reldir%/test/merge_test.c
%canon_reldir%_test_merge_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(PROTOBUF_C_CFLAGS)
%canon_reldir%_test_merge_test_LDADD = %reldir%/libstore.a $(WIRE_LIBS) $(CHECK_LIBS)
check_PROGRAMS += %reldir%/test/fold_test
TESTS += %reldir%/test/fold_test
%canon_reldir%_test_fold_test_SOURCES = %reldir%/test/fold_test.c \
	%reldir%/test/store_testlib.c %reldir%/test/store_testlib.h
%canon_reldir%_test_fold_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(PROTOBUF_C_CFLAGS)
%canon_reldir%_test_fold_test_LDADD = %reldir%/libstore.a $(WIRE_LIBS) $(CHECK_LIBS)
endif
