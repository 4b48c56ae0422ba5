# libqemu: the one builder of guest QEMU command lines (lab and agent), and
# vmckpt-qemu, the lab's launcher built on it.
noinst_LIBRARIES += %reldir%/libqemu.a
%canon_reldir%_libqemu_a_SOURCES = %reldir%/qemu_argv.c %reldir%/qemu_argv.h
noinst_PROGRAMS += %reldir%/vmckpt-qemu
%canon_reldir%_vmckpt_qemu_SOURCES = %reldir%/vmckpt-qemu.c
%canon_reldir%_vmckpt_qemu_LDADD = %reldir%/libqemu.a lib/util/libutil.a

if HAVE_CHECK
check_PROGRAMS += %reldir%/test/qemu_argv_test
TESTS += %reldir%/test/qemu_argv_test
%canon_reldir%_test_qemu_argv_test_SOURCES = %reldir%/test/qemu_argv_test.c
%canon_reldir%_test_qemu_argv_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
%canon_reldir%_test_qemu_argv_test_LDADD = %reldir%/libqemu.a lib/util/libutil.a $(CHECK_LIBS)
endif

# QMP client and the qemu-img runner. Use jansson (as the console does)
# for QMP's JSON and qemu-img info's.
noinst_LIBRARIES += %reldir%/libqmp.a
%canon_reldir%_libqmp_a_SOURCES = %reldir%/qmp.c %reldir%/qmp.h \
	%reldir%/qemu_img.c %reldir%/qemu_img.h
%canon_reldir%_libqmp_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)

if HAVE_CHECK
check_PROGRAMS += %reldir%/test/qemu_img_test
TESTS += %reldir%/test/qemu_img_test
%canon_reldir%_test_qemu_img_test_SOURCES = %reldir%/test/qemu_img_test.c
%canon_reldir%_test_qemu_img_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
%canon_reldir%_test_qemu_img_test_LDADD = %reldir%/libqmp.a lib/util/libutil.a $(JANSSON_LIBS) $(CHECK_LIBS)
endif
