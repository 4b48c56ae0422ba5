# The MPI hooks (libvmckpt-mpi.so) and the mpirun wrapper (docs/mpi.md).
# Built without sanitizers: they run inside MPI programs and the lab's
# guests. The wire code they share with the daemons is compiled in, with
# hidden symbols in the library so it cannot clash with the program's.
MPI_HOOKS_COMMON = %reldir%/channel.c %reldir%/channel.h \
	%reldir%/hooks_log.c %reldir%/hooks_log.h \
	lib/client/client.c lib/wire/wire.c lib/wire/auth.c lib/wire/tls.c lib/wire/tls_sock.c lib/wire/tls_int.h \
	lib/util/net.c lib/util/error.c lib/util/evloop.c lib/util/clock.c
if HAVE_MPI
pkglibexec_PROGRAMS += %reldir%/libvmckpt-mpi.so
%canon_reldir%_libvmckpt_mpi_so_SOURCES = %reldir%/hooks.c $(MPI_HOOKS_COMMON)
nodist_%canon_reldir%_libvmckpt_mpi_so_SOURCES = proto/vmckpt.pb-c.c proto/vmckpt.pb-c.h
%canon_reldir%_libvmckpt_mpi_so_CFLAGS = $(WARN_CFLAGS) -O2 -fPIC \
	-fvisibility=hidden $(MPI_CFLAGS) $(PROTOBUF_C_CFLAGS) $(CRYPTO_CFLAGS)
%canon_reldir%_libvmckpt_mpi_so_LDFLAGS = -shared -fPIC -Wl,--no-undefined
%canon_reldir%_libvmckpt_mpi_so_LDADD = $(MPI_LIBS) $(PROTOBUF_C_LIBS) \
	$(CRYPTO_LIBS) -lpthread -ldl

bin_PROGRAMS += %reldir%/vmckpt-mpirun
%canon_reldir%_vmckpt_mpirun_SOURCES = %reldir%/vmckpt-mpirun.c $(MPI_HOOKS_COMMON)
nodist_%canon_reldir%_vmckpt_mpirun_SOURCES = proto/vmckpt.pb-c.c proto/vmckpt.pb-c.h
%canon_reldir%_vmckpt_mpirun_CFLAGS = $(WARN_CFLAGS) -O2 $(PROTOBUF_C_CFLAGS) $(CRYPTO_CFLAGS)
%canon_reldir%_vmckpt_mpirun_LDFLAGS =
%canon_reldir%_vmckpt_mpirun_LDADD = $(PROTOBUF_C_LIBS) $(CRYPTO_LIBS) -lpthread
endif
EXTRA_DIST += %reldir%/hooks.c %reldir%/vmckpt-mpirun.c $(MPI_HOOKS_COMMON)
