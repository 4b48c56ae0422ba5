# vmckpt-agent. hv_xen.c and hv_xen_state.c (the only libxenctrl users) are
# built with --with-xen.
sbin_PROGRAMS += %reldir%/vmckpt-agent
%canon_reldir%_vmckpt_agent_SOURCES = \
	%reldir%/main.c %reldir%/agent.h \
	%reldir%/link.c \
	%reldir%/hv.c %reldir%/hv.h \
	%reldir%/store.c %reldir%/store.h \
	%reldir%/vmm.c %reldir%/vmm.h %reldir%/vmm_int.h %reldir%/vmm_xen.c \
	%reldir%/work.c %reldir%/work.h %reldir%/work_int.h %reldir%/ckpt.c
%canon_reldir%_vmckpt_agent_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
%canon_reldir%_vmckpt_agent_LDADD = %reldir%/libengine.a lib/topo/libtopo.a lib/qemu/libqemu.a $(ENGINE_LIBS) $(HWLOC_LIBS) -lpthread
# The engine and its QEMU back end, shared by the agent and vmckpt-vmtool.
noinst_LIBRARIES += %reldir%/libengine.a
%canon_reldir%_libengine_a_SOURCES = \
	%reldir%/hv_qemu.c \
	%reldir%/precopy.c %reldir%/precopy.h \
	%reldir%/stream.c %reldir%/stream.h
%canon_reldir%_libengine_a_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS) $(JANSSON_CFLAGS)
ENGINE_LIBS = %reldir%/libdirty.a %reldir%/libimage.a lib/qemu/libqmp.a \
	lib/client/libclient.a $(WIRE_LIBS) $(JANSSON_LIBS)

noinst_PROGRAMS += %reldir%/vmckpt-vmtool
%canon_reldir%_vmckpt_vmtool_SOURCES = %reldir%/vmtool.c
%canon_reldir%_vmckpt_vmtool_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS) $(JANSSON_CFLAGS)
%canon_reldir%_vmckpt_vmtool_LDADD = %reldir%/libengine.a $(ENGINE_LIBS)

if HAVE_XEN
# The Xen back end, for the agent and vmckpt-vmtool.
noinst_LIBRARIES += %reldir%/libhvxen.a
%canon_reldir%_libhvxen_a_SOURCES = %reldir%/hv_xen.c %reldir%/hv_xen.h \
	%reldir%/hv_xen_int.h %reldir%/hv_xen_state.c
%canon_reldir%_libhvxen_a_CFLAGS = $(AM_CFLAGS) $(XEN_CFLAGS)
%canon_reldir%_vmckpt_agent_LDADD += %reldir%/libhvxen.a $(XEN_LIBS)
%canon_reldir%_vmckpt_vmtool_LDADD += %reldir%/libhvxen.a $(XEN_LIBS)
endif
EXTRA_DIST += %reldir%/hv_xen.c %reldir%/hv_xen.h %reldir%/hv_xen_int.h \
	%reldir%/hv_xen_state.c

# Dirty tracking (userfaultfd write-protect, async; PAGEMAP_SCAN).
noinst_LIBRARIES += %reldir%/libdirty.a
%canon_reldir%_libdirty_a_SOURCES = %reldir%/dirty_uffd.c %reldir%/dirty_uffd.h

# Preloaded into the QEMU the agent (or the lab) launches: creates the
# userfaultfd inside QEMU. A shared object, built as a program.
pkglibexec_PROGRAMS += %reldir%/libvmckpt-uffd.so
%canon_reldir%_libvmckpt_uffd_so_SOURCES = %reldir%/uffd_preload.c
%canon_reldir%_libvmckpt_uffd_so_CFLAGS = $(WARN_CFLAGS) -fPIC
%canon_reldir%_libvmckpt_uffd_so_LDFLAGS = -shared -fPIC

# The image store's files (docs/store.md).
noinst_LIBRARIES += %reldir%/libimage.a
%canon_reldir%_libimage_a_SOURCES = %reldir%/image.c %reldir%/image.h \
	%reldir%/image_fold.c %reldir%/image_int.h
%canon_reldir%_libimage_a_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
if HAVE_CHECK
check_PROGRAMS += %reldir%/test/image_test
TESTS += %reldir%/test/image_test
%canon_reldir%_test_image_test_SOURCES = %reldir%/test/image_test.c
%canon_reldir%_test_image_test_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(PROTOBUF_C_CFLAGS)
%canon_reldir%_test_image_test_LDADD = %reldir%/libimage.a $(WIRE_LIBS) $(CHECK_LIBS)
endif
