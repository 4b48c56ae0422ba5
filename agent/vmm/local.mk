# The guests an agent owns: one interface (vmm.h), what every guest has
# (vmm.c), one launcher per hypervisor behind struct vmm_launcher
# (vmm_int.h): vmm_qemu.c, vmm_xen.c.
noinst_LIBRARIES += %reldir%/libvmm.a
%canon_reldir%_libvmm_a_SOURCES = %reldir%/vmm.c %reldir%/vmm.h \
	%reldir%/vmm_int.h %reldir%/vmm_qemu.c %reldir%/vmm_xen.c
%canon_reldir%_libvmm_a_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
