# Guest disks on the agent's host: each disk's chain of qcow2 overlays over
# its base image (disk.h), run through lib/qemu's qemu-img runner.
noinst_LIBRARIES += %reldir%/libdisk.a
%canon_reldir%_libdisk_a_SOURCES = %reldir%/disk.h %reldir%/base.c %reldir%/chain.c %reldir%/recv.c \
	%reldir%/cut.c
%canon_reldir%_libdisk_a_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS) $(JANSSON_CFLAGS)

if HAVE_CHECK
check_PROGRAMS += %reldir%/test/chain_test
TESTS += %reldir%/test/chain_test
%canon_reldir%_test_chain_test_SOURCES = %reldir%/test/chain_test.c
%canon_reldir%_test_chain_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(PROTOBUF_C_CFLAGS) $(JANSSON_CFLAGS)
%canon_reldir%_test_chain_test_LDADD = %reldir%/libdisk.a lib/qemu/libqemu.a lib/qemu/libqmp.a \
	$(JANSSON_LIBS) $(WIRE_LIBS) $(CHECK_LIBS)
endif
