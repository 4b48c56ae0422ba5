# Hypervisor back ends behind one ops table (hv.h): hv_find (hv.c) over
# the list a program takes among its sources (hv_list.c, or
# hv_list_simulated.c for the simulated agent), QEMU
# (hv_qemu.c) with its dirty tracker (dirty_uffd.c) and the preload library
# QEMU runs with; Xen (hv_xen.c, hv_xen_state.c, the only libxenctrl users,
# built with --with-xen); the simulated back end over a process's own memory
# (hv_sim.c, for the engine's unit tests and the simulated agent).
noinst_LIBRARIES += %reldir%/libhv.a
%canon_reldir%_libhv_a_SOURCES = %reldir%/hv.c %reldir%/hv.h \
	%reldir%/hv_qemu.c %reldir%/dirty_uffd.c %reldir%/dirty_uffd.h
%canon_reldir%_libhv_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
HV_LIBS = %reldir%/libhv.a lib/qemu/libqmp.a $(JANSSON_LIBS)

if HAVE_XEN
noinst_LIBRARIES += %reldir%/libhvxen.a
%canon_reldir%_libhvxen_a_SOURCES = %reldir%/hv_xen.c %reldir%/hv_xen.h \
	%reldir%/hv_xen_int.h %reldir%/hv_xen_state.c
%canon_reldir%_libhvxen_a_CFLAGS = $(AM_CFLAGS) $(XEN_CFLAGS)
HV_LIBS += %reldir%/libhvxen.a $(XEN_LIBS)
endif
EXTRA_DIST += %reldir%/hv_xen.c %reldir%/hv_xen.h %reldir%/hv_xen_int.h \
	%reldir%/hv_xen_state.c

# Preloaded into the QEMU the agent (or the lab) launches: creates the
# userfaultfd inside QEMU. A shared object, built as a program.
pkglibexec_PROGRAMS += %reldir%/libvmckpt-uffd.so
%canon_reldir%_libvmckpt_uffd_so_SOURCES = %reldir%/uffd_preload.c
%canon_reldir%_libvmckpt_uffd_so_CFLAGS = $(WARN_CFLAGS) -fPIC
%canon_reldir%_libvmckpt_uffd_so_LDFLAGS = -shared -fPIC

# The simulated back end (hv_sim.h), not in the list of hv_list.c: for the
# engine's unit tests and the simulated agent (agent/local.mk).
noinst_LIBRARIES += %reldir%/libhvsim.a
%canon_reldir%_libhvsim_a_SOURCES = %reldir%/hv_sim.c %reldir%/hv_sim.h
