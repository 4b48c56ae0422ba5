# Documentation installed with vmckpt.
dist_doc_DATA += %reldir%/architecture.md %reldir%/protocol.md %reldir%/lab.md %reldir%/store.md %reldir%/performance.md %reldir%/mpi.md \
	%reldir%/consistency.md %reldir%/xen.md %reldir%/operations.md
